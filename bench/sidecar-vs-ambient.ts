// The resource claim of ambient mode, measured: what the proxies cost per node with N pods per
// node all calling each other at a fixed request rate, in ambient mode (one `ambit ztunnel` per
// node) and in sidecar mode (one `ambit sidecar` per pod), for N = 1, 5, 20 on 2 nodes.
//
//   node dist/bench/sidecar-vs-ambient.js [--quick | --smoke] [--rate 200] [--seconds S] [--ns 1,5,20]
//                                         [--out FILE] [--prefix P]
//
// For each (N, mode) a fresh 2-node cluster is made with `ambit up` (bench/suite/bench-cluster.ts)
// from generated YAML: namespace `load`, pods `n<node>-p<i>` (container `sleep infinity`), one
// Service per pod (port 80 -> 8080). Ambient: the namespace has `istio.io/dataplane-mode: ambient`;
// sidecar: every pod has `sidecar.istio.io/inject: "true"`. Into every pod's network namespace the
// bench starts one agent (this file with `--agent`): an HTTP server on 8080 plus a client that
// calls the services of all the other pods in turn (keep-alive), paced so the pods of one node
// send `rate` req/s together. After a warm-up the proxies' CPU (utime+stime, /proc/<pid>/stat) is
// read at the start and the end of the measured window and their RSS sampled every 250 ms.
//
// Invariants:
// - Proxy figures include only proxy processes: per node, the ztunnel `ztunnel-<node>` (ambient)
//   or every `sidecar.load.<pod>` of the node's pods (sidecar), PIDs from the cluster's
//   status.json, each checked by its /proc cmdline, plus their descendants. Agents (app and
//   client), the daemon and the control plane are never counted. In sidecar mode the node's
//   ztunnel still runs, serving no pod; it is recorded apart (`idleZtunnel`) and not counted.
// - Requests per node are those the node's pods sent in the measured window and got a 200 for;
//   each of them crosses a proxy on the sending node (outbound) and one on the receiving node
//   (inbound), so "CPU per 1k requests" of a node covers its outbound share and the inbound
//   share of what the other pods sent it.
// - Every load is bounded in time (agents stop sending at the end of the window and are
//   killed by PID after); every cluster is removed with `ambit down` (BenchCluster.close(),
//   which checks `ip netns list`) on success, error and SIGINT/SIGTERM. All traffic stays
//   inside the cluster's namespaces.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import http from 'node:http';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, hostname, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BenchCluster, waitFor } from './suite/bench-cluster.js';
import { sampleProc } from './suite/proc-stats.js';
import { readProcStat } from '../src/sys/proc.js';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const SELF = join(ROOT, 'dist', 'bench', 'sidecar-vs-ambient.js');
const NAMESPACE = 'load';
const APP_PORT = 8080;
const NODES = ['node-1', 'node-2'] as const;

export type Mode = 'ambient' | 'sidecar';

// ---------------------------------------------------------------- the agent (inside a pod)

interface AgentStats { sent: number; ok: number; errors: number; skipped: number; p50Ms: number; p99Ms: number; firstError?: string }

/**
 * Runs inside a pod: serves 8080, resolves the targets, prints `ready`; on `go <startMs> <warmupS> <seconds>`
 * on stdin sends `rps` requests/s in turn to the targets until the end of the window, then prints
 * one JSON line of AgentStats for the measured window; exits when stdin closes.
 */
