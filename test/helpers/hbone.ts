// Shared parts for the HBONE tests: a test mesh (CA + workload certificates), an HBONE server
// whose handler dials the target like a ztunnel would, plain TCP upstreams (echo, sink,
// source), a TCP forwarder that can be frozen, and small stream utilities.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { memoryLogger, type LogFields, type Logger } from '../../src/core/logger.js';
import { MeshCA } from '../../src/identity/ca.js';
import { mustParseSpiffe } from '../../src/identity/spiffe.js';
import type { WorkloadCertificate } from '../../src/identity/workload-certificate.js';
import { HboneServer, type HboneRefusal, type HboneRequest, type HboneServerOptions } from '../../src/hbone/server.js';
import { relay, type RelayResult } from '../../src/hbone/relay.js';

export const CLIENT_ID = 'spiffe://cluster.local/ns/shop/sa/client';
export const SERVER_ID = 'spiffe://cluster.local/ns/shop/sa/server';

export interface TestMesh {
  ca: MeshCA;
  client: WorkloadCertificate;
  server: WorkloadCertificate;
}

export async function issue(ca: MeshCA, id: string, ttlSeconds?: number): Promise<WorkloadCertificate> {
  const r = await ca.issueWorkloadCertificate(mustParseSpiffe(id), ttlSeconds);
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return r.value;
}

export async function testMesh(trustDomain = 'cluster.local'): Promise<TestMesh> {
  const ca = await MeshCA.create({ trustDomain });
  const td = (id: string): string => id.replace('cluster.local', trustDomain);
  return { ca, client: await issue(ca, td(CLIENT_ID)), server: await issue(ca, td(SERVER_ID)) };
}

/** Closes everything registered, in reverse order; for `after`. */
export class Cleanup {
  private readonly fns: (() => unknown)[] = [];
  add<T>(fn: () => unknown, value: T): T {
    this.fns.push(fn);
    return value;
  }
  async run(): Promise<void> {
    for (const fn of this.fns.reverse()) {
      try {
        await fn();
      } catch {
        // best effort
      }
    }
  }
}

export interface TestHboneServer {
  server: HboneServer;
  port: number;
  refusals: HboneRefusal[];
  requests: HboneRequest[];
  relays: Promise<RelayResult>[];
  logLines: LogFields[];
}

/**
 * An HBONE server on 127.0.0.1 whose default handler behaves like the ztunnel inbound: dial
 * the target, 200 + relay when it connects, 503 when it does not.
 */
export async function startHboneServer(
  cleanup: Cleanup,
  certificate: WorkloadCertificate | (() => WorkloadCertificate),
  overrides: Partial<HboneServerOptions> = {},
): Promise<TestHboneServer> {
  const { logger, lines } = memoryLogger({ level: 'debug' });
  const refusals: HboneRefusal[] = [];
  const requests: HboneRequest[] = [];
  const relays: Promise<RelayResult>[] = [];
  const server = new HboneServer({
    certificate: typeof certificate === 'function' ? certificate : () => certificate,
    trustDomain: 'cluster.local',
    logger,
    onRefused: (e) => refusals.push(e),
    onRequest: (req) => {
      requests.push(req);
      dialAndRelay(req, relays);
    },
    ...overrides,
  });
  const addr = await server.listen('127.0.0.1', 0);
  cleanup.add(() => server.destroy(), undefined);
  return { server, port: addr.port, refusals, requests, relays, logLines: lines };
}

export function dialAndRelay(req: HboneRequest, relays?: Promise<RelayResult>[]): void {
  const upstream = net.connect({ host: req.target.ip, port: req.target.port, noDelay: true });
  const onError = (e: Error): void => req.reject(503, `upstream connect failed: ${e.message}`);
  upstream.once('error', onError);
  upstream.once('connect', () => {
    upstream.off('error', onError);
    if (req.cancelled) {
      upstream.destroy();
      return;
    }
    const r = relay(req.accept({ baggage: 'k8s.namespace.name=shop' }), upstream);
    relays?.push(r.done);
  });
}

export interface Upstream {
  port: number;
  connections: number;
  server: net.Server;
}

