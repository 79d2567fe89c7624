// Fan-out of the delta ADS server: one server, N clients, a mesh-sized workload API, then one
// authorization changes.
//
//   node dist/bench/xds-fanout.js [clients=100] [workloads=10000] [services=2000] [policies=500] [changes=20]
//
// The server runs in this process; the clients (real AdsClients with the real decoders, as a
// ztunnel runs them) run in one child process, so the server's RSS is its own. Measured on
// the server: the initial sync (first connect to every client ACKed everything), then for each
// of `changes` single-policy changes the time from update() to the last client's ACK, and the
// bytes sent to each client for it. Not a test: it asserts nothing, it prints numbers.
import { fork } from 'node:child_process';
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { Logger } from '../src/core/logger.js';
import { AdsClient } from '../src/xds/ads-client.js';
import { AdsServer } from '../src/xds/ads-server.js';
import {
  addressResource, addressResourceType, authorizationResource, authorizationResourceType,
} from '../src/xds/codec.js';
import { bindServer, serverCredentials } from '../src/xds/credentials.js';
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL } from '../src/xds/workload-api.js';
import { authorization, service, workload } from '../test/helpers/xds-fixtures.js';

const MiB = 1024 * 1024;

function quietLogger(): Logger {
  return new Logger({ level: 'error', trace: '' });
}

// ---------------------------------------------------------------- child: the clients

async function runClients(address: string, count: number): Promise<void> {
  const clients: AdsClient[] = [];
  for (let i = 0; i < count; i++) {
    const c = new AdsClient({
      address,
      node: { id: `ztunnel~node-${i}` },
      types: [addressResourceType, authorizationResourceType],
      logger: quietLogger(),
      backoff: { initialMs: 200, maxMs: 2000 },
    });
    c.start();
    clients.push(c);
  }
  await Promise.all(clients.map((c) => c.waitForSync()));
  const send = (m: unknown): void => {
    process.send?.(m);
  };
  const cpu = process.cpuUsage();
  send({ kind: 'synced', rssBytes: process.memoryUsage().rss, cpuMs: (cpu.user + cpu.system) / 1000 });
  process.on('message', (m: { kind: string }) => {
    if (m.kind === 'rss') {
      const cpu = process.cpuUsage();
      send({ kind: 'rss', rssBytes: process.memoryUsage().rss, heapBytes: process.memoryUsage().heapUsed, cpuMs: (cpu.user + cpu.system) / 1000 });
    }
    if (m.kind === 'stop') {
      for (const c of clients) c.close();
      process.exit(0);
    }
  });
}

