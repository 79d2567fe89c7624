// Creating and removing a local cluster: what `ambit up` prepares before it starts the
// daemon, and everything `ambit down` removes — safe to run twice or after a crash.
import { spawn } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { AmbitError } from '../core/errors.js';
import { sleep } from '../core/clock.js';
import { MeshCA } from '../identity/ca.js';
import { issueNodeTokens, saveNodeTokens } from '../controlplane/node-credentials.js';
import { newProxyKey, saveProxyKey } from '../controlplane/proxy-credentials.js';
import { ensureAdminToken } from '../controlplane/admin-token.js';
import { loadNative } from '../sys/native.js';
import { runCommand } from '../sys/exec.js';
import { removeDnsForPrefix } from './dns.js';
import { statePaths, writeJsonAtomic, type ClusterSpec } from './state-dir.js';
import { checkPidRecord, killFromPidFiles, readPidRecord, type PidRecord } from './supervisor.js';
import { readCmdline, readProcStat } from '../sys/proc.js';
import { destroyTopology } from './topology.js';
import { mapLimit } from './netns.js';
import { PodSandboxes } from './pod-cni.js';

/** What the local cluster needs from this machine; a clear error says what to do otherwise. */
export async function preflight(): Promise<void> {
  if (process.getuid && process.getuid() !== 0) {
    throw new AmbitError('AMBIT_ERR_PERMISSION', 'the local cluster needs root (network namespaces, iptables)', { hint: 'run it with sudo' });
  }
  loadNative();
  for (const [cmd, flag, pkg] of [['ip', '-V', 'iproute2'], ['iptables', '--version', 'iptables'], ['/usr/lib/cni/ptp', '--help', 'containernetworking-plugins']] as const) {
    try {
      await runCommand(cmd, [flag], { timeoutMs: 5000 });
    } catch {
      throw new AmbitError('AMBIT_ERR_CLUSTER', `${cmd} is missing`, { hint: `install it: apt-get install -y ${pkg} (or run \`npm run setup\`)` });
    }
  }
}

export async function prepareState(spec: ClusterSpec): Promise<void> {
  const p = statePaths(spec.stateDir);
  if (existsSync(p.spec)) {
    throw new AmbitError('AMBIT_ERR_CLUSTER', `a cluster already exists in ${spec.stateDir}`, { hint: 'see it with `ambit status`, or remove it with `ambit down`' });
  }
  await mkdir(spec.stateDir, { recursive: true, mode: 0o700 });
  await chmod(spec.stateDir, 0o700);
  await mkdir(`${p.logs}/pods`, { recursive: true });
  await mkdir(p.pids, { recursive: true });
  await mkdir(`${spec.stateDir}/tokens`, { recursive: true, mode: 0o700 });
  const ca = await MeshCA.create({ trustDomain: spec.trustDomain });
  await ca.save(p.ca);
  await writeFile(p.root, ca.rootPem);
  const tokens = issueNodeTokens(spec.nodes);
  await saveNodeTokens(p.tokens, tokens);
  for (const [node, token] of Object.entries(tokens)) await writeFile(p.tokenFile(node), token + '\n', { mode: 0o600 });
  await saveProxyKey(p.proxyKey, newProxyKey());
  await ensureAdminToken(p.adminToken);
  await writeJsonAtomic(p.spec, spec);
}

/** Start the daemon in its own session; it outlives this command. */
export function startDaemon(spec: ClusterSpec): number {
  const p = statePaths(spec.stateDir);
  const out = openSync(p.log('daemon'), 'a');
  const child = spawn(spec.ambit.node, [spec.ambit.script, 'cluster', 'daemon', '--state-dir', spec.stateDir], {
    detached: true, stdio: ['ignore', out, out], env: { ...process.env },
  });
  child.unref();
  return child.pid ?? -1;
}

export async function writeDaemonPid(stateDir: string): Promise<void> {
  const st = readProcStat(process.pid);
  const record: PidRecord = {
    name: 'daemon', pid: process.pid, startTime: st?.startTime ?? '', argv: readCmdline(process.pid) ?? process.argv,
    logFile: statePaths(stateDir).log('daemon'), startedAt: new Date().toISOString(), supervisorPid: process.ppid,
  };
  await writeJsonAtomic(`${stateDir}/daemon.json`, record);
}

