// The benchmark's local cluster, made and removed with the `ambit` CLI exactly as a user does
// (`ambit up` / `ambit down`), with its own prefix, state directory and ports, and every
// process the suite starts inside it tracked by PID.
//
// Invariants:
// - `close()` is idempotent, synchronous (so a signal handler can call it) and is called on
//   success, error, exception and SIGINT/SIGTERM alike. It kills every child the suite spawned
//   (by PID), runs `ambit down --prefix P --state-dir S`, checks with `ip netns list` that no
//   namespace `P-...` is left (a second `ambit down` if one is), and kills by PID (start time
//   verified) any recorded cluster process still alive. What it had to force is returned as notes.
// - Every PID the suite started or the cluster reported (daemon, control plane, ztunnels,
//   waypoints, pod processes) is appended to `pidFile` as `<pid> <starttime> <name>` as soon as
//   it is known, so a caller can check after the run (even a crashed one) that none survives.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { podNetnsName } from '../../src/sys/netns-names.js';
import { statePaths, type ClusterStatusFile } from '../../src/cluster/state-dir.js';
import { startTimeOf } from './proc-stats.js';

const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
export const AMBIT_BIN = join(ROOT, 'bin', 'ambit.js');
export const DIST_SUITE = join(ROOT, 'dist', 'bench', 'suite');

export interface CliResult { code: number; stdout: string; stderr: string }

export interface BenchClusterOptions {
  prefix: string;
  yaml: string;
  nodes?: number;
  /** Extra environment for `ambit up` (and so for the daemon, control plane and ztunnels), e.g. NODE_OPTIONS. */
  upEnv?: Record<string, string>;
  /** mkdtemp prefix of the state directory (default `ambit-bench-state-`; tests use `ambit-e2e-state-` so the runner's sweep finds it). */
  stateDirPrefix?: string;
  /** Append `<pid> <starttime> <name>` for every process started (see the invariants above). */
  pidFile?: string;
  log?: (line: string) => void;
}

export interface CloseResult extends CliResult {
  /** What close() had to force: a second `ambit down`, namespaces or processes left behind. */
  notes: string[];
}

interface KnownPid { pid: number; startTime: string; name: string }

export class BenchCluster {
  readonly prefix: string;
  readonly stateDir: string;
  readonly configDir: string;
  readonly xds: string;
  readonly admin: string;
  readonly ztunnelNet: string;
  private readonly children = new Set<ChildProcess>();
  private readonly known = new Map<number, KnownPid>();
  private closed = false;
  private readonly env: NodeJS.ProcessEnv;

