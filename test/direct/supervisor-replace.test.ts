// supervisor.replace() (src/cluster/supervisor.ts) with real processes: the successor runs beside
// the old one until it is ready, then the old one gets SIGTERM (and SIGKILL after its drain
// time), is never restarted, and keeps a findable PID file (`.retired-<pid>`) until it exits; a
// successor that never gets ready is killed and the old one keeps running as before.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Supervisor, pidDir, readPidRecord, pidFilePath } from '../../src/cluster/supervisor.js';
import { readProcStat } from '../../src/sys/proc.js';
import { waitFor } from '../helpers/wait.js';


const alive = (pid: number) => {
  const st = readProcStat(pid);
  return st !== undefined && st.state !== 'Z';
};

describe('cluster: supervisor.replace', () => {
  let stateDir: string;
  let sup: Supervisor;

  before(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'ambit-replace-'));
    sup = new Supervisor({ stateDir });
  });

  after(async () => {
    await sup.stopAll(500);
    rmSync(stateDir, { recursive: true, force: true });
  });

  // Drains for a while on SIGTERM, like a ztunnel with live connections.
  const drainer = (drainMs: number) => ({
    name: 'drainer', command: process.execPath, restart: 'always' as const, logFile: join(stateDir, 'drainer.log'),
    args: ['-e', `process.on('SIGTERM', () => setTimeout(() => process.exit(0), ${drainMs})); setInterval(() => {}, 1000)`],
  });

  test('the successor starts beside the old one; the old one drains and exits, and is not restarted', async () => {
    const first = await sup.spawn(drainer(600));
    const oldPid = first.pid!;
    const seen: number[] = [];
    const r = await sup.replace('drainer', {
      readyTimeoutMs: 5000, drainMs: 5000,
      ready: async (pid) => { seen.push(pid); return seen.length >= 3; },
    });
    assert.equal(r.oldPid, oldPid);
    assert.notEqual(r.newPid, oldPid);
    assert.ok(seen.every((p) => p === r.newPid), 'readiness is asked of the successor');
    assert.ok(alive(oldPid), 'the old one still drains');
    assert.ok(existsSync(pidFilePath(stateDir, `drainer.retired-${oldPid}`)), 'its PID file stays findable (ambit down kills it)');
    assert.equal(readPidRecord(pidFilePath(stateDir, 'drainer'))?.pid, r.newPid);
    await r.oldExited;
    await waitFor('the retired PID file goes with it', () => !existsSync(pidFilePath(stateDir, `drainer.retired-${oldPid}`)), 2000);
    await new Promise((res) => setTimeout(res, 400));
    const status = sup.statusOf('drainer')!;
    assert.equal(status.state, 'running');
    assert.equal(status.pid, r.newPid, 'the old one\'s exit did not restart anything');
    assert.equal(readdirSync(pidDir(stateDir)).filter((f) => f.startsWith('drainer')).length, 1);
  });

  test('the drain time is enforced: an old one that does not exit is killed', async () => {
    const slow = { ...drainer(60_000), name: 'slow' };
    await sup.spawn(slow);
    const r = await sup.replace('slow', { readyTimeoutMs: 5000, drainMs: 300, ready: async () => true });
    const t0 = Date.now();
    await r.oldExited;
    assert.ok(Date.now() - t0 < 3000, 'killed soon after drainMs');
    assert.equal(alive(r.oldPid), false);
  });

  test('a successor that never gets ready is killed; the old one keeps running and stays the entry', async () => {
    const keep = { ...drainer(100), name: 'keep' };
    const first = await sup.spawn(keep);
    await assert.rejects(sup.replace('keep', { readyTimeoutMs: 400, drainMs: 1000, ready: async () => false }), /did not become ready/);
    assert.equal(sup.statusOf('keep')!.pid, first.pid);
    assert.ok(alive(first.pid!));
    assert.equal(readPidRecord(pidFilePath(stateDir, 'keep'))?.pid, first.pid, 'its PID file is back');
    assert.equal(JSON.parse(readFileSync(pidFilePath(stateDir, 'keep'), 'utf8')).name, 'keep');
    assert.equal(sup.retired().length, 0);
  });

  test('replace refuses a process that is not running', async () => {
    await assert.rejects(sup.replace('nobody', { readyTimeoutMs: 100, drainMs: 100, ready: async () => true }), /not running/);
  });
});
