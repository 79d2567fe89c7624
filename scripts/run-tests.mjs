#!/usr/bin/env node
// Runs Ambit's test tiers in order and prints one summary line `N passed, N failed`.
//   node scripts/run-tests.mjs            # lint, unit, direct, netns
//   node scripts/run-tests.mjs unit direct
// Tiers: lint (eslint + layer check + generated protobuf code current; the type-check is the build), unit (pure functions),
// direct (whole components in one process on loopback), netns (Linux network namespaces,
// end to end; needs root). A tier that finds no test, or a test that skips, fails the run:
// nothing passes by being empty. The netns tier fails, not skips, when namespaces can't be made.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const ALL = ['lint', 'unit', 'direct', 'netns'];
// Per test; node applies it to each test file as a whole too, so it bounds the longest file.
const TEST_TIMEOUT_MS = { unit: 60_000, direct: 180_000, netns: 300_000 };
const TEST_CONCURRENCY = { unit: 4, direct: 3, netns: Number(process.env.AMBIT_NETNS_CONCURRENCY ?? 1) };
const TIER_TIMEOUT_MS = { unit: 5 * 60_000, direct: 10 * 60_000, netns: 20 * 60_000 };
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
  for (const [cmd, args] of [['npx', ['eslint', '--max-warnings', '0', '.']], ['node', ['scripts/check-layers.mjs']], ['node', ['scripts/check-proto.mjs']]]) {
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

/**
 * Tests remove their own namespaces, even when they fail; this is the safety net for a tier
 * that was stopped. Only what belongs to a test process that is gone is touched, so runs in
 * other checkouts of the project on the same machine keep theirs:
 * - a test cluster's state dir (`ambit-e2e-state-*`) names its owner (`owner.pid`); when the
 *   owner is gone, `ambit down` stops the cluster's processes from their PID files;
 * - a namespace `at<pid>-...` belongs to that test process; one named after a cluster prefix
 *   belongs to that cluster's owner; any other `at<digits>` namespace is an orphan.
 * The processes inside a swept namespace are ended by PID, then it is deleted.
 */
function alive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
}

function sweepTestNamespaces() {
  const liveClusterPrefixes = [];
  for (const d of readdirSync(tmpdir()).filter((n) => n.startsWith('ambit-e2e-state-'))) {
    const dir = join(tmpdir(), d);
    let owner = NaN;
    try { owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8').trim()); } catch { /* no owner: an old run's */ }
    let prefix;
    try { prefix = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')).prefix; } catch { /* never came up */ }
    if (alive(owner)) { if (prefix) liveClusterPrefixes.push(prefix); continue; }
    spawnSync(process.execPath, ['bin/ambit.js', 'down', '--prefix', prefix ?? 'at0sweep'], {
      stdio: 'ignore', timeout: 60_000, env: { ...process.env, AMBIT_STATE_DIR: dir },
    });
  }
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  const names = list.split('\n').map((l) => l.split(' ')[0]).filter((n) => /^at\d/.test(n)).filter((n) => {
    const owner = /^at(\d+)-/.exec(n);
    if (owner && alive(Number(owner[1]))) return false;
    return !liveClusterPrefixes.some((p) => n.startsWith(`${p}-`));
  });
  for (const name of names) {
    const pids = (spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout ?? '').split(/\s+/).filter(Boolean);
    for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }
    spawnSync('ip', ['netns', 'del', name]);
    const etc = join('/etc/netns', name);
    if (existsSync(join(etc, 'hosts')) && readFileSync(join(etc, 'hosts'), 'utf8').startsWith('# Ambit cluster ')) {
      rmSync(etc, { recursive: true, force: true });
    }
  }
  if (names.length > 0) console.log(`swept ${names.length} leftover test namespace(s)`);
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
  // A hung test must fail the run, not stall it: every test has a deadline, a file whose
  // handles stay open is cancelled at that deadline, and the tier as a whole has a cap.
  args.push(`--test-timeout=${TEST_TIMEOUT_MS[tier]}`);
  // Files of the unit and direct tiers run side by side (each is mostly waiting on sockets and
  // timers; they use distinct loopback addresses); netns files one at a time: two clusters at
  // once can draw the same loopback net or ports from their pids (test/helpers/cluster.ts), so
  // AMBIT_NETNS_CONCURRENCY=2 is for trying, not for CI.
  args.push(`--test-concurrency=${TEST_CONCURRENCY[tier]}`);
  const r = spawnSync(process.execPath, [...args, ...files], {
    stdio: 'inherit', env: { ...process.env, AMBIT_TEST_TIER: tier },
    timeout: TIER_TIMEOUT_MS[tier], killSignal: 'SIGTERM',
  });
  if (r.error?.code === 'ETIMEDOUT') {
    failed++;
    failures.push(`${tier}: the tier ran past ${TIER_TIMEOUT_MS[tier] / 60000} minutes and was stopped`);
  }
  if (tier === 'netns') sweepTestNamespaces();
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