export interface DownReport {
  daemon: 'stopped' | 'not running' | 'killed';
  processes: number;
  namespaces: number;
  refused: string[];
}

/** Remove everything the cluster made. Idempotent. */
export async function teardown(stateDir: string, prefix: string): Promise<DownReport> {
  const report: DownReport = { daemon: 'not running', processes: 0, namespaces: 0, refused: [] };
  // 1. The daemon first, so it cannot restart what we stop next.
  const rec = existsSync(`${stateDir}/daemon.json`) ? readPidRecord(`${stateDir}/daemon.json`) : undefined;
  if (rec && checkPidRecord({ ...rec, pid: rec.pid }).verdict !== 'gone') {
    try { process.kill(rec.pid, 'SIGTERM'); } catch { /* gone meanwhile */ }
    report.daemon = 'stopped';
    for (let i = 0; i < 100 && readProcStat(rec.pid) && readProcStat(rec.pid)!.state !== 'Z'; i++) await sleep(100);
    if (readProcStat(rec.pid) && readProcStat(rec.pid)!.state !== 'Z') {
      try { process.kill(rec.pid, 'SIGKILL'); } catch { /* gone */ }
      report.daemon = 'killed';
    }
  }
  // 1b. The same cluster's daemon started from another state dir (`ambit up` and `ambit down`
  //     run with different AMBIT_STATE_DIRs): found by its exact argv, checked against its spec.
  for (const other of daemonsForPrefix(prefix, stateDir)) {
    await stopPid(other.pid);
    report.daemon = 'stopped';
    const k = await killFromPidFiles(other.stateDir, { graceMs: 3000 });
    report.processes += k.killed.length;
    if (k.refused.length === 0) await rm(other.stateDir, { recursive: true, force: true });
  }
  // 2. Every process it started (PID files, verified before killing).
  if (existsSync(stateDir)) {
    const k = await killFromPidFiles(stateDir, { graceMs: 3000 });
    report.processes = k.killed.length;
    report.refused = k.refused.map((r) => `${r.name} (PID ${r.pid}): ${r.reason}`);
  }
  // 3. Pod sandboxes the daemon could not delete itself: CNI DEL (ambit-cni answers success
  //    when its agent is gone; ptp removes the veth), then the namespaces.
  if (existsSync(stateDir)) {
    const sandboxes = new PodSandboxes({ prefix, stateDir });
    await mapLimit(sandboxes.records(), 8, (r) => sandboxes.remove(r).catch(() => undefined));
  }
  // 4. Kernel objects: namespaces (and with them veths and iptables rules), DNS files.
  const d = await destroyTopology(prefix);
  report.namespaces = d.removed.length;
  report.processes += d.killedPids.length;
  await removeDnsForPrefix(prefix);
  // 5. Files.
  if (report.refused.length === 0) await rm(stateDir, { recursive: true, force: true });
  return report;
}

/** Running `ambit cluster daemon --state-dir DIR` processes whose cluster spec (DIR/cluster.json) names `prefix`. */
export function daemonsForPrefix(prefix: string, exceptStateDir: string): { pid: number; stateDir: string }[] {
  const found: { pid: number; stateDir: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const argv = readCmdline(pid);
    const i = argv ? argv.indexOf('daemon') : -1;
    if (!argv || i < 1 || argv[i - 1] !== 'cluster' || argv[i + 1] !== '--state-dir' || !argv[i + 2]) continue;
    const dir = argv[i + 2]!;
    if (resolve(dir) === resolve(exceptStateDir)) continue;
    try {
      const spec = JSON.parse(readFileSync(statePaths(dir).spec, 'utf8')) as { prefix?: string };
      if (spec.prefix === prefix) found.push({ pid, stateDir: dir });
    } catch {
      // not a cluster we can read: leave it alone
    }
  }
  return found;
}

async function stopPid(pid: number): Promise<void> {
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  for (let i = 0; i < 100 && readProcStat(pid) && readProcStat(pid)!.state !== 'Z'; i++) await sleep(100);
  if (readProcStat(pid) && readProcStat(pid)!.state !== 'Z') {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
}