async function agent(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { agent: { type: 'boolean' }, targets: { type: 'string' }, rps: { type: 'string' }, concurrency: { type: 'string' } } });
  const rps = Number(values.rps ?? '10');
  const maxInFlight = Number(values.concurrency ?? '64');
  const body = Buffer.from('ambit sidecar-vs-ambient: ok\n'.padEnd(128, '.') + '\n');
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((r) => server.listen(APP_PORT, '0.0.0.0', r));
  const names = (values.targets ?? '').split(',').filter(Boolean);
  const targets: { host: string; ip: string }[] = [];
  for (const host of names) {
    let ip: string | undefined;
    for (let i = 0; i < 50 && !ip; i++) {
      try { ip = (await lookup(host, { family: 4 })).address; } catch { await new Promise((r) => setTimeout(r, 100)); }
    }
    if (!ip) throw new Error(`cannot resolve ${host} in the pod`);
    targets.push({ host, ip });
  }
  const agentPool = new http.Agent({ keepAlive: true, maxSockets: 8 });
  process.stdout.write('ready\n');
  const lines: string[] = [];
  let buffered = '';
  process.stdin.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    lines.push(...parts);
  });
  process.stdin.on('end', () => { agentPool.destroy(); server.closeAllConnections(); server.close(); process.exit(0); });
  const nextLine = async () => {
    await new Promise<void>((r) => { const t = setInterval(() => { if (lines.length) { clearInterval(t); r(); } }, 5); });
    return lines.shift() ?? '';
  };
  let line = await nextLine();
  if (line.startsWith('prime')) {
    // One request to every target (retried until the deadline), so certificates, HBONE
    // connections and keep-alive sockets exist before the paced load: the window measures the
    // steady state, not 2N(2N-1) first handshakes.
    const deadline = Date.now() + Number(line.split(' ')[1] ?? '30') * 1000;
    let primed = 0;
    let failed = 0;
    const once = (t: { host: string; ip: string }) => new Promise<boolean>((r) => {
      const req = http.request({ host: t.ip, port: 80, path: '/', headers: { host: t.host }, agent: agentPool, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => r(res.statusCode === 200));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => r(false));
      req.end();
    });
    const queue = [...targets];
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let t = queue.shift(); t; t = queue.shift()) {
        let ok = false;
        while (!ok && Date.now() < deadline) {
          ok = await once(t);
          if (!ok) await new Promise((r) => setTimeout(r, 200));
        }
        if (ok) primed++; else failed++;
      }
    }));
    process.stdout.write(`primed ${primed} ${failed}\n`);
    line = await nextLine();
  }
  const [, startS, warmS, secondsS] = line.split(' ');
  const start = Number(startS);
  const windowStart = start + Number(warmS) * 1000;
  const end = windowStart + Number(secondsS) * 1000;
  const stats: AgentStats = { sent: 0, ok: 0, errors: 0, skipped: 0, p50Ms: 0, p99Ms: 0 };
  const latencies: number[] = [];
  let inFlight = 0;
  let issued = 0;
  let next = 0;
  const fire = () => {
    const t0 = Date.now();
    const counted = t0 >= windowStart;
    if (inFlight >= maxInFlight) { if (counted) stats.skipped++; return; }
    const target = targets[next++ % targets.length]!;
    inFlight++;
    if (counted) stats.sent++;
    const req = http.request({ host: target.ip, port: 80, path: '/', headers: { host: target.host }, agent: agentPool, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => {
        inFlight--;
        if (!counted) return;
        if (res.statusCode === 200) { stats.ok++; latencies.push(Date.now() - t0); } else { stats.errors++; stats.firstError ??= `HTTP ${res.statusCode} from ${target.host}`; }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => { inFlight--; if (counted) { stats.errors++; stats.firstError ??= `${target.host}: ${e.message}`; } });
    req.end();
  };
  await new Promise((r) => setTimeout(r, Math.max(0, start - Date.now())));
  await new Promise<void>((r) => {
    const tick = setInterval(() => {
      const now = Date.now();
      if (now >= end) { clearInterval(tick); r(); return; }
      const due = Math.floor(((now - start) / 1000) * rps);
      while (issued < due) { issued++; fire(); }
    }, 2);
  });
  // Let the last requests finish (bounded), then report the window.
  await waitFor(() => inFlight === 0, 5000, 20);
  latencies.sort((a, b) => a - b);
  stats.p50Ms = latencies[Math.floor(latencies.length * 0.5)] ?? 0;
  stats.p99Ms = latencies[Math.floor(latencies.length * 0.99)] ?? 0;
  process.stdout.write(`${JSON.stringify(stats)}\n`);
}

// ---------------------------------------------------------------- pure parts

export function podName(node: number, i: number): string {
  return `n${node}-p${String(i).padStart(2, '0')}`;
}

export function meshYaml(mode: Mode, perNode: number): string {
  const docs = [`apiVersion: v1
kind: Namespace
metadata: {name: ${NAMESPACE}${mode === 'ambient' ? ', labels: {istio.io/dataplane-mode: ambient}' : ''}}`];
  for (let n = 1; n <= NODES.length; n++) {
    for (let i = 1; i <= perNode; i++) {
      const name = podName(n, i);
      const labels = `{app: ${name}${mode === 'sidecar' ? ', sidecar.istio.io/inject: "true"' : ''}}`;
      docs.push(`apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${NAMESPACE}, labels: ${labels}}
spec: {nodeName: node-${n}, serviceAccountName: ${name}, containers: [{name: main, command: [sleep, infinity]}]}`);
      docs.push(`apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${NAMESPACE}}
spec: {selector: {app: ${name}}, ports: [{name: http, port: 80, targetPort: ${APP_PORT}}]}`);
    }
  }
  return docs.join('\n---\n') + '\n';
}

export interface ConfigResult {
  perNode: number;
  mode: Mode;
  /** Per node: peak of the summed proxy RSS during the window, idle RSS before load, proxy CPU s in the window, requests ok. */
  nodes: { node: string; proxies: number; idleRssMiB: number; rssMiB: number; cpuSeconds: number; requestsOk: number; cpuSecondsPer1k: number }[];
  /** Sidecar mode: the node's ztunnel (serving no pod), not counted. */
  idleZtunnel?: Record<string, { rssMiB: number; cpuSeconds: number }>;
  sent: number;
  ok: number;
  errors: number;
  skipped: number;
  p50Ms: number;
  p99Ms: number;
  windowSeconds: number;
  upSeconds: number;
  /** Time for every pod to get one answer from every other pod before the load, and pairs that never did. */
  primeSeconds: number;
  primeFailed: number;
  firstError?: string;
}

export interface Row { perNode: number; mode: Mode; rssMiB: number; cpuPer1k: number }

/** More than 2% of the paced requests failed or were skipped: the machine did not carry the rate, figures are flagged. */
export function saturated(r: ConfigResult): boolean {
  return r.errors + r.skipped > 0.02 * (r.sent + r.skipped);
}

export function rowOf(r: ConfigResult): Row {
  const mean = (f: (n: ConfigResult['nodes'][number]) => number) => r.nodes.reduce((t, n) => t + f(n), 0) / Math.max(1, r.nodes.length);
  return { perNode: r.perNode, mode: r.mode, rssMiB: mean((n) => n.rssMiB), cpuPer1k: mean((n) => n.cpuSecondsPer1k) };
}

/**
 * The N where sidecar/ambient crosses 1 (ambient cheaper above it), by linear interpolation of the
 * ratio between measured N; `fromSmallest` when ambient is already cheaper at the smallest N; undefined
 * when it never is.
 */
export function crossover(points: { n: number; ratio: number }[]): number | { fromSmallest: number } | undefined {
  const ps = [...points].filter((p) => Number.isFinite(p.ratio)).sort((a, b) => a.n - b.n);
  if (!ps.length) return undefined;
  if (ps[0]!.ratio > 1) return { fromSmallest: ps[0]!.n };
  for (let i = 1; i < ps.length; i++) {
    const a = ps[i - 1]!;
    const b = ps[i]!;
    if (a.ratio <= 1 && b.ratio > 1) return a.n + ((1 - a.ratio) / (b.ratio - a.ratio)) * (b.n - a.n);
  }
  return undefined;
}

function describeCrossover(c: number | { fromSmallest: number } | undefined, maxN: number): string {
  if (typeof c === 'object') return c.fromSmallest === 1 ? 'ambient cheaper from N=1' : `ambient cheaper at every measured N (from N=${c.fromSmallest}; smaller N not measured)`;
  if (c === undefined) return `ambient not cheaper up to N=${maxN}`;
  return `ambient cheaper from N≈${c.toFixed(1)}`;
}

// ---------------------------------------------------------------- /proc

/** Children of every process, from /proc/<pid>/stat field 4. */
function childrenMap(): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const ppid = readProcStat(Number(d))?.ppid;
    if (ppid === undefined) continue; // gone
    const list = out.get(ppid) ?? [];
    list.push(Number(d));
    out.set(ppid, list);
  }
  return out;
}

