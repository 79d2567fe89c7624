// The daemon's watch on the ztunnel's code (src/cluster/code-watch.ts): a content change in a
// room the ztunnel loads is reported once, after it held for two checks; touching a file, or
// changing a room the ztunnel does not load, is not a change.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../src/core/clock.js';
import { CodeWatch, ztunnelCodeFingerprint } from '../../src/cluster/code-watch.js';

let root: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'ambit-codewatch-'));
  for (const room of ['ztunnel', 'waypoint', 'cli/commands']) mkdirSync(join(root, 'dist', 'src', room), { recursive: true });
  writeFileSync(join(root, 'dist', 'src', 'ztunnel', 'ztunnel.js'), 'v1');
  writeFileSync(join(root, 'dist', 'src', 'waypoint', 'waypoint.js'), 'w1');
});

after(() => rmSync(root, { recursive: true, force: true }));

test('the fingerprint follows the ztunnel\'s code and nothing else', () => {
  const a = ztunnelCodeFingerprint(root);
  utimesSync(join(root, 'dist', 'src', 'ztunnel', 'ztunnel.js'), new Date(), new Date(Date.now() + 5000));
  assert.equal(ztunnelCodeFingerprint(root), a, 'a touch is not a change');
  writeFileSync(join(root, 'dist', 'src', 'waypoint', 'waypoint.js'), 'w2');
  assert.equal(ztunnelCodeFingerprint(root), a, 'the waypoint is not the ztunnel');
  writeFileSync(join(root, 'dist', 'src', 'ztunnel', 'ztunnel.js'), 'v2');
  assert.notEqual(ztunnelCodeFingerprint(root), a);
});

test('a change is reported once it held for two checks, and only once', async () => {
  const clock = new FakeClock();
  let changes = 0;
  const w = new CodeWatch({ root, clock, intervalMs: 1000, onChange: async () => { changes++; } });
  w.start();
  await clock.advance(1000);
  assert.equal(changes, 0);
  writeFileSync(join(root, 'dist', 'src', 'ztunnel', 'ztunnel.js'), 'v3');
  await clock.advance(1000);
  assert.equal(changes, 0, 'seen once: maybe half a build');
  await clock.advance(1000);
  assert.equal(changes, 1, 'held: an upgrade');
  await clock.advance(3000);
  assert.equal(changes, 1, 'reported once');
  w.close();
});
