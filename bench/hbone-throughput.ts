// HBONE throughput on loopback, next to baselines measured in the same run:
//
//   node dist/bench/hbone-throughput.js [MiB=1024] [--split] [--repeat=3] [--only=tcp,hbone-up,...]
//
//   tcp          client socket -> TCP sink
//   tls          TLS 1.3 (HBONE's suites and certificates) client -> TLS sink
//   relay        client -> TCP proxy using relay() -> TCP sink (the relay's own cost)
//   hbone up     HbonePool tunnel -> HboneServer -> relay -> TCP sink
//   hbone down   TCP source -> relay -> HboneServer -> HbonePool tunnel
//   hbone 4x     four tunnels on one connection at once (total)
//
// By default everything runs in this one process (one JS thread does both ends, like the
// tests). With --split the receiving side of every case (sinks, TLS server, HboneServer and
// its relay) runs in a worker thread, closer to two proxies on two machines. Not a test: it
// asserts nothing and prints MiB/s and the ratio to tcp.
import { once } from 'node:events';
import * as net from 'node:net';
import * as os from 'node:os';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Logger } from '../src/core/logger.js';
import { MeshCA } from '../src/identity/ca.js';
import { mustParseSpiffe } from '../src/identity/spiffe.js';
import type { WorkloadCertificate } from '../src/identity/workload-certificate.js';
import { HbonePool } from '../src/hbone/pool.js';
import { relay } from '../src/hbone/relay.js';
import { HboneServer } from '../src/hbone/server.js';
import { serverTlsOptions, clientSecureContext } from '../src/hbone/wire.js';

const MiB = 1024 * 1024;
const CHUNK = Buffer.alloc(256 * 1024, 0x61);
const CLIENT_ID = 'spiffe://cluster.local/ns/bench/sa/client';
const SERVER_ID = 'spiffe://cluster.local/ns/bench/sa/server';

interface Ports {
  tcpSink: number;
  tcpSource: number;
  tlsSink: number;
  relayProxy: number;
  hbone: number;
}

/** Counts what arrives, answers the count when the sender ends. */
function sinkHandler(s: net.Socket | tls.TLSSocket): void {
  let n = 0;
  s.on('data', (d: Buffer) => { n += d.length; });
  s.on('end', () => s.end(String(n)));
  s.on('error', () => undefined);
}

async function writeN(d: Duplex, total: number): Promise<void> {
  let left = total;
  while (left > 0) {
    const c = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
    left -= c.length;
    if (!d.write(c)) await once(d, 'drain');
  }
  d.end();
}

async function readCount(d: Duplex): Promise<number> {
  let n = 0;
  d.on('data', (b: Buffer) => { n += b.length; });
  await once(d, 'end');
  return n;
}

async function readAnswer(d: Duplex): Promise<number> {
  let text = '';
  d.on('data', (b: Buffer) => { text += b.toString(); });
  await once(d, 'end');
  return Number(text);
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** The receiving side: sinks, a source, a TLS sink, a relay proxy, an HBONE server. */
async function startReceivers(serverCert: WorkloadCertificate, sourceBytes: number): Promise<Ports> {
  const logger = new Logger({ level: 'error' });
  const tcpSink = await listen(net.createServer({ noDelay: true }, sinkHandler));
  const tcpSource = await listen(net.createServer({ noDelay: true, allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    s.resume();
    void writeN(s, sourceBytes);
  }));
  const tlsSink = await listen(tls.createServer({ ...serverTlsOptions(serverCert), requestCert: true, rejectUnauthorized: true }, sinkHandler));
  const relayProxy = await listen(net.createServer({ noDelay: true }, (a) => {
    const b = net.connect({ port: tcpSink, host: '127.0.0.1', noDelay: true });
    relay(a, b);
  }));
  const hbone = new HboneServer({
    certificate: () => serverCert,
    trustDomain: 'cluster.local',
    logger,
    onRequest: (req) => {
      const up = net.connect({ host: req.target.ip, port: req.target.port, noDelay: true });
      up.once('error', (e) => req.reject(503, e.message));
      up.once('connect', () => relay(req.accept(), up));
    },
  });
  const addr = await hbone.listen('127.0.0.1', 0);
  return { tcpSink, tcpSource, tlsSink, relayProxy, hbone: addr.port };
}

const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');

const repeats = Number(process.argv.find((a) => a.startsWith('--repeat='))?.slice('--repeat='.length) ?? 3);

/** Runs fn `repeats` times and prints the median rate (and the spread). */
async function timed(name: string, bytes: number, fn: () => Promise<number>, baseline?: number): Promise<number> {
  if (only && !only.includes(name.replace(' ', '-'))) return baseline ?? 0;
  const rates: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    const got = await fn();
    const ms = performance.now() - t0;
    if (got !== bytes) throw new Error(`${name}: moved ${got} bytes, expected ${bytes}`);
    rates.push(bytes / MiB / (ms / 1000));
  }
  rates.sort((x, y) => x - y);
  const rate = rates[Math.floor(rates.length / 2)] as number;
  const ratio = baseline ? `  ${(rate / baseline).toFixed(2)}x tcp` : '';
  const spread = `[${(rates[0] as number).toFixed(0)}..${(rates[rates.length - 1] as number).toFixed(0)}]`;
  console.log(`${name.padEnd(11)} ${String(bytes / MiB).padStart(5)} MiB x${repeats}  median ${rate.toFixed(0).padStart(5)} MiB/s ${spread.padEnd(12)}${ratio}`);
  return rate;
}

