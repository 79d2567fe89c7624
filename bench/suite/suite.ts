// The macro benchmark suite: every path of paths.ts measured in one run, in rounds
// whose path order rotates, with the same client tools (iperf3, wrk, hey) and the same server
// program (http-server.ts, iperf3 -s). Every load is bounded in time (tool duration + a hard
// kill) and count (fixed connection counts); all traffic stays inside the cluster's namespaces.
// The cluster and every process the suite started are removed on success, error and signals.
//
// Invariants:
// - A measurement never crashes the suite: a tool (or hold-conns) that fails, is killed or
//   prints nothing, or any exception while preparing or measuring one path, becomes that
//   path's recorded error (`not measured: <reason>`, in `errors` and `notMeasured`) and the
//   suite goes on with the next measurement. Only a failure of the cluster itself (`ambit up`,
//   the certificates, the servers) ends the run, with an exception, after cleanup.
// - `cluster.close()` (ambit down with the state dir, then checks) runs exactly once on every
//   exit: success, exception (finally), SIGINT/SIGTERM/SIGHUP and uncaught errors (handlers
//   installed before the cluster exists and removed only after close()).
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { BenchCluster, DIST_SUITE, setNetnsSysctls, waitFor } from './bench-cluster.js';
import { ALL_PATHS, HTTP_PORT, IPERF_PORT, type BenchPath, type PathTarget, type SuiteContext } from './paths.js';
import { issueCerts } from './peers.js';
import { cpuOf, sampleProc } from './proc-stats.js';
import { computeFigures, evaluateTargets, markUnmeasured, renderText, workloadsFor, type PathReport, type Sample, type SuiteRecord, type Workload } from './report.js';
import { hey, iperf3, wrk, type TrackChild } from './tools.js';
import { summarizeByFile, summarizeProfiles } from './cpu-profile.js';

export type SuiteMode = 'full' | 'quick' | 'smoke';

export interface SuiteOptions {
  mode: SuiteMode;
  /** Output JSON path. */
  out: string;
  prefix?: string;
  /** Only these path ids (default: all). */
  paths?: string[];
  /** Only these workloads (default: all; e.g. one workload to profile it alone). */
  workloads?: Workload[];
  /** Write ztunnel CPU profiles (node --cpu-prof) to this directory and summarize them. */
  profileDir?: string;
  rounds?: number;
  seconds?: number;
  holdConnections?: number;
  /** mkdtemp prefix of the cluster's state directory (tests: `ambit-e2e-state-`, which the test runner sweeps). */
  stateDirPrefix?: string;
  /** Append `<pid> <starttime> <name>` of every process started, for a no-leftover check. */
  pidFile?: string;
  /** false: a mesh-wide Telemetry turns the waypoint's per-request access log off (the C peers log nothing). */
  accessLog?: boolean;
  log?: (line: string) => void;
}

/** A mesh-wide Telemetry that turns access-log lines off (waypoints; ztunnels log per connection regardless). */
export const NO_ACCESS_LOG_YAML = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: bench-no-access-log, namespace: istio-system}
spec:
  accessLogging: [{disabled: true}]`;

interface ModeSettings {
  rounds: number;
  seconds: number;
  hold: number;
  warmupSeconds: number;
  /** How long hold-conns may take to open its connections, and how long they are carried while sampling RSS. */
  holdOpenMs: number;
  holdCarryMs: number;
  /** Quiet time after start before idle RSS is read (V8 returns startup garbage only once idle). */
  idleSettleMs: number;
}

const SETTINGS: Record<SuiteMode, ModeSettings> = {
  // Five rounds: on 2 busy cores single rounds swing ±25 %, and a median of five holds better than of three.
  full: { rounds: 5, seconds: 4, hold: 1000, warmupSeconds: 1, holdOpenMs: 40_000, holdCarryMs: 1000, idleSettleMs: 25_000 },
  quick: { rounds: 3, seconds: 1, hold: 1000, warmupSeconds: 0, holdOpenMs: 40_000, holdCarryMs: 1000, idleSettleMs: 0 },
  // wrk counts whole seconds (1 s each); iperf3 sends a fixed 64 MiB; hey runs 0.5 s.
  smoke: { rounds: 1, seconds: 0.5, hold: 20, warmupSeconds: 0, holdOpenMs: 15_000, holdCarryMs: 200, idleSettleMs: 0 },
};

const TOOLS = ['stunnel', 'haproxy', 'iperf3', 'wrk', 'hey', 'curl', 'ip'];

export const BENCH_YAML = ['plain', 'mesh', 'l7'].map((ns) => {
  const labels = ns === 'plain' ? '{}' : ns === 'mesh' ? '{istio.io/dataplane-mode: ambient}' : '{istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}';
  const pod = (name: string, node: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {app: ${name}}}
spec: {nodeName: ${node}, serviceAccountName: ${name}, containers: [{name: main, command: [sleep, infinity]}]}`;
  return [`apiVersion: v1
kind: Namespace
metadata: {name: ${ns}, labels: ${labels}}`, pod('client', 'node-1'), pod('server', 'node-2'), `apiVersion: v1
kind: Service
metadata: {name: server, namespace: ${ns}}
spec: {selector: {app: server}, ports: [{name: http, port: 80, targetPort: ${HTTP_PORT}}, {name: iperf, port: ${IPERF_PORT}, targetPort: ${IPERF_PORT}}]}`].join('\n---\n');
}).join('\n---\n') + `
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: l7, labels: {istio.io/waypoint-for: service}}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: v1
kind: Namespace
metadata: {name: bench}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: bench}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: server, namespace: mesh}
spec:
  parentRefs: [{name: ingress, namespace: bench}]
  rules: [{backendRefs: [{name: server, port: 80}]}]
`;