function withDescendants(pids: number[]): number[] {
  const kids = childrenMap();
  const out: number[] = [];
  const todo = [...pids];
  while (todo.length) {
    const p = todo.pop()!;
    if (out.includes(p)) continue;
    out.push(p);
    todo.push(...(kids.get(p) ?? []));
  }
  return out;
}

function cmdline(pid: number): string {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '); } catch { return ''; }
}

/** Proxy PIDs per node for the mode, from status.json; each checked by its argv. */
function proxyPids(cluster: BenchCluster, mode: Mode): { byNode: Record<string, number[]>; ztunnels: Record<string, number> } {
  const status = cluster.status();
  const ztunnels = cluster.ztunnelPids();
  const byNode: Record<string, number[]> = Object.fromEntries(NODES.map((n) => [n, []]));
  if (mode === 'ambient') {
    for (const n of NODES) {
      const pid = ztunnels[n];
      if (pid === undefined) throw new Error(`no running ztunnel on ${n}`);
      if (!/\bztunnel\b/.test(cmdline(pid))) throw new Error(`PID ${pid} of ztunnel-${n} is not a ztunnel: ${cmdline(pid)}`);
      byNode[n] = withDescendants([pid]);
    }
  } else {
    const comps = new Map(status.components.map((c) => [c.name, c]));
    for (const p of status.pods) {
      const c = comps.get(`sidecar.${p.namespace}.${p.name}`);
      if (!c || c.pid === undefined || c.state !== 'running') throw new Error(`no running sidecar for ${p.namespace}/${p.name}`);
      if (!/\bsidecar\b/.test(cmdline(c.pid))) throw new Error(`PID ${c.pid} of sidecar ${p.name} is not a sidecar: ${cmdline(c.pid)}`);
      byNode[p.node]!.push(...withDescendants([c.pid]));
    }
  }
  return { byNode, ztunnels };
}