  constructor(private readonly opts: BenchClusterOptions) {
    this.prefix = opts.prefix;
    this.stateDir = mkdtempSync(join(tmpdir(), opts.stateDirPrefix ?? 'ambit-bench-state-'));
    writeFileSync(join(this.stateDir, 'owner.pid'), `${process.pid}\n`); // the test runner's sweep spares a live owner's cluster
    this.configDir = mkdtempSync(join(tmpdir(), 'ambit-bench-config-'));
    writeFileSync(join(this.configDir, 'mesh.yaml'), opts.yaml);
    // Below the kernel's ephemeral range (32768+), so no outgoing connection can hold the port.
    const base = 21000 + ((process.pid * 13) % 11000);
    this.xds = `127.0.0.1:${base}`;
    this.admin = `127.0.0.1:${base + 1}`;
    this.ztunnelNet = `127.0.${200 + (process.pid % 50)}`;
    this.env = { ...process.env, AMBIT_STATE_DIR: this.stateDir, AMBIT_CONTROL_PLANE: `http://${this.admin}` };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  ambit(args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): CliResult {
    const r = spawnSync(process.execPath, [AMBIT_BIN, ...args], { env: { ...this.env, ...opts.env }, encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, killSignal: 'SIGKILL' });
    return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? `\n${r.error.message}` : '') };
  }

  /**
   * `ambit up`, asynchronously so a SIGINT/SIGTERM is handled meanwhile (close() kills it);
   * throws when the cluster does not come up (the caller's close() removes what was made).
   */
  async up(): Promise<void> {
    const argv = ['up', '--nodes', String(this.opts.nodes ?? 2), '-f', this.configDir, '--prefix', this.prefix,
      '--xds', this.xds, '--admin', this.admin, '--ztunnel-admin-net', this.ztunnelNet];
    const child = spawn(process.execPath, [AMBIT_BIN, ...argv], { env: { ...this.env, ...this.opts.upEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.track(child, 'ambit up');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { if (child.pid) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } } }, 150_000);
    const code = await new Promise<number>((res) => {
      child.on('close', (c) => res(c ?? -1));
      child.on('error', () => res(-1));
    });
    clearTimeout(timer);
    this.recordClusterPids();
    if (code !== 0) {
      const daemonLog = statePaths(this.stateDir).log('daemon');
      const detail = existsSync(daemonLog) ? readFileSync(daemonLog, 'utf8').slice(-2000) : '';
      throw new Error(`ambit up failed (${code}):\n${stderr}\n${stdout}\n${detail}`);
    }
  }

  /** The cluster's status file (what `ambit status -o json` prints); throws a readable error. */
  status(): ClusterStatusFile {
    const file = statePaths(this.stateDir).status;
    let text: string;
    try { text = readFileSync(file, 'utf8'); } catch (e: unknown) {
      throw new Error(`the cluster reports no status (${file}: ${e instanceof Error ? e.message : String(e)})`);
    }
    try { return JSON.parse(text) as ClusterStatusFile; } catch (e: unknown) {
      throw new Error(`the cluster's status file ${file} is not JSON (${text.length} bytes): ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** status(), or undefined when it cannot be read. */
  tryStatus(): ClusterStatusFile | undefined {
    try { return this.status(); } catch { return undefined; }
  }

  netns(namespace: string, pod: string): string {
    return podNetnsName(this.prefix, namespace, pod);
  }

  podIp(namespace: string, pod: string): string {
    const p = this.status().pods.find((x) => x.namespace === namespace && x.name === pod);
    if (!p) throw new Error(`no pod ${namespace}/${pod} in the cluster`);
    return p.ip;
  }

  /** PIDs of the running ztunnels, by node name ({} when the status cannot be read). */
  ztunnelPids(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of this.tryStatus()?.components ?? []) {
      if (c.name.startsWith('ztunnel-') && c.pid !== undefined && c.state === 'running') out[c.name.slice('ztunnel-'.length)] = c.pid;
    }
    return out;
  }

  ztunnelAdmin(nodeIndex: number): string {
    return `http://${this.ztunnelNet}.${nodeIndex}:15000`;
  }

  /** Tracks a child for close() (killed by PID) and records its PID. */
  track(child: ChildProcess, name: string): void {
    if (this.closed) { if (child.pid) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } } return; }
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    if (child.pid !== undefined) this.remember(child.pid, name);
  }

  /**
   * PIDs of `ambit cluster daemon --state-dir <our state dir>` processes, found by their exact
   * argv in /proc. `ambit up` starts the daemon detached and the daemon writes daemon.json only
   * once running: if `ambit up` is killed in between (a signal, a timeout), `ambit down` cannot
   * know that daemon, which would go on to build the cluster after the suite removed it.
   */
  private daemonPids(): number[] {
    const out: number[] = [];
    let entries: string[] = [];
    try { entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d)); } catch { return out; }
    for (const d of entries) {
      try {
        const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
        const i = argv.indexOf('daemon');
        if (i > 0 && argv[i - 1] === 'cluster' && argv[i + 1] === '--state-dir' && argv[i + 2] === this.stateDir) out.push(Number(d));
      } catch { /* gone */ }
    }
    return out;
  }

  /** Records every process of the cluster from its PID files (daemon.json, pids/*.pid) and its daemon's argv. */
  recordClusterPids(): void {
    for (const pid of this.daemonPids()) this.remember(pid, 'cluster daemon (by argv)');
    const files = [join(this.stateDir, 'daemon.json')];
    const dir = statePaths(this.stateDir).pids;
    try { for (const f of readdirSync(dir)) if (f.endsWith('.pid')) files.push(join(dir, f)); } catch { /* none yet */ }
    for (const f of files) {
      try {
        const rec = JSON.parse(readFileSync(f, 'utf8')) as { pid?: number; name?: string; startTime?: string };
        if (typeof rec.pid === 'number') this.remember(rec.pid, `cluster ${rec.name ?? f}`, rec.startTime);
      } catch { /* absent or being replaced */ }
    }
  }

  private remember(pid: number, name: string, startTime?: string): void {
    const st = startTime || startTimeOf(pid);
    if (st === undefined || this.known.get(pid)?.startTime === st) return;
    this.known.set(pid, { pid, startTime: st, name });
    if (this.opts.pidFile) {
      try { appendFileSync(this.opts.pidFile, `${pid} ${st} ${name.replace(/\s+/g, '_')}\n`); } catch { /* best effort */ }
    }
  }

  /** A long-running process inside a pod's namespace, tracked for close(). `ip netns exec` execs, so child.pid is the program. */
  spawnIn(netns: string, argv: string[], logName?: string): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.track(child, logName ?? argv[0] ?? 'child');
    let tail = '';
    const keep = (d: Buffer) => { tail = (tail + d.toString()).slice(-4000); };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    // A child that fails to start must not become an unhandled 'error' event.
    child.on('error', (e) => { tail += `\n${e.message}`; });
    child.on('exit', (code, signal) => {
      if (!this.closed && logName) this.opts.log?.(`${logName} exited (${code ?? signal}): ${tail.trim().slice(-500)}`);
    });
    return child;
  }

  private leftNamespaces(): string[] {
    const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
    return out.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`${this.prefix}-`));
  }

  /** Every suite-started process (by PID), then `ambit down`, then checks. Safe to call twice. */
  close(): CloseResult | undefined {
    if (this.closed) return undefined;
    this.closed = true;
    const notes: string[] = [];
    for (const c of this.children) {
      if (c.pid !== undefined) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    this.recordClusterPids();
    const down = ['down', '--prefix', this.prefix, '--state-dir', this.stateDir];
    let r = this.ambit(down, { timeoutMs: 90_000 });
    if (r.code !== 0) notes.push(`ambit down exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
    let left = this.leftNamespaces();
    const daemons = this.daemonPids();
    if (r.code !== 0 || left.length > 0 || daemons.length > 0) {
      if (left.length) notes.push(`namespaces left after ambit down: ${left.join(', ')}; running it again`);
      if (daemons.length) {
        notes.push(`a cluster daemon survived ambit down (PID ${daemons.join(', ')}): killed; running it again`);
        for (const pid of daemons) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      }
      this.recordClusterPids();
      r = this.ambit(down, { timeoutMs: 90_000 });
      left = this.leftNamespaces();
      if (left.length) notes.push(`namespaces still left: ${left.join(', ')}`);
    }
    const alive = [...this.known.values()].filter((k) => startTimeOf(k.pid) === k.startTime);
    for (const k of alive) { try { process.kill(k.pid, 'SIGKILL'); } catch { /* gone */ } }
    if (alive.length) notes.push(`killed ${alive.length} process(es) still alive after ambit down: ${alive.map((k) => `${k.name} (PID ${k.pid})`).join(', ')}`);
    rmSync(this.configDir, { recursive: true, force: true });
    if (r.code === 0 && left.length === 0) rmSync(this.stateDir, { recursive: true, force: true });
    return { ...r, notes };
  }
}

/** Poll until cond() holds or timeoutMs passes; returns whether it held. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 200): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try { if (await cond()) return true; } catch { /* not yet */ }
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function setNetnsSysctls(netns: string): void {
  // Many short connections (the Connection: close workload) from one client: reuse TIME_WAIT
  // ports for outgoing connections and widen the ephemeral range, per namespace.
  for (const kv of ['net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=1024 65000', 'net.core.somaxconn=4096']) {
    spawnSync('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w', kv], { timeout: 5000 });
  }
}