function preflight(): string | undefined {
  if (process.getuid && process.getuid() !== 0) return 'the suite needs root (network namespaces); run it with sudo';
  const missing = TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length) return `missing tools: ${missing.join(', ')}; run \`npm run setup\` (scripts/setup.sh installs stunnel4 haproxy iperf3 wrk hey)`;
  return undefined;
}

async function measure(target: PathTarget, workload: Workload, seconds: number, track: TrackChild): Promise<Sample | string> {
  const procs = target.proxies();
  const cpu0 = Object.fromEntries(Object.entries(procs).map(([n, pid]) => [n, cpuOf([pid])]));
  const cpu = (): { proxyCpuSeconds: number; proxyCpuByProcess: Record<string, number> } => {
    const by = Object.fromEntries(Object.entries(procs).map(([n, pid]) => [n, Math.round((cpuOf([pid]) - cpu0[n]!) * 100) / 100]));
    return { proxyCpuSeconds: Object.values(by).reduce((a, b) => a + b, 0), proxyCpuByProcess: by };
  };
  const url = `http://${target.http.host}:${target.http.port}/`;
  const started = Date.now();
  let r;
  switch (workload) {
    case 'throughput':
      if (!target.iperf) return 'not measured: no iperf target (HTTP-only path)';
      r = await iperf3(target.clientNetns, target.iperf.host, target.iperf.port, seconds, track);
      if (typeof r === 'string') return r;
      return { value: r.gbitPerSecond, errors: 0, ...cpu(), seconds: seconds < 1 ? (Date.now() - started) / 1000 : Math.round(seconds) };
    case 'keepalive':
    case 'newconns':
      r = await wrk(target.clientNetns, url, { connections: 16, seconds, close: workload === 'newconns', track });
      if (typeof r === 'string') return r;
      return { value: r.rps, p50Ms: r.p50Ms, p90Ms: r.p90Ms, p99Ms: r.p99Ms, errors: r.errors, ...cpu(), seconds: Math.max(1, Math.round(seconds)) };
    case 'fixed1k':
      r = await hey(target.clientNetns, url, { rps: 1000, seconds, track });
      if (typeof r === 'string') return r;
      return { value: r.rps, p50Ms: r.p50Ms, p90Ms: r.p90Ms, p99Ms: r.p99Ms, errors: r.errors, ...cpu(), seconds: (Date.now() - started) / 1000 };
  }
}

function rssByName(target: PathTarget): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(target.proxies())) {
    const s = sampleProc(pid);
    if (s) out[name] = s.rssMiB;
  }
  return out;
}

/** What a hold run gave: figures, or why not. */
type HoldResult = { rss: Record<string, number>; held: number; failed: number } | string;

