// `ambit down` finds the daemon of its cluster even when it was started from another state
// directory (`ambit up` and `ambit down` run with different AMBIT_STATE_DIRs): by exact argv
// and the prefix in that directory's cluster.json — and nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { daemonsForPrefix } from '../../src/cluster/lifecycle.js';

function fakeDaemon(stateDir: string) {
  // argv: node -e <code> cluster daemon --state-dir DIR (what /proc/<pid>/cmdline shows)
  return spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', 'cluster', 'daemon', '--state-dir', stateDir], { stdio: 'ignore' });
}

test('daemons are found by argv and by the prefix in their spec; others are left alone', async () => {
  const mine = mkdtempSync(join(tmpdir(), 'ambit-down-a-'));
  const other = mkdtempSync(join(tmpdir(), 'ambit-down-b-'));
  const here = mkdtempSync(join(tmpdir(), 'ambit-down-c-'));
  writeFileSync(join(mine, 'cluster.json'), JSON.stringify({ prefix: 'atdowntest' }));
  writeFileSync(join(other, 'cluster.json'), JSON.stringify({ prefix: 'atsomeoneelse' }));
  const a = fakeDaemon(mine);
  const b = fakeDaemon(other);
  try {
    await new Promise((r) => setTimeout(r, 300));
    const found = daemonsForPrefix('atdowntest', here);
    assert.deepEqual(found.map((f) => f.pid), [a.pid]);
    assert.equal(found[0]!.stateDir, mine);
    assert.deepEqual(daemonsForPrefix('atdowntest', mine), [], 'the state dir being torn down is not "another" one');
    assert.deepEqual(daemonsForPrefix('atnobody', here), []);
  } finally {
    a.kill('SIGKILL');
    b.kill('SIGKILL');
    for (const d of [mine, other, here]) rmSync(d, { recursive: true, force: true });
  }
});
