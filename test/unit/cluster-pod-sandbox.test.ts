// A pod's sandbox: which user, which capabilities, what is hidden (pure parts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync, openSync, writeSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ROOT_CAPABILITIES, sandboxArgv, sandboxEnv, sandboxFor } from '../../src/cluster/pod-sandbox.js';
import { capLogFiles } from '../../src/cluster/log-cap.js';
import { cmdlineMatches } from '../../src/cluster/supervisor.js';

test('the user: container over pod over the unprivileged default; runAsNonRoot with uid 0 is refused', () => {
  const hide = ['/var/run/ambit'];
  assert.deepEqual(sandboxFor(undefined, undefined, hide), { ok: true, sandbox: { uid: 65534, gid: 65534, hide } });
  assert.deepEqual(sandboxFor({ runAsUser: 1000 }, undefined, hide), { ok: true, sandbox: { uid: 1000, gid: 1000, hide } });
  assert.deepEqual(sandboxFor({ runAsUser: 1000, runAsGroup: 50 }, { runAsUser: 2000 }, hide), { ok: true, sandbox: { uid: 2000, gid: 50, hide } });
  assert.deepEqual(sandboxFor(undefined, { runAsUser: 0 }, hide), { ok: true, sandbox: { uid: 0, gid: 0, hide } });
  assert.equal(sandboxFor({ runAsNonRoot: true }, { runAsUser: 0 }, hide).ok, false);
  assert.equal(sandboxFor({ runAsNonRoot: true }, undefined, hide).ok, true);
});

test('the argv: hidden paths first, then setpriv with no capabilities (non-root) or the runtime default set (root), no new privileges', () => {
  const nonRoot = sandboxArgv({ uid: 65534, gid: 65534, hide: ['/s'] }, ['python3', '-m', 'http.server']);
  assert.deepEqual(nonRoot.slice(0, 3), ['/bin/sh', '-ec', nonRoot[2]]);
  assert.deepEqual(nonRoot.slice(3, 6), ['ambit-pod', '/s', '--']);
  assert.ok(nonRoot.includes('--reuid=65534') && nonRoot.includes('--bounding-set=-all') && nonRoot.includes('--no-new-privs') && nonRoot.includes('--ambient-caps=-all'));
  assert.deepEqual(nonRoot.slice(-4), ['--', 'python3', '-m', 'http.server']);
  const root = sandboxArgv({ uid: 0, gid: 0, hide: [] }, ['sleep', '1']);
  const bounding = root.find((a) => a.startsWith('--bounding-set='))!;
  assert.equal(bounding, `--bounding-set=-all,${DEFAULT_ROOT_CAPABILITIES.map((c) => `+${c}`).join(',')}`);
  assert.ok(!bounding.includes('sys_admin') && !bounding.includes('net_admin'));
  // The supervisor still recognizes the process while it is on its way through the sandbox.
  assert.ok(cmdlineMatches(nonRoot, ['python3', '-m', 'http.server']));
  assert.ok(cmdlineMatches(['python3', '-m', 'http.server'], ['python3', '-m', 'http.server']));
});

test('the environment is the pod\'s only', () => {
  assert.deepEqual(sandboxEnv({ uid: 65534, gid: 65534, hide: [] }, { POD_NAME: 'x' }), { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/tmp', POD_NAME: 'x' });
});

test('log files over the cap are kept as .1 and truncated; a writer with O_APPEND keeps writing at the new end', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-logcap-'));
  try {
    const big = join(dir, 'pods', 'a.log');
    writeFileSync(join(dir, 'small.log'), 'x'.repeat(10));
    await import('node:fs/promises').then((f) => f.mkdir(join(dir, 'pods')));
    const fd = openSync(big, 'a');
    writeSync(fd, 'y'.repeat(2000));
    assert.deepEqual(await capLogFiles(dir, 1000), [big]);
    writeSync(fd, 'after');
    closeSync(fd);
    assert.equal(readFileSync(big, 'utf8'), 'after');
    assert.equal(statSync(`${big}.1`).size, 2000);
    assert.equal(readFileSync(join(dir, 'small.log'), 'utf8').length, 10);
    assert.ok(!existsSync(join(dir, 'small.log.1')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