/** Holds `count` keep-alive connections through the path; returns each proxy's largest RSS meanwhile, or why it could not. */
async function holdConnections(ctx: SuiteContext, target: PathTarget, count: number, settings: ModeSettings): Promise<HoldResult> {
  const maxMs = settings.holdOpenMs + settings.holdCarryMs + 10_000;
  const child: ChildProcess = ctx.cluster.spawnIn(target.clientNetns, [process.execPath, join(DIST_SUITE, 'hold-conns.js'), '--host', target.http.host, '--port', String(target.http.port), '--count', String(count), '--max-ms', String(maxMs)], 'hold-conns');
  let out = '';
  let errOut = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { errOut += d.toString(); });
  const ended = () => child.exitCode !== null || child.signalCode !== null;
  const peak: Record<string, number> = {};
  const sample = () => { for (const [k, v] of Object.entries(rssByName(target))) peak[k] = Math.max(peak[k] ?? 0, v); };
  try {
    await waitFor(() => { sample(); return /held \d+/.test(out) || ended(); }, settings.holdOpenMs, 100);
    const m = /held (\d+) failed (\d+)/.exec(out);
    if (!m) {
      const how = ended() ? `exited (${child.exitCode ?? child.signalCode})` : `did not open its connections within ${settings.holdOpenMs / 1000} s`;
      const said = (errOut || out).trim().replace(/\s+/g, ' ').slice(0, 300);
      return `not measured: hold-conns ${how} ${said ? `saying: ${said}` : 'and printed nothing'}`;
    }
    // Carry them for a moment (let allocation settle), sampling.
    const until = Date.now() + settings.holdCarryMs;
    while (Date.now() < until && !ended()) { sample(); await new Promise((r) => setTimeout(r, 100)); }
    const held = Number(m[1]);
    const failed = Number(m[2]);
    if (held === 0) return `not measured: hold-conns held 0 of ${count} connections (${failed} failed)`;
    return { rss: peak, held, failed };
  } finally {
    // Done with it either way: close its stdin (it exits), then kill it by PID if it lingers.
    try { child.stdin?.end(); } catch { /* gone */ }
    await waitFor(ended, 3000, 50);
    if (!ended() && child.pid) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }
  }
}