const sumRss = (pids: number[]) => pids.reduce((t, p) => t + (sampleProc(p)?.rssMiB ?? 0), 0);
const sumCpu = (pids: number[]) => pids.reduce((t, p) => t + (sampleProc(p)?.cpuSeconds ?? 0), 0);

// ---------------------------------------------------------------- one configuration

interface RunSettings { ratePerNode: number; seconds: number; warmupSeconds: number }

async function runConfig(perNode: number, mode: Mode, prefix: string, s: RunSettings, log: (l: string) => void, register: (c: BenchCluster | undefined) => void): Promise<ConfigResult> {
  const cluster = new BenchCluster({ prefix, yaml: meshYaml(mode, perNode), nodes: 2, log });
  register(cluster);
  const agents: ChildProcess[] = [];
  try {
    const t0 = Date.now();
    await cluster.up();
    const pods = NODES.flatMap((_, n) => Array.from({ length: perNode }, (__, i) => podName(n + 1, i + 1)));
    const ready = await waitFor(() => {
      const st = cluster.status();
      const inMesh = st.pods.filter((p) => p.namespace === NAMESPACE && p.captured);
      if (inMesh.length !== pods.length) return false;
      if (mode === 'ambient') return true;
      return st.pods.every((p) => st.components.some((c) => c.name === `sidecar.${p.namespace}.${p.name}` && c.state === 'running'));
    }, 60_000, 250);
    if (!ready) throw new Error(`the pods were not all enrolled within 60 s: ${JSON.stringify(cluster.tryStatus()?.pods.map((p) => [p.name, p.captured]))}`);
    const upSeconds = (Date.now() - t0) / 1000;
    log(`  cluster ready in ${upSeconds.toFixed(1)} s`);
    cluster.recordClusterPids();
    const rps = s.ratePerNode / perNode;
    const outputs = new Map<string, string>();
    const agentErr = new Map<string, string>();
    for (const pod of pods) {
      const targets = pods.filter((p) => p !== pod).join(',');
      // No log name: spawnIn would log every agent's normal exit; its stderr is kept here instead.
      const child = cluster.spawnIn(cluster.netns(NAMESPACE, pod), [process.execPath, SELF, '--agent', '--targets', targets, '--rps', String(rps)]);
      outputs.set(pod, '');
      child.stdout?.on('data', (d: Buffer) => { outputs.set(pod, outputs.get(pod)! + d.toString()); });
      child.stderr?.on('data', (d: Buffer) => { agentErr.set(pod, ((agentErr.get(pod) ?? '') + d.toString()).slice(-500)); });
      agents.push(child);
    }
    const started = await waitFor(() => [...outputs.values()].every((o) => o.includes('ready\n')) || agents.some((a) => a.exitCode !== null), 60_000, 100);
    if (!started || agents.some((a) => a.exitCode !== null)) throw new Error(`the agents did not all start: ${[...outputs].filter(([, o]) => !o.includes('ready')).map(([p]) => `${p} ${(agentErr.get(p) ?? '').trim()}`).join('; ')}`);
    const tPrime = Date.now();
    for (const a of agents) a.stdin?.write('prime 40\n');
    const primedAll = await waitFor(() => [...outputs.values()].every((o) => /primed \d+ \d+/.test(o)) || agents.some((a) => a.exitCode !== null), 60_000, 100);
    const primeFailed = [...outputs.values()].reduce((t, o) => t + Number(/primed \d+ (\d+)/.exec(o)?.[1] ?? 0), 0);
    const primeSeconds = (Date.now() - tPrime) / 1000;
    if (!primedAll) throw new Error('the agents did not finish priming (one request to every other pod) within 60 s');
    log(`  primed every pod pair in ${primeSeconds.toFixed(1)} s${primeFailed ? ` (${primeFailed} pairs failed)` : ''}`);
    const { byNode, ztunnels } = proxyPids(cluster, mode);
    const idle = Object.fromEntries(NODES.map((n) => [n, sumRss(byNode[n]!)]));
    const start = Date.now() + 500;
    const windowStart = start + s.warmupSeconds * 1000;
    const end = windowStart + s.seconds * 1000;
    for (const a of agents) a.stdin?.write(`go ${start} ${s.warmupSeconds} ${s.seconds}\n`);
    await new Promise((r) => setTimeout(r, windowStart - Date.now()));
    const cpu0 = Object.fromEntries(NODES.map((n) => [n, sumCpu(byNode[n]!)]));
    const zt0 = Object.fromEntries(NODES.map((n) => [n, ztunnels[n] ? sumCpu([ztunnels[n]]) : 0]));
    const peak: Record<string, number> = Object.fromEntries(NODES.map((n) => [n, 0]));
    while (Date.now() < end) {
      for (const n of NODES) peak[n] = Math.max(peak[n]!, sumRss(byNode[n]!));
      await new Promise((r) => setTimeout(r, Math.min(250, Math.max(1, end - Date.now()))));
    }
    const cpu1 = Object.fromEntries(NODES.map((n) => [n, sumCpu(byNode[n]!)]));
    const idleZtunnel = mode === 'sidecar'
      ? Object.fromEntries(NODES.map((n) => [n, { rssMiB: ztunnels[n] ? sumRss([ztunnels[n]]) : 0, cpuSeconds: ztunnels[n] ? sumCpu([ztunnels[n]]) - zt0[n]! : 0 }]))
      : undefined;
    for (const n of NODES) peak[n] = Math.max(peak[n]!, sumRss(byNode[n]!));
    const gotAll = await waitFor(() => [...outputs.values()].every((o) => o.includes('{')), 15_000, 50);
    if (!gotAll) throw new Error(`agents gave no figures: ${[...outputs].filter(([, o]) => !o.includes('{')).map(([p]) => p).join(', ')}`);
    const stats = new Map([...outputs].map(([p, o]) => [p, JSON.parse(o.slice(o.indexOf('{')).split('\n')[0]!) as AgentStats]));
    const sum = (f: (x: AgentStats) => number, filter: (p: string) => boolean = () => true) => [...stats].filter(([p]) => filter(p)).reduce((t, [, x]) => t + f(x), 0);
    const nodes = NODES.map((n, k) => {
      const requestsOk = sum((x) => x.ok, (p) => p.startsWith(`n${k + 1}-`));
      const cpuSeconds = cpu1[n]! - cpu0[n]!;
      return { node: n, proxies: byNode[n]!.length, idleRssMiB: idle[n]!, rssMiB: peak[n]!, cpuSeconds, requestsOk, cpuSecondsPer1k: requestsOk ? cpuSeconds / (requestsOk / 1000) : NaN };
    });
    const all = [...stats.values()];
    return {
      perNode, mode, nodes, idleZtunnel,
      sent: sum((x) => x.sent), ok: sum((x) => x.ok), errors: sum((x) => x.errors), skipped: sum((x) => x.skipped),
      p50Ms: Math.max(...all.map((x) => x.p50Ms)), p99Ms: Math.max(...all.map((x) => x.p99Ms)),
      windowSeconds: s.seconds, upSeconds, primeSeconds, primeFailed, firstError: all.find((x) => x.firstError)?.firstError,
    };
  } finally {
    for (const a of agents) { try { a.stdin?.end(); } catch { /* gone */ } }
    await waitFor(() => agents.every((a) => a.exitCode !== null || a.signalCode !== null), 2000, 50);
    const down = cluster.close();
    for (const n of down?.notes ?? []) log(`  cleanup: ${n}`);
    register(undefined);
  }
}

