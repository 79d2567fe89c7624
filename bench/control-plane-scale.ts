// The control plane at scale (issue 4): a mesh of W workloads, S services and P policies
// applied to a real ControlPlane (validation, model, translation, incremental push, ADS),
// with C simulated ztunnels (real AdsClients with the real decoders, in a child process,
// each with its node's credential). Then one policy changes, R times: time from the apply
// call to every client's ACK, bytes sent per client for the change, control-plane memory.
//
//   node dist/bench/control-plane-scale.js [clients=100] [workloads=10000] [services=2000] [policies=500] [rounds=5]
//
// Not a test: it prints numbers (median, min-max) with the Node version, machine and date.
import { fork } from 'node:child_process';
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../src/core/clock.js';
import { Logger } from '../src/core/logger.js';
import { ControlPlane } from '../src/controlplane/control-plane.js';
import { issueNodeTokens, type NodeTokens } from '../src/controlplane/node-credentials.js';
import { MeshCA } from '../src/identity/ca.js';
import { MetricsRegistry } from '../src/telemetry/metrics.js';
import { AdsClient } from '../src/xds/ads-client.js';
import { controlPlaneIdentity, controlPlaneTls } from '../src/xds/control-plane-tls.js';
import { addressResourceType, authorizationResourceType } from '../src/xds/codec.js';
import { AUTHORIZATION_TYPE_URL } from '../src/xds/workload-api.js';

const quiet = () => new Logger({ level: 'error', trace: '' });

export function meshYaml(workloads: number, services: number, policies: number, nodes: number, namespaces = 20): string {
  const docs: string[] = [];
  for (let n = 0; n < namespaces; n++) docs.push(`apiVersion: v1\nkind: Namespace\nmetadata: {name: ns${n}, labels: {istio.io/dataplane-mode: ambient}}`);
  for (let s = 0; s < services; s++) docs.push(`apiVersion: v1\nkind: Service\nmetadata: {name: svc${s}, namespace: ns${s % namespaces}}\nspec: {selector: {app: app${s}}, ports: [{port: 80, targetPort: 8080}]}`);
  for (let p = 0; p < workloads; p++) {
    const s = p % services;
    docs.push(`apiVersion: v1\nkind: Pod\nmetadata: {name: pod${p}, namespace: ns${s % namespaces}, labels: {app: app${s}}}\nspec: {nodeName: node-${(p % nodes) + 1}, serviceAccountName: sa${s}, containers: [{name: c, image: x}]}`);
  }
  for (let a = 0; a < policies; a++) docs.push(policyYaml(a, namespaces, 'ns1'));
  return docs.join('\n---\n');
}

function policyYaml(a: number, namespaces: number, fromNs: string): string {
  return `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: pol${a}, namespace: ns${a % namespaces}}\nspec:\n  selector: {matchLabels: {app: app${a}}}\n  rules: [{from: [{source: {principals: [cluster.local/ns/${fromNs}/sa/sa${a}]}}]}]`;
}

async function runClients(address: string, tokens: NodeTokens, rootPem: string): Promise<void> {
  const tls = controlPlaneTls(rootPem, controlPlaneIdentity('cluster.local'));
  const clients = Object.entries(tokens).map(([node, token]) => {
    const c = new AdsClient({ address, node: { id: node }, token, tls, types: [addressResourceType, authorizationResourceType], logger: quiet(), backoff: { initialMs: 200, maxMs: 2000 } });
    c.start();
    return c;
  });
  await Promise.all(clients.map((c) => c.waitForSync()));
  process.send?.({ kind: 'synced' });
  process.on('message', (m: { kind: string }) => {
    if (m.kind === 'stop') {
      for (const c of clients) c.close();
      process.exit(0);
    }
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const [clients = 100, workloads = 10_000, services = 2_000, policies = 500, rounds = 5] = process.argv.slice(2).map(Number);
  const nodes = Array.from({ length: clients }, (_, i) => `node-${i + 1}`);
  const tokens = issueNodeTokens(nodes);
  const ca = await MeshCA.create({});
  const cp = new ControlPlane({
    logger: quiet(), metrics: new MetricsRegistry(), clock: systemClock, ca, nodeTokens: tokens,
    build: { nodes }, configPaths: [], xdsAddress: '127.0.0.1:0', adminAddress: '127.0.0.1:0', debounceMs: 0,
    adminToken: 'bench', identity: controlPlaneIdentity('cluster.local'),
  });
  const { xdsPort } = await cp.start();
  const rssIdle = process.memoryUsage().rss;
  let t = performance.now();
  const r = cp.store.apply([{ file: 'mesh.yaml', text: meshYaml(workloads, services, policies, clients) }]);
  if (!r.ok) throw new Error(JSON.stringify(r.diagnostics.slice(0, 5)));
  const applyMs = performance.now() - t;
  t = performance.now();
  const child = fork(fileURLToPath(import.meta.url), ['--clients', `127.0.0.1:${xdsPort}`], { serialization: 'advanced' });
  child.send({ tokens, rootPem: ca.rootPem });
  await new Promise<void>((resolve) => child.on('message', (m: { kind: string }) => { if (m.kind === 'synced') resolve(); }));
  const syncMs = performance.now() - t;
  const rssLoaded = process.memoryUsage().rss;

  const latencies: number[] = [];
  const bytes: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const sentBefore = new Map(cp.ads.status().clients.map((c) => [c.nodeId, c.bytesSent]));
    const acked = new Set<string>();
    const target = round + 2;
    const done = new Promise<void>((resolve) => {
      const off = cp.ads.on('ack', (e) => {
        if (e.typeUrl !== AUTHORIZATION_TYPE_URL) return;
        acked.add(e.client.nodeId);
        if (acked.size === clients) { off(); resolve(); }
      });
    });
    const start = performance.now();
    const res = cp.store.apply([{ file: 'change.yaml', text: policyYaml(7, 20, `ns${target}`) }]);
    if (!res.ok) throw new Error('change refused');
    await done;
    latencies.push(performance.now() - start);
    const after = cp.ads.status().clients;
    bytes.push(median(after.map((c) => c.bytesSent - (sentBefore.get(c.nodeId) ?? 0))));
  }
  const rssEnd = process.memoryUsage().rss;
  child.send({ kind: 'stop' });
  await cp.close();
  const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;
  console.log(`control-plane scale — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, ${new Date().toISOString()}`);
  console.log(`mesh: ${workloads} workloads, ${services} services, ${policies} policies, ${clients} ztunnel clients`);
  console.log(`initial apply (validate + model + translate + encode): ${applyMs.toFixed(0)} ms; initial sync of all clients: ${syncMs.toFixed(0)} ms`);
  console.log(`one-policy change -> all ${clients} ACKed: median ${median(latencies).toFixed(0)} ms (min ${Math.min(...latencies).toFixed(0)}, max ${Math.max(...latencies).toFixed(0)}) over ${rounds} changes; target < 1000 ms`);
  console.log(`bytes sent per client per change: median ${median(bytes)} B (a full resend would be megabytes)`);
  console.log(`control-plane RSS: ${mb(rssIdle)} idle, ${mb(rssLoaded)} loaded and synced, ${mb(rssEnd)} at the end`);
}

if (process.argv[2] === '--clients') {
  const address = process.argv[3]!;
  process.once('message', (m: { tokens: NodeTokens; rootPem: string }) => void runClients(address, m.tokens, m.rootPem));
} else {
  void main().catch((e: unknown) => { console.error(e); process.exit(1); });
}