async function listenTcp(cleanup: Cleanup, onSocket: (s: net.Socket) => void): Promise<Upstream> {
  const sockets = new Set<net.Socket>();
  const up: Upstream = { port: 0, connections: 0, server: undefined as unknown as net.Server };
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    up.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    onSocket(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  up.port = (server.address() as net.AddressInfo).port;
  up.server = server;
  cleanup.add(() => {
    for (const s of sockets) s.destroy();
    server.close();
  }, undefined);
  return up;
}

/** Echoes everything; ends its side when the client ends (half-close preserved). */
export function startEcho(cleanup: Cleanup): Promise<Upstream> {
  return listenTcp(cleanup, (s) => s.pipe(s));
}

/** Reads everything, then answers `<bytes> <sha256>` and ends. */
export function startSink(cleanup: Cleanup): Promise<Upstream> {
  return listenTcp(cleanup, (s) => {
    const h = createHash('sha256');
    let n = 0;
    s.on('data', (d: Buffer) => {
      n += d.length;
      h.update(d);
    });
    s.on('end', () => s.end(`${n} ${h.digest('hex')}`));
  });
}

/** Sends `size` bytes of a deterministic pattern, then ends; reads (and discards) input. */
export function startSource(cleanup: Cleanup, size: number): Promise<Upstream> {
  return listenTcp(cleanup, (s) => {
    s.resume();
    void writePattern(s, size).then(() => s.end(), () => s.destroy());
  });
}

/** A deterministic 1 MiB block pattern (block i is filled with a byte derived from i). */
export function patternBlock(i: number, size = 1024 * 1024): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let j = 0; j < size; j += 4) b.writeUInt32LE(((i * 2654435761) ^ j) >>> 0, j);
  return b;
}

export function patternHash(total: number): string {
  const h = createHash('sha256');
  const block = 1024 * 1024;
  for (let i = 0, off = 0; off < total; i++, off += block) h.update(patternBlock(i).subarray(0, Math.min(block, total - off)));
  return h.digest('hex');
}

/** Writes `total` bytes of the pattern, honouring backpressure. */
export async function writePattern(d: Duplex | net.Socket, total: number): Promise<void> {
  const block = 1024 * 1024;
  for (let i = 0, off = 0; off < total; i++, off += block) {
    if (d.destroyed) throw new Error('destination destroyed');
    const chunk = patternBlock(i).subarray(0, Math.min(block, total - off));
    if (!d.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => { d.off('close', onClose); resolve(); };
        const onClose = (): void => { d.off('drain', onDrain); reject(new Error('closed while writing')); };
        d.once('drain', onDrain);
        d.once('close', onClose);
      });
    }
  }
}

/** Reads a duplex to its end: byte count, sha256 and (if small) the bytes. */
export function readAll(d: Duplex, keep = 1 << 20): Promise<{ bytes: number; sha256: string; text: string }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    const kept: Buffer[] = [];
    let n = 0;
    d.on('data', (c: Buffer) => {
      n += c.length;
      h.update(c);
      if (n <= keep) kept.push(c);
    });
    d.once('end', () => resolve({ bytes: n, sha256: h.digest('hex'), text: n <= keep ? Buffer.concat(kept).toString() : '' }));
    d.once('error', reject);
    d.once('close', () => reject(new Error(`closed before end after ${n} bytes`)));
  });
}

/** A TCP forwarder to 127.0.0.1:targetPort whose connections can be frozen (a black hole). */
export interface Forwarder {
  port: number;
  connections: number;
  freeze(): void;
}

export async function startForwarder(cleanup: Cleanup, targetPort: number): Promise<Forwarder> {
  const pairs: [net.Socket, net.Socket][] = [];
  const fwd: Forwarder = {
    port: 0,
    connections: 0,
    freeze() {
      for (const [a, b] of pairs) {
        a.pause();
        b.pause();
        // Drop whatever either side writes from now on.
        a.unpipe(b);
        b.unpipe(a);
      }
    },
  };
  const server = net.createServer((a) => {
    fwd.connections++;
    const b = net.connect(targetPort, '127.0.0.1');
    pairs.push([a, b]);
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
    a.on('close', () => b.destroy());
    b.on('close', () => a.destroy());
    a.pipe(b);
    b.pipe(a);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  fwd.port = (server.address() as net.AddressInfo).port;
  cleanup.add(() => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    server.close();
  }, undefined);
  return fwd;
}

export function quietLogger(): Logger {
  return memoryLogger({ level: 'debug' }).logger;
}

export function mbps(bytes: number, ms: number): string {
  return `${((bytes / (1024 * 1024)) / (ms / 1000)).toFixed(0)} MiB/s`;
}
