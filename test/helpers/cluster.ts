// A real local cluster for netns-tier tests, made and removed with the CLI exactly as a user
// does (`ambit up` / `ambit down`), with a unique prefix, state directory and ports so tests
// never meet a user's cluster. Always call `down()` in `after`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { podNetnsName } from '../../src/sys/netns-names.js';

const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
const BIN = join(ROOT, 'bin', 'ambit.js');

export interface TestCluster {
  prefix: string;
  stateDir: string;
  configDir: string;
  adminUrl: string;
  ztunnelHost(node: number): string;
  /** The k-th waypoint replica's admin/metrics address (k from 1, in the order they started). */
  waypointAdmin(k: number): string;
  ambit(args: string[], opts?: { timeoutMs?: number; input?: string }): { code: number; stdout: string; stderr: string };
  /** Run a command inside a pod (like `ambit exec`). */
  exec(pod: string, argv: string[], timeoutMs?: number): { code: number; stdout: string; stderr: string };
  /** A long-running process inside a pod. */
  spawnIn(pod: string, argv: string[]): ChildProcess;
  netns(pod: string): string;
  apply(yamlText: string): { code: number; stdout: string; stderr: string };
  down(): { code: number; stdout: string; stderr: string };
}

/** The last lines of every log of a cluster (daemon and components), to explain a failed start. */
export function clusterLogTails(stateDir: string, bytes = 1500): string {
  const dir = join(stateDir, 'logs');
  if (!existsSync(dir)) return '(no logs)';
  return readdirSync(dir).sort().map((f) => `--- ${f}\n${readFileSync(join(dir, f), 'utf8').slice(-bytes)}`).join('\n');
}

let counter = 0;

/**
 * `patch` rewrites the config once the state directory is known (tests that name it in pods);
 * `upArgs` are added to `ambit up` (e.g. --outside-host NAME).
 */
export function startCluster(yamlText: string, options: { nodes?: number; name?: string; patch?: (stateDir: string) => string; upArgs?: string[] } = {}): TestCluster {
  const id = `${process.pid % 10000}${counter++}`;
  const prefix = `at${id}${options.name ?? ''}`.slice(0, 12);
  const stateDir = mkdtempSync(join(tmpdir(), 'ambit-e2e-state-'));
  // The test runner's sweep leaves a cluster alone while its owner runs (other checkouts may test at once).
  writeFileSync(join(stateDir, 'owner.pid'), `${process.pid}\n`);
  const configDir = mkdtempSync(join(tmpdir(), 'ambit-e2e-config-'));
  writeFileSync(join(configDir, 'mesh.yaml'), options.patch ? options.patch(stateDir) : yamlText);
  // Below the kernel's ephemeral range (32768+), so no outgoing connection can hold the port.
  const base = 20000 + ((process.pid * 7 + counter * 101) % 12000);
  const xds = `127.0.0.1:${base}`;
  const admin = `127.0.0.1:${base + 1}`;
  const net = `127.0.${100 + (process.pid % 100) + counter}`;
  const env = { ...process.env, AMBIT_STATE_DIR: stateDir, AMBIT_CONTROL_PLANE: `http://${admin}` };
  const ambit = (args: string[], opts: { timeoutMs?: number; input?: string } = {}) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, input: opts.input });
    return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  const up = ambit(['up', '--nodes', String(options.nodes ?? 2), '-f', configDir, '--prefix', prefix, '--xds', xds, '--admin', admin, '--ztunnel-admin-net', net, ...(options.upArgs ?? [])], { timeoutMs: 120_000 });
  const cluster: TestCluster = {
    prefix, stateDir, configDir, adminUrl: `http://${admin}`,
    ztunnelHost: (node) => `${net}.${node}`,
    waypointAdmin: (k) => `${net}.${200 + k}:15020`,
    ambit,
    netns: (pod) => {
      const [ns, name] = pod.split('/') as [string, string];
      return podNetnsName(prefix, ns, name);
    },
    exec(pod, argv, timeoutMs = 20_000) {
      const r = spawnSync('ip', ['netns', 'exec', cluster.netns(pod), ...argv], { encoding: 'utf8', timeout: timeoutMs });
      return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
    spawnIn(pod, argv) {
      return spawn('ip', ['netns', 'exec', cluster.netns(pod), ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    },
    apply(text) {
      const dir = mkdtempSync(join(tmpdir(), 'ambit-e2e-apply-'));
      writeFileSync(join(dir, 'change.yaml'), text);
      try {
        return ambit(['apply', '-f', join(dir, 'change.yaml')]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    down: () => {
      const r = ambit(['down', '--prefix', prefix], { timeoutMs: 60_000 });
      rmSync(configDir, { recursive: true, force: true });
      return r;
    },
  };
  if (up.code !== 0) {
    const daemonLog = join(stateDir, 'logs', 'daemon.log');
    const detail = existsSync(daemonLog) ? readFileSync(daemonLog, 'utf8').slice(-3000) : '';
    cluster.down();
    throw new Error(`ambit up failed (${up.code}):\n${up.stderr}\n${up.stdout}\n${detail}`);
  }
  return cluster;
}

