// The node agent's socket for the `ambit-cni` plugin: a unix stream socket, one plugin call
// per connection (cni/plugin-wire.ts frames it).
//
// Invariants:
//  - Bounded: a request is at most 1 MiB and must arrive whole within requestTimeoutMs; at most
//    maxConcurrent calls are handled at once (more are answered "try again later" at once).
//    A malformed request gets the spec's error JSON (code 6), never a crash.
//  - Every call is answered exactly once, then the connection is closed; a handler that throws
//    answers code 11 (try again later) with the error as details.
import { listenUnix } from '../sys/unix-listen.js';
import net from 'node:net';
import type { Clock } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { encodeResponse, MAX_REQUEST_BYTES, parseRequest, type WireRequest } from '../cni/plugin-wire.js';
import { cniError, CniErrorCode } from '../cni/spec.js';

export interface CniAnswer {
  exitCode: number;
  stdout: string;
}

export interface CniServerOptions {
  path: string;
  clock: Clock;
  logger: Logger;
  handle(req: WireRequest): Promise<CniAnswer>;
  requestTimeoutMs?: number;
  maxConcurrent?: number;
}

export function errorAnswer(code: number, msg: string, details?: string, cniVersion?: string): CniAnswer {
  return { exitCode: 1, stdout: JSON.stringify(cniError(code, msg, details, cniVersion)) + '\n' };
}

export class CniServer {
  private readonly server: net.Server;
  private active = 0;

  constructor(private readonly opts: CniServerOptions) {
    this.server = net.createServer({ allowHalfOpen: true }, (s) => this.onConnection(s));
    this.server.maxConnections = 1024;
  }

  async listen(): Promise<void> {
    await listenUnix(this.server, this.opts.path);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: net.Socket): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let answered = false;
    const answer = (a: CniAnswer) => {
      if (answered) return;
      answered = true;
      timer.cancel();
      socket.end(encodeResponse(a.exitCode, a.stdout));
    };
    const timer = this.opts.clock.setTimeout(() => answer(errorAnswer(CniErrorCode.DECODING_FAILURE, 'the plugin request did not arrive in time')), this.opts.requestTimeoutMs ?? 10_000);
    socket.on('error', () => socket.destroy());
    socket.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        answer(errorAnswer(CniErrorCode.DECODING_FAILURE, 'the plugin request is larger than 1 MiB'));
        socket.pause();
        return;
      }
      chunks.push(c);
    });
    socket.on('end', () => {
      if (answered) return;
      timer.cancel(); // the request is whole; handling is bounded by its own steps (ZDS Ack timeout)
      const parsed = parseRequest(Buffer.concat(chunks));
      if (parsed.ok !== true) {
        answer(errorAnswer(CniErrorCode.DECODING_FAILURE, 'malformed request from ambit-cni', parsed.ok === 'partial' ? 'the request ended early' : parsed.error));
        return;
      }
      if (this.active >= (this.opts.maxConcurrent ?? 64)) {
        answer(errorAnswer(CniErrorCode.TRY_AGAIN_LATER, 'the node agent is busy; try again later'));
        return;
      }
      this.active++;
      this.opts.handle(parsed.value)
        .then(answer, (e: unknown) => {
          const d = describeError(e);
          this.opts.logger.error('CNI call failed', { error: d.message, code: d.code });
          answer(errorAnswer(CniErrorCode.TRY_AGAIN_LATER, 'the node agent could not handle the call; try again later', d.message));
        })
        .finally(() => { this.active--; });
    });
  }
}
