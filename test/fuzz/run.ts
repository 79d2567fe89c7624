// `npm run fuzz`: the property tests of the parsers of untrusted input (the test files named
// fuzz-*.test.ts in the unit and direct tiers), run far longer than `npm test` runs them, each
// property with a fresh random seed. Not part of `npm test`.
//
//   npm run fuzz                          every property, FUZZ_SECONDS (15) each
//   npm run fuzz -- 'http1 server'        only properties whose name holds that text
//   FUZZ_SECONDS=120 npm run fuzz         longer
//   FUZZ_RUNS=100000 npm run fuzz         a number of runs per property instead of a time
//   FUZZ_SEED=123 FUZZ_PATH=4:1:0 FUZZ_RUNS=1 npm run fuzz -- 'name'   replay a failure (printed with it)
//
// Each property prints `fuzz <name>: <runs> runs in <s> s, seed <seed>`; a failure prints the
// shrunk counterexample and the line that replays it. The exit code is the tests' exit code.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
const TIERS = ['unit', 'direct'];

function usage(): void {
  process.stdout.write(`usage: npm run fuzz -- [NAME...]
  Runs the fuzz-*.test.js properties of dist/test/{${TIERS.join(',')}} with random seeds.
  NAME        run only the properties whose name contains NAME (case-insensitive)
environment:
  FUZZ_SECONDS  time per property (default 15)
  FUZZ_RUNS     runs per property (instead of a time, unless FUZZ_SECONDS is also set)
  FUZZ_SEED     the seed of every property (default: a random one each, printed)
  FUZZ_PATH     with FUZZ_SEED, replay one counterexample (as printed on failure)
  FUZZ_JOBS     test files run at once (default 1)
See test/README.md.
`);
}

function main(): number {
  const args = process.argv.slice(2);
  if (args.includes('-h') || args.includes('--help')) {
    usage();
    return 0;
  }
  const files = TIERS.flatMap((tier) => {
    const dir = join(ROOT, 'dist', 'test', tier);
    return existsSync(dir) ? readdirSync(dir).filter((f) => /^fuzz-.*\.test\.js$/.test(f)).sort().map((f) => join(dir, f)) : [];
  });
  if (files.length === 0) {
    process.stderr.write('no fuzz-*.test.js under dist/test (was the build run? npm run build)\n');
    return 1;
  }
  const seconds = process.env.FUZZ_SECONDS ?? (process.env.FUZZ_RUNS ? undefined : '15');
  const env: NodeJS.ProcessEnv = { ...process.env, AMBIT_FUZZ: '1', ...(seconds ? { FUZZ_SECONDS: seconds } : {}) };
  if (args.length > 0) env.FUZZ_ONLY = args.join(' ');
  // A property runs for its time, then shrinks a failure: give each test room for both.
  const perTestMs = Math.max(10 * 60_000, Number(seconds ?? 60) * 1000 * 4);
  process.stdout.write(`fuzzing ${files.length} files (${files.map((f) => f.split('/').pop()).join(', ')}); `
    + `${seconds ? `${seconds} s` : `${process.env.FUZZ_RUNS} runs`} per property, seed ${process.env.FUZZ_SEED ?? 'random'}${env.FUZZ_ONLY ? `, only "${env.FUZZ_ONLY}"` : ''}\n`);
  const r = spawnSync(process.execPath, [
    '--enable-source-maps', '--test', '--test-reporter=spec', `--test-timeout=${perTestMs}`, `--test-concurrency=${process.env.FUZZ_JOBS ?? '1'}`, ...files,
  ], { stdio: 'inherit', env, cwd: ROOT });
  if (r.error) {
    process.stderr.write(`${r.error.message}\n`);
    return 1;
  }
  return r.status ?? 1;
}

process.exit(main());
