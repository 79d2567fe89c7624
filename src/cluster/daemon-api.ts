// The cluster daemon's operator socket: HTTP/1.1 on <stateDir>/daemon.sock (root only, 0600),
// for commands that ask the running daemon to do something (`ambit ztunnel restart`).
//
//   POST /ztunnel/restart  {"node": "node-1", "drainMs": 30000, "wait": false}
//        -> 200 {"node", "oldPid", "newPid", "drainMs", "oldExited"?: true}
//        -> 400 bad request, 404 no such node, 409 a restart of that node is running,
//           504 the new ztunnel did not become ready (the old one keeps running)
//
// Invariants: bodies are at most 4 KiB and read within 5 s; one restart per node at a time.
import { listenUnix } from '../sys/unix-listen.js';
import { systemClock } from '../core/clock.js';
import http from 'node:http';
import { AmbitError, describeError } from '../core/errors.js';

export interface RestartOutcome {
  node: string;
  oldPid: number;
  newPid: number;
  drainMs: number;
  oldExited?: boolean;
}

export interface DaemonApiOptions {
  path: string;
  restartZtunnel(node: string, drainMs: number, wait: boolean): Promise<RestartOutcome>;
}

const MAX_BODY = 4096;
export const MAX_DRAIN_MS = 3_600_000;

export class DaemonApi {
  private readonly server: http.Server;

  constructor(private readonly opts: DaemonApiOptions) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.requestTimeout = 0;
  }

  async listen(): Promise<void> {
    await listenUnix(this.server, this.opts.path);
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
    if (req.method !== 'POST' || req.url !== '/ztunnel/restart') return void send(404, { error: 'POST /ztunnel/restart' });
    let body: { node?: unknown; drainMs?: unknown; wait?: unknown };
    try {
      body = JSON.parse(await readBody(req)) as typeof body;
    } catch (e: unknown) {
      return void send(400, { error: `bad request body: ${describeError(e).message}` });
    }
    const drainMs = body.drainMs ?? 30_000;
    if (typeof body.node !== 'string' || typeof drainMs !== 'number' || !Number.isInteger(drainMs) || drainMs < 0 || drainMs > MAX_DRAIN_MS) {
      return void send(400, { error: `give {"node": "<name>", "drainMs": 0..${MAX_DRAIN_MS}}` });
    }
    try {
      send(200, await this.opts.restartZtunnel(body.node, drainMs, body.wait === true));
    } catch (e: unknown) {
      const status = e instanceof AmbitError ? (e.code === 'AMBIT_ERR_NOT_FOUND' ? 404 : e.code === 'AMBIT_ERR_TIMEOUT' ? 504 : e.code === 'AMBIT_ERR_USAGE' ? 409 : 500) : 500;
      send(status, { error: describeError(e).message, hint: e instanceof AmbitError ? e.hint : undefined });
    }
  }
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  const timer = systemClock.setTimeout(() => req.destroy(new Error('the request body did not arrive in 5 s')), 5000);
  try {
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_BODY) throw new Error(`body over ${MAX_BODY} bytes`);
      chunks.push(c as Buffer);
    }
  } finally {
    timer.cancel();
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** POSTs to a daemon's socket (the CLI); resolves with the status and the JSON body. */
export function daemonPost(socketPath: string, path: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, method: 'POST', headers: { 'content-type': 'application/json' }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
        } catch (e: unknown) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}
