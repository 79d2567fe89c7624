// The local cluster's process supervisor (src/cluster/supervisor.ts) with real processes:
// restarts with backoff, stop by PID (SIGTERM, then SIGKILL to the group), a process inside a
// network namespace, and killFromPidFiles after the supervisor itself was killed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AmbitError } from '../../src/core/errors.js';
import {
  Supervisor, killFromPidFiles, pidDir, pidFilePath, readPidRecord, type PidRecord, type SupervisorEvent,
} from '../../src/cluster/supervisor.js';
import { createTestNetwork, type TestNetwork } from '../helpers/netns.js';
import { readProcStat } from '../../src/sys/proc.js';
import { waitFor } from '../helpers/wait.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isAlive(pid: number): boolean {
  const st = readProcStat(pid);
  return st !== undefined && st.state !== 'Z';
}

describe('cluster: supervisor', () => {
  let stateDir: string;
  let network: TestNetwork;
  const supervisors: Supervisor[] = [];
  const strays: number[] = [];

  const make = (events?: Array<SupervisorEvent & { at: number }>) => {
    const s = new Supervisor({ stateDir, onEvent: (e) => events?.push({ ...e, at: Date.now() }) });
    supervisors.push(s);
    return s;
  };

  before(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'ambit-sup-'));
    network = await createTestNetwork('clsup', { namespaces: ['pod'] });
  });

  after(async () => {
    for (const s of supervisors) await s.stopAll(500).catch(() => undefined);
    for (const pid of strays) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await network?.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });

  test('a crashing process is restarted with doubling delays up to the cap; stop ends it for good', async () => {
    const events: Array<SupervisorEvent & { at: number }> = [];
    const sup = make(events);
    const logFile = join(stateDir, 'logs', 'crasher.log');
    await sup.spawn({
      name: 'crasher', command: 'sh', args: ['-c', 'echo "run $$"; exit 3'], logFile, restart: 'on-failure',
      backoff: { initialMs: 40, maxMs: 160, resetAfterMs: 5_000 },
    });
    await waitFor('5 restarts', () => sup.statusOf('crasher')!.restarts >= 5);
    await sup.stop('crasher');
    const status = sup.statusOf('crasher')!;
    assert.equal(status.state, 'stopped');
    const delays = events.filter((e) => e.type === 'restart-scheduled').map((e) => (e as { delayMs: number }).delayMs);
    assert.deepEqual(delays.slice(0, 5), [40, 80, 160, 160, 160]);
    // Each start came no sooner than its delay after the exit before it.
    const starts = events.filter((e) => e.type === 'start');
    const exits = events.filter((e) => e.type === 'exit');
    for (let i = 1; i < Math.min(starts.length, 5); i++) assert.ok(starts[i]!.at - exits[i - 1]!.at >= delays[i - 1]! - 5, `start ${i} too early`);
    // Every run exited by itself with code 3, but the last may have been stopped mid-run.
    const codes = exits.map((e) => { const x = e as { code: number | null; signal: string | null }; return x.signal ?? x.code; });
    assert.ok(codes.slice(0, -1).every((c) => c === 3) && (codes.at(-1) === 3 || codes.at(-1) === 'SIGTERM'), `exits: ${codes.join(',')}`);
    const startsSoFar = starts.length;
    assert.equal(startsSoFar, status.restarts + 1);
    await sleep(300);
    assert.equal(events.filter((e) => e.type === 'start').length, startsSoFar, 'no start after stop');
    // Every run wrote to the log, appended; the supervisor's own lines are there too.
    const log = readFileSync(logFile, 'utf8');
    const runs = [...log.matchAll(/^run (\d+)$/gm)].map((m) => Number(m[1]));
    // (the last run may have been stopped before it printed)
    const finished = codes.filter((c) => c === 3).length;
    assert.ok(runs.length >= finished && runs.length <= startsSoFar, `${runs.length} runs logged, ${finished} finished, ${startsSoFar} started`);
    assert.equal(new Set(runs).size, runs.length, 'a new PID each time');
    assert.match(log, /--- ambit supervisor: sh \(PID \d+\) exited with code 3/);
    assert.ok(!existsSync(pidFilePath(stateDir, 'crasher')), 'no PID file once stopped');
  });

  test('a process that stayed up resetAfterMs restarts after the initial delay again', async () => {
    const events: Array<SupervisorEvent & { at: number }> = [];
    const sup = make(events);
    await sup.spawn({
      name: 'flaky', command: 'sh', args: ['-c', 'sleep 0.15; exit 1'], logFile: join(stateDir, 'flaky.log'), restart: 'always',
      backoff: { initialMs: 40, maxMs: 1_000, resetAfterMs: 100 },
    });
    await waitFor('3 restarts', () => sup.statusOf('flaky')!.restarts >= 3);
    await sup.stop('flaky');
    const delays = events.filter((e) => e.type === 'restart-scheduled').map((e) => (e as { delayMs: number }).delayMs);
    assert.deepEqual(delays.slice(0, 3), [40, 40, 40]);
  });

  test('restart policies: on-failure leaves a clean exit alone, never never restarts, always restarts a clean exit', async () => {
    const sup = make();
    const log = join(stateDir, 'policies.log');
    await sup.spawn({ name: 'clean', command: 'true', logFile: log, restart: 'on-failure', backoff: { initialMs: 20 } });
    await sup.spawn({ name: 'never', command: 'false', logFile: log, restart: 'never', backoff: { initialMs: 20 } });
    await sup.spawn({ name: 'always', command: 'true', logFile: log, restart: 'always', backoff: { initialMs: 20 } });
    await waitFor('always restarted', () => sup.statusOf('always')!.restarts >= 2);
    await sleep(100);
    assert.equal(sup.statusOf('clean')!.state, 'exited');
    assert.equal(sup.statusOf('clean')!.restarts, 0);
    assert.equal(sup.statusOf('never')!.state, 'failed');
    assert.equal(sup.statusOf('never')!.lastExit?.code, 1);
    assert.equal(sup.statusOf('never')!.restarts, 0);
    await sup.stopAll();
    assert.deepEqual(sup.status().map((s) => `${s.name}:${s.state}`), ['always:stopped', 'clean:exited', 'never:failed']);
  });

  test('stop: SIGTERM first; a process that ignores it (and its child) is SIGKILLed by group after the grace period', async () => {
    const sup = make();
    const polite = await sup.spawn({ name: 'polite', command: 'sleep', args: ['1000'], logFile: join(stateDir, 'polite.log'), restart: 'always' });
    assert.equal(polite.state, 'running');
    const record = readPidRecord(pidFilePath(stateDir, 'polite'))!;
    assert.equal(record.pid, polite.pid);
    assert.equal(record.startTime, readProcStat(polite.pid!)!.startTime);
    assert.deepEqual(record.argv, ['sleep', '1000']);
    await sup.stop('polite', 2_000);
    assert.equal(sup.statusOf('polite')!.lastExit?.signal, 'SIGTERM');
    assert.equal(isAlive(polite.pid!), false);

    const logFile = join(stateDir, 'stubborn.log');
    const stubborn = await sup.spawn({
      name: 'stubborn', command: 'sh', args: ['-c', 'trap "" TERM; sleep 1000 & echo "child $!"; wait'], logFile, restart: 'always',
    });
    await waitFor('child pid', () => /child \d+/.test(readFileSync(logFile, 'utf8')));
    const child = Number(/child (\d+)/.exec(readFileSync(logFile, 'utf8'))![1]);
    assert.equal(readProcStat(child)!.pgrp, stubborn.pid, 'the child is in the process group');
    const started = Date.now();
    await sup.stop('stubborn', 300);
    assert.ok(Date.now() - started >= 280, 'waited for the grace period');
    assert.equal(sup.statusOf('stubborn')!.lastExit?.signal, 'SIGKILL');
    await waitFor('child gone', () => !isAlive(child), 3_000);
    await sleep(200);
    assert.equal(sup.statusOf('stubborn')!.state, 'stopped', 'no restart after stop');
  });

  test('environment and working directory reach the process; output is appended to the log', async () => {
    const sup = make();
    const logFile = join(stateDir, 'env.log');
    writeFileSync(logFile, 'earlier line\n');
    await sup.spawn({ name: 'env', command: 'sh', args: ['-c', 'echo "FOO=$FOO cwd=$(pwd)"; echo oops >&2'], env: { FOO: 'bar' }, cwd: '/tmp', logFile, restart: 'never' });
    await waitFor('exit', () => sup.statusOf('env')!.state === 'exited');
    const log = readFileSync(logFile, 'utf8');
    assert.ok(log.startsWith('earlier line\n'));
    assert.match(log, /^FOO=bar cwd=\/tmp$/m);
    assert.match(log, /^oops$/m);
  });

  test('a process runs inside its network namespace', async () => {
    const sup = make();
    const netns = network.ns('pod');
    const st = await sup.spawn({ name: 'in-pod', command: 'sleep', args: ['1000'], netns, logFile: join(stateDir, 'in-pod.log'), restart: 'never' });
    await waitFor('exec', () => readFileSync(`/proc/${st.pid}/cmdline`, 'utf8').startsWith('sleep'));
    assert.equal(readlinkSync(`/proc/${st.pid}/ns/net`), `net:[${statSync(`/var/run/netns/${netns}`).ino}]`);
    assert.equal(readPidRecord(pidFilePath(stateDir, 'in-pod'))!.netns, netns);
    await sup.stop('in-pod');
  });

  test('after the supervisor is killed, killFromPidFiles stops what it started (and a new supervisor refuses to double-start)', async () => {
    const dir = mkdtempSync(join(stateDir, 'crash-'));
    const url = new URL('../../src/cluster/supervisor.js', import.meta.url).href;
    const script = `
      import { Supervisor } from ${JSON.stringify(url)};
      const s = new Supervisor({ stateDir: ${JSON.stringify(dir)} });
      const a = await s.spawn({ name: 'orphan', command: 'sleep', args: ['1000'], netns: ${JSON.stringify(network.ns('pod'))}, logFile: ${JSON.stringify(join(dir, 'o.log'))}, restart: 'always' });
      console.log('spawned ' + a.pid);
      setInterval(() => {}, 1000);
    `;
    const boss = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      boss.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /spawned (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      boss.once('exit', () => reject(new Error(`supervisor script exited: ${out}`)));
    });
    strays.push(pid);
    boss.kill('SIGKILL');
    await new Promise((r) => boss.once('exit', r));
    await waitFor('exec', () => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep'));
    assert.ok(isAlive(pid), 'the orphan outlived its supervisor');

    const second = new Supervisor({ stateDir: dir });
    supervisors.push(second);
    await assert.rejects(
      second.spawn({ name: 'orphan', command: 'sleep', args: ['1000'], logFile: join(dir, 'o.log'), restart: 'always' }).then(() => undefined),
      (e: AmbitError) => e.code === 'AMBIT_ERR_CLUSTER' && /PID \d+/.test(e.message),
    );

    const report = await killFromPidFiles(dir, { graceMs: 2_000 });
    assert.deepEqual(report.killed.map((k) => `${k.name}:${k.pid}:${k.signal}`), [`orphan:${pid}:SIGTERM`]);
    assert.deepEqual(report.refused, []);
    assert.equal(isAlive(pid), false);
    assert.ok(!existsSync(pidFilePath(dir, 'orphan')));
    assert.deepEqual(await killFromPidFiles(dir), { killed: [], gone: [], refused: [] });
  });

  test('killFromPidFiles refuses a PID whose command line does not match, and leaves a reused PID alone', async () => {
    const dir = mkdtempSync(join(stateDir, 'refuse-'));
    const victim = spawn('sleep', ['1000'], { detached: true, stdio: 'ignore' });
    strays.push(victim.pid!);
    await waitFor('exec', () => readFileSync(`/proc/${victim.pid}/cmdline`, 'utf8').startsWith('sleep'));
    const startTime = readProcStat(victim.pid!)!.startTime;
    const write = (name: string, r: Partial<PidRecord>) =>
      writeFileSync(pidFilePath(dir, name), JSON.stringify({ name, pid: victim.pid, startTime, argv: ['sleep', '1000'], logFile: '/dev/null', startedAt: '', supervisorPid: 1, ...r }));
    mkdirSync(pidDir(dir), { recursive: true });
    write('other-command', { argv: ['sleep', '999'] });
    write('reused-pid', { startTime: String(Number(startTime) - 1) });
    const report = await killFromPidFiles(dir, { graceMs: 200 });
    assert.deepEqual(report.killed, []);
    assert.equal(report.refused.length, 1);
    assert.equal(report.refused[0]!.name, 'other-command');
    assert.match(report.refused[0]!.reason, /now runs 'sleep 1000', not 'sleep 999'/);
    assert.deepEqual(report.gone.map((g) => g.name), ['reused-pid']);
    assert.ok(isAlive(victim.pid!), 'not killed');
    assert.ok(existsSync(pidFilePath(dir, 'other-command')), 'kept for a person to look at');
    assert.ok(!existsSync(pidFilePath(dir, 'reused-pid')));
    victim.kill('SIGKILL');
  });
});