// ---------------------------------------------------------------- report

function renderTable(results: ConfigResult[]): string {
  const rows = results.map(rowOf);
  const lines = ['   N  mode      proxy RSS/node (MiB)  proxy CPU/node (s per 1k req)  sent/ok/err        p50/p99 ms', ''.padEnd(100, '-')];
  for (const r of results) {
    const row = rowOf(r);
    lines.push(`${String(r.perNode).padStart(4)}${saturated(r) ? '*' : ' '} ${r.mode.padEnd(8)}  ${row.rssMiB.toFixed(1).padStart(20)}  ${row.cpuPer1k.toFixed(3).padStart(29)}  ${`${r.sent}/${r.ok}/${r.errors + r.skipped}`.padEnd(17)}  ${r.p50Ms}/${r.p99Ms}`);
  }
  if (results.some(saturated)) lines.push('* saturated: more than 2% of the paced requests failed or were skipped (timeouts); the rate was not carried, so CPU per 1k ok requests is inflated and RSS is under stress');
  lines.push('', '   N  sidecar/ambient RSS   sidecar/ambient CPU');
  for (const n of [...new Set(rows.map((r) => r.perNode))]) {
    const a = rows.find((r) => r.perNode === n && r.mode === 'ambient');
    const sc = rows.find((r) => r.perNode === n && r.mode === 'sidecar');
    if (!a || !sc) continue;
    lines.push(`${String(n).padStart(4)}  ${(sc.rssMiB / a.rssMiB).toFixed(2).padStart(19)}   ${(sc.cpuPer1k / a.cpuPer1k).toFixed(2).padStart(19)}`);
  }
  return lines.join('\n');
}