/** An exception while working on one path, as that path's error text. */
function reasonOf(e: unknown): string {
  return `not measured: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
}

export async function runSuite(opts: SuiteOptions): Promise<SuiteRecord> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const why = preflight();
  if (why) throw new Error(why);
  const base = SETTINGS[opts.mode];
  const rounds = opts.rounds ?? base.rounds;
  const seconds = opts.seconds ?? base.seconds;
  const holdCount = opts.holdConnections ?? base.hold;
  const started = Date.now();
  const at = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s`;
  const selected: BenchPath[] = ALL_PATHS.filter((p) => !opts.paths || opts.paths.includes(p.id));
  const prefix = opts.prefix ?? `ab${process.pid % 100000}`;
  const upEnv = opts.profileDir ? { AMBIT_ZTUNNEL_NODE_ARGS: `--cpu-prof --cpu-prof-dir=${opts.profileDir}`, AMBIT_WAYPOINT_NODE_ARGS: `--cpu-prof --cpu-prof-dir=${opts.profileDir}` } : undefined;
  if (opts.profileDir) mkdirSync(opts.profileDir, { recursive: true });
  const notes: string[] = [];
  const workDir = mkdtempSync(join(tmpdir(), 'ambit-bench-work-'));
  const yaml = opts.accessLog === false ? `${BENCH_YAML}\n---\n${NO_ACCESS_LOG_YAML}` : BENCH_YAML;
  const cluster = new BenchCluster({ prefix, yaml, upEnv, log, stateDirPrefix: opts.stateDirPrefix, pidFile: opts.pidFile });
  const cleanup = () => {
    const down = cluster.close();
    if (down) {
      for (const n of down.notes) { notes.push(n); log(`cleanup: ${n}`); }
    }
    rmSync(workDir, { recursive: true, force: true });
  };
  // Installed before anything runs, removed only after cleanup: a signal or an uncaught error
  // at any point still removes the cluster.
  const onSignal = (sig: NodeJS.Signals) => {
    log(`${sig}: removing the cluster (prefix ${prefix})`);
    cleanup();
    process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGHUP' ? 1 : 15));
  };
  const onFatal = (e: unknown) => {
    log(`bench: uncaught ${e instanceof Error ? e.stack ?? e.message : String(e)}; removing the cluster (prefix ${prefix})`);
    cleanup();
    process.exit(1);
  };
  const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const sig of SIGNALS) process.on(sig, onSignal);
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  const reports: PathReport[] = selected.map((p) => ({ id: p.id, label: p.label, available: false, samples: {}, figures: {}, peakRssMiB: {}, errors: [], notMeasured: {} }));
  let ztunnelPidsForProfile: number[] = [];
  try {
    log(`starting a 2-node cluster (prefix ${prefix}, state ${cluster.stateDir})`);
    const up = cluster.up();
    // The peers' certificates need no cluster (`ambit ca` is offline): made while it comes up.
    let certs: ReturnType<typeof issueCerts>;
    try { certs = issueCerts((a) => cluster.ambit(a), join(workDir, 'certs'), 'plain'); } finally { await up; }
    log(`${at()} cluster up`);
    for (const ns of ['plain', 'mesh', 'l7']) for (const pod of ['client', 'server']) setNetnsSysctls(cluster.netns(ns, pod));
    const track: TrackChild = (c, name) => cluster.track(c, name);
    const servers: { ns: string; ready: () => boolean }[] = [];
    for (const ns of ['plain', 'mesh', 'l7']) {
      const netns = cluster.netns(ns, 'server');
      const http = cluster.spawnIn(netns, [process.execPath, join(DIST_SUITE, 'http-server.js'), '--port', String(HTTP_PORT)], `${ns}/server http-server`);
      let listening = false;
      http.stdout?.on('data', (d: Buffer) => { if (d.toString().includes('listening')) listening = true; });
      cluster.spawnIn(netns, ['iperf3', '-s', '-p', String(IPERF_PORT)], `${ns}/server iperf3`);
      servers.push({ ns, ready: () => listening });
    }
    for (const sv of servers) if (!(await waitFor(sv.ready, 10_000, 50))) throw new Error(`the http server in ${sv.ns}/server did not start`);
    log(`${at()} servers up`);
    const ctx: SuiteContext = { cluster, track, certs, workDir, log };
    const targets = new Map<string, PathTarget>();
    for (const [i, p] of selected.entries()) {
      const rep = reports[i]!;
      let st;
      try { st = await p.prepare(ctx); } catch (e: unknown) { st = { available: false as const, reason: reasonOf(e).replace(/^not measured: /, '') }; }
      if (st.available) {
        rep.available = true;
        targets.set(p.id, st.target);
        rep.startRssMiB = rssByName(st.target);
      } else {
        rep.reason = st.reason;
        log(`${p.id}: not available — ${st.reason}`);
      }
    }
    cluster.recordClusterPids();
    log(`${at()} paths prepared`);
    if (base.idleSettleMs > 0) {
      log(`${at()} idle for ${base.idleSettleMs / 1000} s before reading idle RSS`);
      await new Promise((r) => setTimeout(r, base.idleSettleMs));
    }
    for (const rep of reports) { const t = targets.get(rep.id); if (t) rep.idleRssMiB = rssByName(t); }
    ztunnelPidsForProfile = Object.values(cluster.ztunnelPids());
    if (base.warmupSeconds > 0) {
      for (const [id, t] of targets) { log(`warm-up ${id}`); await wrk(t.clientNetns, `http://${t.http.host}:${t.http.port}/`, { connections: 16, seconds: base.warmupSeconds, track }); }
    }
    const live = selected.filter((p) => targets.has(p.id));
    for (let round = 0; round < rounds; round++) {
      // Rotate the order each round so no path always runs first (or right after another).
      const order = live.map((_, k) => live[(k + round) % live.length]!);
      for (const p of order) {
        const t = targets.get(p.id)!;
        const rep = reports.find((r) => r.id === p.id)!;
        for (const w of workloadsFor(t.iperf !== undefined).filter((x) => !opts.workloads || opts.workloads.includes(x))) {
          let s: Sample | string;
          try { s = await measure(t, w, seconds, track); } catch (e: unknown) { s = reasonOf(e); }
          if (typeof s === 'string') { rep.errors.push(`round ${round + 1} ${w}: ${s}`); log(`${at()}   ${p.id} ${w}: ${s}`); continue; }
          (rep.samples[w] ??= []).push(s);
          log(`${at()}   round ${round + 1}/${rounds} ${p.id.padEnd(9)} ${w.padEnd(10)} ${s.value.toFixed(w === 'throughput' ? 2 : 0)}${s.p99Ms !== undefined ? ` p99 ${s.p99Ms.toFixed(2)} ms` : ''} cpu ${s.proxyCpuSeconds.toFixed(2)} s${Object.keys(s.proxyCpuByProcess).length > 1 ? ` (${Object.entries(s.proxyCpuByProcess).map(([n, c]) => `${n} ${c.toFixed(2)}`).join(', ')})` : ''}${s.errors ? ` errors ${s.errors}` : ''}`);
        }
      }
    }
    for (const p of live) {
      const t = targets.get(p.id)!;
      const rep = reports.find((r) => r.id === p.id)!;
      if (holdCount > 0) {
        let h: HoldResult;
        try { h = await holdConnections(ctx, t, holdCount, base); } catch (e: unknown) { h = reasonOf(e); }
        if (typeof h === 'string') {
          rep.errors.push(`hold: ${h}`);
          rep.notMeasured.hold = h;
          log(`${at()}   hold ${holdCount} ${p.id}: ${h}`);
        } else {
          rep.holdRssMiB = h.rss;
          rep.holdConnections = { requested: holdCount, held: h.held, failed: h.failed };
          log(`${at()}   hold ${holdCount} ${p.id}: held ${h.held}, failed ${h.failed}, RSS ${JSON.stringify(Object.fromEntries(Object.entries(h.rss).map(([k, v]) => [k, Number(v.toFixed(1))])))}`);
        }
      }
      try {
        for (const [name, pid] of Object.entries(t.proxies())) {
          const s = sampleProc(pid);
          if (s) rep.peakRssMiB[name] = s.hwmMiB;
        }
      } catch (e: unknown) {
        rep.errors.push(`peak RSS: ${reasonOf(e)}`);
      }
    }
    for (const [i, p] of selected.entries()) {
      const t = targets.get(p.id);
      if (t) markUnmeasured(reports[i]!, workloadsFor(t.iperf !== undefined).filter((x) => !opts.workloads || opts.workloads.includes(x)));
    }
    if (opts.profileDir) {
      // A ztunnel writes its profile when it exits normally; its drain (up to 5 s with pooled
      // HBONE connections) can outlast `ambit down`'s grace, so stop them first and wait.
      for (const pid of ztunnelPidsForProfile) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
      const dir = opts.profileDir;
      await waitFor(() => ztunnelPidsForProfile.every((pid) => readdirSync(dir).some((f) => f.includes(`.${pid}.`) && f.endsWith('.cpuprofile'))), 15_000, 200);
    }
  } finally {
    cleanup();
    for (const sig of SIGNALS) process.removeListener(sig, onSignal);
    process.removeListener('uncaughtException', onFatal);
    process.removeListener('unhandledRejection', onFatal);
    log(`${at()} cluster removed`);
  }
  computeFigures(reports);
  const cpuList = cpus();
  const rec: SuiteRecord = {
    kind: 'ambit-bench-suite',
    date: new Date().toISOString(),
    mode: opts.mode,
    node: process.version,
    machine: { cpus: cpuList.length, model: cpuList[0]?.model ?? 'unknown', memoryGiB: Number((totalmem() / 2 ** 30).toFixed(1)), kernel: release() },
    settings: { rounds, secondsPerTool: seconds, wrkConnections: 16, fixedRate: 1000, holdConnections: holdCount, pathOrder: 'rotated each round', waypointAccessLog: opts.accessLog !== false },
    durationSeconds: (Date.now() - started) / 1000,
    paths: reports,
    targets: evaluateTargets(reports),
    notes,
  };
  if (opts.profileDir) {
    const files = readdirSync(opts.profileDir).filter((f) => f.endsWith('.cpuprofile') && ztunnelPidsForProfile.some((pid) => f.includes(`.${pid}.`)));
    const paths = files.map((f) => join(opts.profileDir!, f));
    const top = summarizeProfiles(paths, 25);
    const byFile = summarizeByFile(paths, 15);
    (rec as SuiteRecord & { profile?: unknown }).profile = { files, top, byFile };
    process.stdout.write(`\nztunnel CPU profile (${files.length} files, share of busy time):\n`);
    for (const h of top) process.stdout.write(`  ${String(h.selfPct).padStart(5)}%  ${h.fn}  ${h.where}\n`);
    process.stdout.write('by file:\n');
    for (const h of byFile) process.stdout.write(`  ${String(h.selfPct).padStart(5)}%  ${h.file}\n`);
  }
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(rec, null, 2) + '\n');
  process.stdout.write(renderText(rec));
  process.stdout.write(`results: ${opts.out}\n`);
  return rec;
}
