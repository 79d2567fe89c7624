// Keeps the benchmark suite from rotting: runs `bench/run.js --smoke` (one round, ~1 s per
// tool, a real 2-node cluster and the C peers) and asserts only that every path produced
// numbers (or, for ambit L7, a reason), that the JSON record is written with the machine facts,
// and that the cluster is gone afterwards. It times nothing and asserts no figure.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
const dir = mkdtempSync(join(tmpdir(), 'ambit-bench-smoke-'));
// `at<digits>` so the test runner's sweep removes the namespaces if this run is killed.
const prefix = `at${process.pid % 10000}bs`;

after(() => {
  rmSync(dir, { recursive: true, force: true });
  // Safety net: the suite removes its cluster itself; a leftover means it failed to.
  const left = (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '').split('\n').filter((l) => l.startsWith(`${prefix}-`));
  for (const l of left) spawnSync('ip', ['netns', 'del', l.split(' ')[0]!]);
});

test('the benchmark suite runs end to end in smoke mode and writes its JSON record', { timeout: 240_000 }, () => {
  const out = join(dir, 'smoke.json');
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'bench', 'run.js'), '--smoke', '--out', out, '--prefix', prefix], {
    encoding: 'utf8', timeout: 220_000, cwd: ROOT,
  });
  assert.equal(r.status, 0, `bench exited ${r.status}:\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-2000)}`);
  assert.ok(existsSync(out), 'JSON record written');
  const rec = JSON.parse(readFileSync(out, 'utf8')) as {
    node: string; date: string; machine: { cpus: number; model: string };
    paths: { id: string; available: boolean; reason?: string; figures: Record<string, { median: number }>; peakRssMiB: Record<string, number> }[];
    targets: { name: string }[];
  };
  assert.equal(rec.node, process.version);
  assert.ok(rec.machine.cpus > 0 && rec.machine.model.length > 0);
  assert.ok(!Number.isNaN(Date.parse(rec.date)));
  const ids = rec.paths.map((p) => p.id);
  assert.deepEqual(ids, ['direct', 'ambitL4', 'ambitL7', 'stunnel', 'haproxyL4', 'haproxyL7']);
  for (const p of rec.paths) {
    if (p.id === 'ambitL7' && !p.available) {
      assert.ok(p.reason && p.reason.length > 10, 'ambit L7 says why it is not available');
      continue;
    }
    assert.ok(p.available, `${p.id} available: ${p.reason ?? ''}`);
    for (const k of ['keepaliveRps', 'newConnsPerSec', 'fixed1kP99']) {
      assert.ok(p.figures[k] && p.figures[k].median > 0, `${p.id} has ${k}`);
    }
    if (p.id !== 'haproxyL7' && p.id !== 'ambitL7') assert.ok(p.figures.throughputGbps && p.figures.throughputGbps.median > 0, `${p.id} has throughput`);
    if (p.id !== 'direct') assert.ok(Object.keys(p.peakRssMiB).length > 0, `${p.id} reports its proxies' peak RSS`);
  }
  assert.ok(rec.targets.length >= 8);
  // The cluster is gone.
  const left = (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '').split('\n').filter((l) => l.startsWith(`${prefix}-`));
  assert.deepEqual(left, []);
});