// ---------------------------------------------------------------- parent: the server

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  const [clientsArg, workloadsArg, servicesArg, policiesArg, changesArg] = process.argv.slice(2).map(Number);
  const nClients = clientsArg || 100;
  const nWorkloads = workloadsArg || 10_000;
  const nServices = servicesArg || 2_000;
  const nPolicies = policiesArg || 500;
  const nChanges = changesArg || 20;

  const ads = new AdsServer({ logger: quietLogger() });
  const server = new grpc.Server();
  ads.register(server);
  const port = await bindServer(server, '127.0.0.1:0', serverCredentials(undefined));

  const rss0 = process.memoryUsage().rss;
  let t = performance.now();
  const addresses = [
    ...Array.from({ length: nWorkloads }, (_, i) => addressResource({ workload: workload(i) })),
    ...Array.from({ length: nServices }, (_, i) => addressResource({ service: service(i) })),
  ];
  const policies = Array.from({ length: nPolicies }, (_, i) => authorization(i));
  const policyResources = policies.map(authorizationResource);
  const encodeMs = performance.now() - t;
  const bodyBytes = [...addresses, ...policyResources].reduce((n, r) => n + r.body.length, 0);
  t = performance.now();
  ads.setResources(ADDRESS_TYPE_URL, addresses);
  ads.setResources(AUTHORIZATION_TYPE_URL, policyResources);
  const setMs = performance.now() - t;
  const rssLoaded = process.memoryUsage().rss;

  const allAcked = (): boolean => {
    const st = ads.status();
    return st.clients.length === nClients
      && st.clients.every((c) => c.types.length === 2 && c.types.every((x) => x.pending.length === 0 && x.versionAcked === x.versionSent));
  };

  t = performance.now();
  const cpuBeforeSync = process.cpuUsage();
  const child = fork(fileURLToPath(import.meta.url), ['--clients', `127.0.0.1:${port}`, String(nClients)], {
    execArgv: ['--max-old-space-size=12288'],
  });
  const fromChild = <T>(kind: string): Promise<T> => new Promise((resolve) => {
    const on = (m: { kind: string }): void => {
      if (m.kind === kind) {
        child.off('message', on);
        resolve(m as T);
      }
    };
    child.on('message', on);
  });
  let peakServerRss = 0;
  const sampler = setInterval(() => { peakServerRss = Math.max(peakServerRss, process.memoryUsage().rss); }, 100);
  const childSynced = await fromChild<{ rssBytes: number; cpuMs: number }>('synced');
  while (!allAcked()) await new Promise((r) => setTimeout(r, 20));
  const syncMs = performance.now() - t;
  const syncCpu = process.cpuUsage(cpuBeforeSync);
  const syncCounters = ads.counters();
  const cpuBeforeChanges = process.cpuUsage();

  // One authorization changes, nChanges times in a row; each time wait for every client's ACK.
  const latencies: number[] = [];
  const bytesPerClient: number[] = [];
  for (let k = 0; k < nChanges; k++) {
    const before = new Map(ads.status().clients.map((c) => [c.nodeId, c.bytesSent]));
    const i = k % nPolicies;
    const changed = { ...policies[i]!, dryRun: !policies[i]!.dryRun };
    policies[i] = changed;
    const acked = new Set<string>();
    let version = '';
    const done = new Promise<void>((resolve) => {
      const off = ads.on('ack', (a) => {
        if (a.typeUrl !== AUTHORIZATION_TYPE_URL || a.version !== version) return;
        acked.add(a.client.nodeId);
        if (acked.size === nClients) {
          off();
          resolve();
        }
      });
    });
    const t0 = performance.now();
    version = ads.update(AUTHORIZATION_TYPE_URL, [authorizationResource(changed)]).version;
    await done;
    latencies.push(performance.now() - t0);
    for (const c of ads.status().clients) bytesPerClient.push(c.bytesSent - (before.get(c.nodeId) ?? 0));
  }
  clearInterval(sampler);
  const changesCpu = process.cpuUsage(cpuBeforeChanges);
  // With --expose-gc, measure what is live rather than what the last collection left.
  // (twice, a moment apart: V8 frees ArrayBuffer memory in a concurrent sweep).
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    await new Promise((r) => setTimeout(r, 500));
    gc();
  }
  const mem = process.memoryUsage();
  const serverRss = mem.rss;
  const serverHeap = mem.heapUsed;
  child.send({ kind: 'rss' });
  const childRss = await fromChild<{ rssBytes: number; heapBytes: number; cpuMs: number }>('rss');
  child.send({ kind: 'stop' });
  const counters = ads.counters();
  ads.close();
  server.forceShutdown();

  const sorted = [...latencies].sort((a, b) => a - b);
  const uniqueBytes = [...new Set(bytesPerClient)].sort((a, b) => a - b);
  const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;
  const mib = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;
  console.log(`xds fan-out — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${new Date().toISOString()}`);
  console.log(`mesh: ${nWorkloads} workloads + ${nServices} services + ${nPolicies} authorizations (${mib(bodyBytes)} encoded), ${nClients} clients (one child process)`);
  console.log(`encode all resources:            ${fmt(encodeMs)}`);
  console.log(`setResources (both types):       ${fmt(setMs)}`);
  console.log(`initial sync, all ${nClients} ACKed:     ${fmt(syncMs)}  (${mib(syncCounters.bytesSent)} sent, ${syncCounters.responsesSent} responses; CPU: server ${fmt((syncCpu.user + syncCpu.system) / 1000)}, clients ${fmt(childSynced.cpuMs)})`);
  console.log(`one authorization change -> all ${nClients} ACKed (${nChanges} changes): median ${fmt(percentile(sorted, 50))}, p90 ${fmt(percentile(sorted, 90))}, max ${fmt(sorted.at(-1) ?? NaN)}`);
  console.log(`bytes sent per client per change: ${uniqueBytes.join(', ')} B (one Resource; the policy body is ${policyResources[0]!.body.length} B)`);
  console.log(`server push latency (change -> written), mean: ${fmt(counters.pushLatency.sumMs / Math.max(1, counters.pushLatency.count))}; server CPU for all ${nChanges} changes: ${fmt((changesCpu.user + changesCpu.system) / 1000)}; clients' CPU: ${fmt(childRss.cpuMs - childSynced.cpuMs)}`);
  console.log(`server RSS: ${mib(rss0)} before resources, ${mib(rssLoaded)} with resources, ${mib(serverRss)} at the end (${mib(serverHeap)} heap, ${mib(mem.external)} external), ${mib(peakServerRss)} peak`);
  console.log(`clients' process RSS: ${mib(childSynced.rssBytes)} after sync, ${mib(childRss.rssBytes)} at the end (${mib(childRss.heapBytes)} heap) — ${mib(childRss.rssBytes / nClients)} per client`);
}

if (process.argv[2] === '--clients') {
  void runClients(process.argv[3] ?? '', Number(process.argv[4] ?? 100));
} else {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
