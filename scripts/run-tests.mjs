#!/usr/bin/env node
// Runs Ambit's test tiers in order and prints one summary line `N passed, N failed`.
//   node scripts/run-tests.mjs            # lint, unit, direct, netns
//   node scripts/run-tests.mjs unit direct
// Tiers: lint (eslint + layer check; the type-check is the build), unit (pure functions),
// direct (whole components in one process on loopback), netns (Linux network namespaces,
// end to end; needs root). A tier that finds no test, or a test that skips, fails the run:
// nothing passes by being empty. The netns tier fails, not skips, when namespaces can't be made.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const ALL = ['lint', 'unit', 'direct', 'netns'];
const tiers = process.argv.slice(2).length ? process.argv.slice(2) : ALL;
const root = new URL('..', import.meta.url).pathname;
process.chdir(root);

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];

function banner(s) {
  console.log(`\n\x1b[1m=== ${s} ===\x1b[0m`);
}

function findTests(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

function runLint() {
  banner('lint');
  for (const [cmd, args] of [['npx', ['eslint', '--max-warnings', '0', '.']], ['node', ['scripts/check-layers.mjs']]]) {
    const r = spawnSync(cmd, args, { stdio: 'inherit' });
    if (r.status === 0) passed++;
    else { failed++; failures.push(`lint: ${cmd} ${args.join(' ')}`); }
  }
}

function netnsPreflight() {
  if (process.getuid && process.getuid() !== 0) return 'the netns tier needs root (run the tests with sudo)';
  const name = `ambit-preflight-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (add.status !== 0) return `cannot create a network namespace: ${(add.stderr || add.error?.message || '').trim()}`;
  spawnSync('ip', ['netns', 'del', name]);
  const ipt = spawnSync('iptables', ['--version'], { encoding: 'utf8' });
  if (ipt.status !== 0) return 'iptables is missing (npm run setup installs it)';
  return null;
}

function runTier(tier) {
  banner(`${tier} tests`);
  const files = findTests(join('dist', 'test', tier));
  if (files.length === 0) {
    failed++;
    failures.push(`${tier}: no test files found under dist/test/${tier} (was the build run?)`);
    console.log(`no tests found for tier ${tier}`);
    return;
  }
  if (tier === 'netns') {
    const why = netnsPreflight();
    if (why) {
      failed++;
      failures.push(`netns: ${why}`);
      console.log(`netns tier cannot run: ${why}`);
      return;
    }
  }
  const tap = join(tmpdir(), `ambit-tests-${tier}-${process.pid}.tap`);
  const args = [
    '--enable-source-maps', '--test',
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    '--test-reporter=tap', `--test-reporter-destination=${tap}`,
  ];
  if (tier === 'netns') args.push('--test-concurrency=1');
  const r = spawnSync(process.execPath, [...args, ...files], { stdio: 'inherit', env: { ...process.env, AMBIT_TEST_TIER: tier } });
  const text = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
  rmSync(tap, { force: true });
  const count = (k) => Number((text.match(new RegExp(`^# ${k} (\\d+)$`, 'm')) ?? [])[1] ?? 0);
  const p = count('pass');
  const f = count('fail') + count('cancelled');
  const s = count('skipped') + count('todo');
  passed += p;
  failed += f;
  skipped += s;
  if (f > 0 || r.status !== 0) failures.push(`${tier}: ${f} failed (exit ${r.status})`);
  if (r.status !== 0 && f === 0) failed++;
  if (p === 0) { failed++; failures.push(`${tier}: no test passed`); }
}

for (const tier of tiers) {
  if (tier === 'lint') runLint();
  else if (ALL.includes(tier)) runTier(tier);
  else { console.error(`unknown tier '${tier}' (known: ${ALL.join(', ')})`); process.exit(2); }
}

if (skipped > 0 && !process.env.AMBIT_ALLOW_SKIP) {
  failures.push(`${skipped} test(s) skipped; a skipped test does not pass here (set AMBIT_ALLOW_SKIP=1 locally to allow)`);
  failed += skipped;
}
console.log('');
for (const f of failures) console.log(`FAILED ${f}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
