// The benchmark's local cluster, made and removed with the `ambit` CLI exactly as a user does
// (`ambit up` / `ambit down`), with its own prefix, state directory and ports, and every
// process the suite starts inside it tracked by PID. `close()` is idempotent and is called on
// success, error and SIGINT/SIGTERM alike.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { podNetnsName } from '../../src/sys/netns-names.js';
import type { ClusterStatusFile } from '../../src/cluster/state-dir.js';

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
  log?: (line: string) => void;
}

export class BenchCluster {
  readonly prefix: string;
  readonly stateDir: string;
  readonly configDir: string;
  readonly xds: string;
  readonly admin: string;
  readonly ztunnelNet: string;
  private readonly children = new Set<ChildProcess>();
  private closed = false;
  private readonly env: NodeJS.ProcessEnv;

  constructor(private readonly opts: BenchClusterOptions) {
    this.prefix = opts.prefix;
    this.stateDir = mkdtempSync(join(tmpdir(), 'ambit-bench-state-'));
    this.configDir = mkdtempSync(join(tmpdir(), 'ambit-bench-config-'));
    writeFileSync(join(this.configDir, 'mesh.yaml'), opts.yaml);
    const base = 30000 + ((process.pid * 13) % 20000);
    this.xds = `127.0.0.1:${base}`;
    this.admin = `127.0.0.1:${base + 1}`;
    this.ztunnelNet = `127.0.${200 + (process.pid % 50)}`;
    this.env = { ...process.env, AMBIT_STATE_DIR: this.stateDir, AMBIT_CONTROL_PLANE: `http://${this.admin}` };
  }

  ambit(args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): CliResult {
    const r = spawnSync(process.execPath, [AMBIT_BIN, ...args], { env: { ...this.env, ...opts.env }, encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000 });
    return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** `ambit up`; throws (after cleaning up) when the cluster does not come up. */
  up(): void {
    const up = this.ambit(['up', '--nodes', String(this.opts.nodes ?? 2), '-f', this.configDir, '--prefix', this.prefix,
      '--xds', this.xds, '--admin', this.admin, '--ztunnel-admin-net', this.ztunnelNet], { timeoutMs: 150_000, env: this.opts.upEnv });
    if (up.code !== 0) {
      const daemonLog = join(this.stateDir, 'logs', 'daemon.log');
      const detail = existsSync(daemonLog) ? readFileSync(daemonLog, 'utf8').slice(-2000) : '';
      throw new Error(`ambit up failed (${up.code}):\n${up.stderr}\n${up.stdout}\n${detail}`);
    }
  }

  status(): ClusterStatusFile {
    const r = this.ambit(['status', '-o', 'json']);
    return (JSON.parse(r.stdout) as { status: ClusterStatusFile }).status;
  }

  netns(namespace: string, pod: string): string {
    return podNetnsName(this.prefix, namespace, pod);
  }

  podIp(namespace: string, pod: string): string {
    const p = this.status().pods.find((x) => x.namespace === namespace && x.name === pod);
    if (!p) throw new Error(`no pod ${namespace}/${pod} in the cluster`);
    return p.ip;
  }

  /** PIDs of the running ztunnels, by node name. */
  ztunnelPids(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of this.status().components) {
      if (c.name.startsWith('ztunnel-') && c.pid !== undefined && c.state === 'running') out[c.name.slice('ztunnel-'.length)] = c.pid;
    }
    return out;
  }

  ztunnelAdmin(nodeIndex: number): string {
    return `http://${this.ztunnelNet}.${nodeIndex}:15000`;
  }

  /** A long-running process inside a pod's namespace, tracked for close(). `ip netns exec` execs, so child.pid is the program. */
  spawnIn(netns: string, argv: string[], logName?: string): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.add(child);
    let tail = '';
    const keep = (d: Buffer) => { tail = (tail + d.toString()).slice(-4000); };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('exit', (code, signal) => {
      this.children.delete(child);
      if (!this.closed && logName) this.opts.log?.(`${logName} exited (${code ?? signal}): ${tail.trim().slice(-500)}`);
    });
    return child;
  }

  /** Every suite-started process (by PID), then `ambit down`. Safe to call twice. */
  close(): CliResult | undefined {
    if (this.closed) return undefined;
    this.closed = true;
    for (const c of this.children) {
      if (c.pid !== undefined) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    const r = this.ambit(['down', '--prefix', this.prefix], { timeoutMs: 90_000 });
    rmSync(this.configDir, { recursive: true, force: true });
    if (r.code === 0) rmSync(this.stateDir, { recursive: true, force: true });
    return r;
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
