// Keeps the benchmark suite from rotting: runs `bench/run.js --smoke` (one round, ~0.5-1 s per
// tool, 20 held connections, a real 2-node cluster and the C peers) and asserts that every path
// produced numbers or a clear reason why not (`not available: ...`, `not measured: ...`), that
// the direct and ambit L4 paths produced numbers (those must work), that the JSON record is
// written with the machine facts, and that nothing of the run is left: no namespace with its
// prefix, no process it started. It times nothing and asserts no figure's value.
//
// Names the test runner's sweep (scripts/run-tests.mjs) catches if this file is killed: the
// namespaces are `at<digits>bs-...`, the cluster state dir `/tmp/ambit-e2e-state-bs<pid>-...`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startTimeOf } from '../../bench/suite/proc-stats.js';

const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
const dir = mkdtempSync(join(tmpdir(), 'ambit-bench-smoke-'));
const prefix = `at${process.pid % 10000}bs`;
const statePrefix = `ambit-e2e-state-bs${process.pid}-`;
const pidFile = join(dir, 'pids.txt');
let bench: ChildProcess | undefined;

function netnsLeft(): string[] {
  const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  return out.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`${prefix}-`));
}

/** Processes the run recorded (`<pid> <starttime> <name>`) that are still alive (same start time). */
function pidsAlive(): { pid: number; name: string }[] {
  if (!existsSync(pidFile)) return [];
  return readFileSync(pidFile, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '))
    .filter(([pid, st]) => startTimeOf(Number(pid)) === st).map(([pid, , name]) => ({ pid: Number(pid), name: name ?? '?' }));
}

function ourStateDirs(): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith(statePrefix)).map((n) => join(tmpdir(), n));
}

/** Removes whatever the run left (by PID, by namespace name, by state dir) and says what it was. */
function sweep(): string[] {
  const problems: string[] = [];
  for (const state of ourStateDirs()) {
    spawnSync(process.execPath, [join(ROOT, 'bin', 'ambit.js'), 'down', '--prefix', prefix, '--state-dir', state], { stdio: 'ignore', timeout: 60_000 });
    if (existsSync(state)) problems.push(`state dir ${state} left`);
    rmSync(state, { recursive: true, force: true });
  }
  for (const p of pidsAlive()) {
    problems.push(`process ${p.name} (PID ${p.pid}) still alive`);
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  for (const ns of netnsLeft()) {
    problems.push(`namespace ${ns} left`);
    const pids = (spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '').split(/\s+/).filter(Boolean);
    for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }
    spawnSync('ip', ['netns', 'del', ns]);
  }
  return problems;
}

after(async () => {
  // A bench still running (the test timed out): SIGTERM makes it remove its cluster; then kill.
  if (bench && bench.exitCode === null && bench.signalCode === null && bench.pid) {
    const exited = new Promise((r) => bench!.once('exit', r));
    try { process.kill(bench.pid, 'SIGTERM'); } catch { /* gone */ }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 60_000))]);
    try { process.kill(bench.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  const problems = sweep();
  rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(problems, [], 'the bench run left nothing behind (what was left has now been removed)');
});

interface Rec {
  node: string; date: string; machine: { cpus: number; model: string };
  paths: {
    id: string; available: boolean; reason?: string; errors: string[];
    figures: Record<string, { median: number }>; peakRssMiB: Record<string, number>;
    notMeasured: Record<string, string>;
  }[];
  targets: { name: string }[];
}

/** The figure that shows each workload was measured. */
const FIGURE_OF: Record<string, string> = { throughput: 'throughputGbps', keepalive: 'keepaliveRps', newconns: 'newConnsPerSec', fixed1k: 'fixed1kP99' };
const HTTP_ONLY = new Set(['ambitL7', 'ambitIngress', 'haproxyL7']);

test('the benchmark suite runs end to end in smoke mode, records numbers or reasons, and leaves nothing', { timeout: 150_000 }, async () => {
  const out = join(dir, 'smoke.json');
  bench = spawn(process.execPath, [join(ROOT, 'dist', 'bench', 'run.js'), '--smoke', '--out', out, '--prefix', prefix,
    '--state-prefix', statePrefix, '--pid-file', pidFile], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  bench.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  bench.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const status = await new Promise<number | string>((r) => bench!.once('exit', (code, signal) => r(code ?? signal ?? -1)));
  const shown = `\n--- stderr\n${stderr.slice(-4000)}\n--- stdout\n${stdout.slice(-2000)}`;
  assert.equal(status, 0, `bench exited ${status}:${shown}`);
  // Nothing left once it has exited: namespaces, processes, state dirs.
  assert.deepEqual(netnsLeft(), [], `no namespace ${prefix}-* left`);
  assert.deepEqual(pidsAlive(), [], 'no process the run started is alive');
  assert.deepEqual(ourStateDirs(), [], 'the cluster state dir is removed');
  assert.ok(existsSync(pidFile) && readFileSync(pidFile, 'utf8').includes('cluster'), 'the run recorded the cluster processes');

  assert.ok(existsSync(out), 'JSON record written');
  const rec = JSON.parse(readFileSync(out, 'utf8')) as Rec;
  assert.equal(rec.node, process.version);
  assert.ok(rec.machine.cpus > 0 && rec.machine.model.length > 0);
  assert.ok(!Number.isNaN(Date.parse(rec.date)));
  assert.deepEqual(rec.paths.map((p) => p.id), ['direct', 'ambitL4', 'ambitL7', 'ambitIngress', 'stunnel', 'haproxyL4', 'haproxyL7']);
  for (const p of rec.paths) {
    if (!p.available) {
      assert.ok(p.reason && p.reason.length > 10, `${p.id} says why it is not available`);
      continue;
    }
    // Each workload: a number, or a clear reason it was not measured.
    const workloads = HTTP_ONLY.has(p.id) ? ['keepalive', 'newconns', 'fixed1k'] : ['throughput', 'keepalive', 'newconns', 'fixed1k'];
    for (const w of workloads) {
      const f = p.figures[FIGURE_OF[w]!];
      const why = p.notMeasured[w];
      assert.ok((f && f.median > 0) || (why !== undefined && /^not measured: .{10,}/.test(why)),
        `${p.id} ${w}: a number or a reason (figure ${JSON.stringify(f)}, reason ${why}, errors ${JSON.stringify(p.errors)})`);
    }
    if (p.id !== 'direct') assert.ok(Object.keys(p.peakRssMiB).length > 0, `${p.id} reports its proxies' peak RSS`);
  }
  // The direct and ambit L4 paths must work: available and with numbers.
  for (const id of ['direct', 'ambitL4']) {
    const p = rec.paths.find((x) => x.id === id)!;
    assert.ok(p.available, `${id} available: ${p.reason ?? ''}`);
    const numbers = Object.values(FIGURE_OF).filter((k) => (p.figures[k]?.median ?? 0) > 0);
    assert.ok(numbers.length > 0, `${id} produced numbers: ${JSON.stringify(p.notMeasured)}`);
  }
  assert.ok(rec.targets.length >= 8);
});