function ratios(results: ConfigResult[]): { n: number; rss: number; cpu: number }[] {
  const rows = results.map(rowOf);
  return [...new Set(rows.map((r) => r.perNode))].flatMap((n) => {
    const a = rows.find((r) => r.perNode === n && r.mode === 'ambient');
    const s = rows.find((r) => r.perNode === n && r.mode === 'sidecar');
    return a && s ? [{ n, rss: s.rssMiB / a.rssMiB, cpu: s.cpuPer1k / a.cpuPer1k }] : [];
  });
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  if (process.argv.includes('--agent')) { await agent(process.argv.slice(2)); return 0; }
  const { values } = parseArgs({ options: {
    quick: { type: 'boolean' }, smoke: { type: 'boolean' }, rate: { type: 'string' }, seconds: { type: 'string' }, ns: { type: 'string' },
    out: { type: 'string' }, prefix: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  } });
  if (values.help) {
    process.stdout.write('usage: node dist/bench/sidecar-vs-ambient.js [--quick|--smoke] [--rate REQ_PER_S_PER_NODE] [--seconds S] [--ns 1,5,20] [--out FILE] [--prefix P]\nSee bench/README.md.\n');
    return 0;
  }
  if (process.getuid && process.getuid() !== 0) throw new Error('needs root (network namespaces); run it with sudo');
  const mode = values.smoke ? 'smoke' : values.quick ? 'quick' : 'full';
  const ns = values.ns ? values.ns.split(',').map(Number) : mode === 'smoke' ? [1] : mode === 'quick' ? [1, 5] : [1, 5, 20];
  const settings: RunSettings = {
    ratePerNode: Number(values.rate ?? '200'),
    seconds: Number(values.seconds ?? (mode === 'smoke' ? 2 : mode === 'quick' ? 5 : 10)),
    warmupSeconds: mode === 'smoke' ? 1 : 2,
  };
  const basePrefix = values.prefix ?? `sv${process.pid % 10000}`;
  const log = (l: string) => process.stderr.write(`${l}\n`);
  let current: BenchCluster | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    log(`${sig}: removing the cluster`);
    current?.close();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  const results: ConfigResult[] = [];
  const errors: string[] = [];
  const began = Date.now();
  try {
    let k = 0;
    for (const n of ns) {
      for (const m of ['ambient', 'sidecar'] as const) {
        const prefix = `${basePrefix}${String.fromCharCode(97 + k++)}`;
        log(`[${((Date.now() - began) / 1000).toFixed(0)} s] N=${n} ${m} (prefix ${prefix}, ${settings.ratePerNode} req/s per node, ${settings.warmupSeconds}+${settings.seconds} s)`);
        try {
          const r = await runConfig(n, m, prefix, settings, log, (c) => { current = c; });
          results.push(r);
          log(`  ok ${r.ok}/${r.sent}, errors ${r.errors}, skipped ${r.skipped}${r.firstError ? ` (first: ${r.firstError})` : ''}; RSS/node ${r.nodes.map((x) => x.rssMiB.toFixed(0)).join(', ')} MiB; CPU ${r.nodes.map((x) => x.cpuSeconds.toFixed(2)).join(', ')} s`);
        } catch (e: unknown) {
          const msg = `N=${n} ${m}: ${e instanceof Error ? e.message : String(e)}`;
          errors.push(msg);
          log(`  not measured: ${msg}`);
        }
      }
    }
  } finally {
    current?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
  const left = (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '').split('\n').filter((l) => l.startsWith(basePrefix));
  const rs = ratios(results);
  const maxN = Math.max(...ns);
  const rssCross = crossover(rs.map((r) => ({ n: r.n, ratio: r.rss })));
  const cpuCross = crossover(rs.map((r) => ({ n: r.n, ratio: r.cpu })));
  const atMax = rs.find((r) => r.n === maxN);
  const text = [
    '', `sidecar vs ambient: 2 nodes, ${settings.ratePerNode} req/s per node, ${settings.seconds} s measured after ${settings.warmupSeconds} s warm-up (${mode})`,
    renderTable(results), '',
    `memory: ${describeCrossover(rssCross, maxN)}`, `CPU:    ${describeCrossover(cpuCross, maxN)}`,
    atMax ? `ratio sidecar/ambient at N=${maxN}: memory ${atMax.rss.toFixed(2)}×, CPU ${atMax.cpu.toFixed(2)}×` : `no ratio at N=${maxN}`,
    ...errors.map((e) => `NOT MEASURED: ${e}`),
    left.length ? `LEFT OVER namespaces: ${left.join(', ')}` : 'cleanup: no namespace of this run left (ip netns list)',
    `total ${((Date.now() - began) / 1000).toFixed(0)} s`,
  ].join('\n');
  process.stdout.write(`${text}\n`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const out = resolve(values.out ?? join(ROOT, 'bench', 'results', `sidecar-vs-ambient-${mode}-${stamp}.json`));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({
    bench: 'sidecar-vs-ambient', mode, date: new Date().toISOString(), node: process.version,
    machine: { hostname: hostname(), cpus: cpus().length, model: cpus()[0]?.model, memoryMiB: Math.round(totalmem() / 2 ** 20), kernel: release() },
    settings: { nodes: NODES.length, perNode: ns, ...settings },
    results: results.map((r) => ({ ...r, saturated: saturated(r) })), ratios: rs,
    crossover: { memory: rssCross ?? null, cpu: cpuCross ?? null },
    atMaxN: atMax ?? null, errors, leftNamespaces: left,
  }, null, 2) + '\n');
  process.stdout.write(`record: ${out}\n`);
  return errors.length || left.length ? 1 : 0;
}

main().then((code) => { if (!process.argv.includes('--agent')) process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`sidecar-vs-ambient: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