async function main(): Promise<void> {
  const sizeMiB = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 1024);
  const split = process.argv.includes('--split');
  const bytes = sizeMiB * MiB;
  const ca = await MeshCA.create();
  const issue = async (id: string): Promise<WorkloadCertificate> => {
    const r = await ca.issueWorkloadCertificate(mustParseSpiffe(id));
    if (!r.ok) throw r.error;
    return r.value;
  };
  const clientCert = await issue(CLIENT_ID);
  const serverCert = await issue(SERVER_ID);

  let ports: Ports;
  let worker: Worker | undefined;
  if (split) {
    worker = new Worker(new URL(import.meta.url), { workerData: { serverCert, sourceBytes: bytes } });
    [ports] = (await once(worker, 'message')) as [Ports];
  } else {
    ports = await startReceivers(serverCert, bytes);
  }

  console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, ${new Date().toISOString()}, ${split ? 'receivers in a worker thread' : 'one thread'}`);
  const pool = new HbonePool({ logger: new Logger({ level: 'error' }) });
  const tunnel = (port: number): Promise<Duplex> => pool.connect({
    sourceIdentity: CLIENT_ID,
    certificate: () => clientCert,
    destination: { ip: '127.0.0.1', port: ports.hbone },
    expectedIdentities: [SERVER_ID],
    authority: `127.0.0.1:${port}`,
  });

  // Warm up every path once (JIT, first handshake).
  for (const port of [ports.tcpSink]) {
    const t = await tunnel(port);
    const a = readAnswer(t);
    await writeN(t, 8 * MiB);
    await a;
  }

  const tcp = await timed('tcp', bytes, async () => {
    const s = net.connect({ port: ports.tcpSink, host: '127.0.0.1', noDelay: true });
    await once(s, 'connect');
    const a = readAnswer(s);
    await writeN(s, bytes);
    return a;
  });
  await timed('tls', bytes, async () => {
    const s = tls.connect({ port: ports.tlsSink, host: '127.0.0.1', secureContext: clientSecureContext(clientCert), checkServerIdentity: () => undefined });
    await once(s, 'secureConnect');
    const a = readAnswer(s);
    await writeN(s, bytes);
    return a;
  }, tcp);
  await timed('relay', bytes, async () => {
    const s = net.connect({ port: ports.relayProxy, host: '127.0.0.1', noDelay: true });
    await once(s, 'connect');
    const a = readAnswer(s);
    await writeN(s, bytes);
    return a;
  }, tcp);
  await timed('hbone up', bytes, async () => {
    const t = await tunnel(ports.tcpSink);
    const a = readAnswer(t);
    await writeN(t, bytes);
    return a;
  }, tcp);
  await timed('hbone down', bytes, async () => {
    const t = await tunnel(ports.tcpSource);
    const n = readCount(t);
    t.end();
    return n;
  }, tcp);
  await timed('hbone 4x', bytes, async () => {
    const each = bytes / 4;
    const counts = await Promise.all([0, 1, 2, 3].map(async () => {
      const t = await tunnel(ports.tcpSink);
      const a = readAnswer(t);
      await writeN(t, each);
      return a;
    }));
    return counts.reduce((x, y) => x + y, 0);
  }, tcp);
  await new Promise((r) => setTimeout(r, 50));
  console.log(`pool: ${JSON.stringify(pool.stats())}`);
  await pool.close(100);
  if (worker) await worker.terminate();
  process.exit(0);
}

if (isMainThread) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
} else {
  const { serverCert, sourceBytes } = workerData as { serverCert: WorkloadCertificate; sourceBytes: number };
  void startReceivers(serverCert, sourceBytes).then((ports) => parentPort?.postMessage(ports));
}
