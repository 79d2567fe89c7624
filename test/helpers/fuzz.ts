// Property runs for parsers of untrusted bytes, in two budgets:
// - the test tiers (unit, direct): a fixed seed and a bounded number of runs, so `npm test` is
//   quick and a failure replays the same way every time;
// - `npm run fuzz` (AMBIT_FUZZ=1): a random seed per property (or FUZZ_SEED), as many runs as fit
//   in FUZZ_SECONDS per property (default 15; FUZZ_RUNS caps the count instead), and a line per
//   property with its seed and run count. A failure prints the command that replays it;
//   FUZZ_ONLY (the arguments of `npm run fuzz`) picks properties by name.
//
// A property that throws or whose assertion fails is a failure; so is an async case that
// does not settle within its own deadline (`withDeadline`): a hang is a bug, not a slow run.
import fc from 'fast-check';

export interface TierBudget {
  /** The fixed seed of the test tiers. */
  seed: number;
  /** Runs in the test tiers. */
  numRuns: number;
}

export const FUZZING = process.env.AMBIT_FUZZ === '1';

// Deeper runs also draw larger values where an arbitrary sets no bound of its own (FUZZ_SIZE).
if (FUZZING) fc.configureGlobal({ ...fc.readConfigureGlobal(), baseSize: (process.env.FUZZ_SIZE || 'medium') as fc.Size });

function envNumber(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name}=${v} is not a number`);
  return n;
}

/** The fast-check parameters for this budget, as the environment asks. */
export function fuzzParameters<Ts>(budget: TierBudget): fc.Parameters<Ts> {
  if (!FUZZING) return { seed: budget.seed, numRuns: budget.numRuns };
  const seed = envNumber('FUZZ_SEED') ?? ((Math.random() * 0x7fffffff) | 0);
  const runs = envNumber('FUZZ_RUNS');
  const seconds = envNumber('FUZZ_SECONDS') ?? (runs === undefined ? 15 : undefined);
  const path = process.env.FUZZ_PATH || undefined;
  return {
    seed,
    path,
    numRuns: runs ?? Number.MAX_SAFE_INTEGER,
    plugins: seconds === undefined ? [] : [fc.interruptAfterTimeLimit(seconds * 1000)],
  };
}

function report<Ts>(name: string, d: fc.RunDetails<Ts>, started: number): void {
  if (FUZZING && !d.failed) {
    console.log(`fuzz ${name}: ${d.numRuns} runs in ${((performance.now() - started) / 1000).toFixed(1)} s, seed ${d.seed}`);
  }
  if (!d.failed) return;
  const replay = d.counterexamplePath === null ? '' : `\nreplay: FUZZ_SEED=${d.seed} FUZZ_PATH=${d.counterexamplePath} FUZZ_RUNS=1 npm run fuzz -- '${name}'`;
  throw new Error(`property "${name}" failed (seed ${d.seed})${replay}\n${fc.defaultReportMessage(d) ?? ''}`, { cause: d.errorInstance });
}

/** `npm run fuzz -- NAME`: only the properties whose name holds NAME run; the others pass at once. */
function skipped(name: string): boolean {
  const only = FUZZING ? process.env.FUZZ_ONLY?.toLowerCase() : undefined;
  return only !== undefined && only !== '' && !name.toLowerCase().includes(only);
}

/** Runs a synchronous property under the budget; throws with the seed and a replay line on failure. */
export function fuzz<Ts>(name: string, property: fc.IProperty<Ts>, budget: TierBudget): void {
  if (skipped(name)) return;
  const started = performance.now();
  report(name, fc.check(property, fuzzParameters<Ts>(budget)), started);
}

/** The same for an async property. */
export async function fuzzAsync<Ts>(name: string, property: fc.IAsyncProperty<Ts>, budget: TierBudget): Promise<void> {
  if (skipped(name)) return;
  const started = performance.now();
  report(name, await fc.check(property, fuzzParameters<Ts>(budget)), started);
}

/** Resolves as `p` does, or rejects when it has not settled within `ms` (the case hung). */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no outcome within ${ms} ms (a hang)`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Calls `f` and fails when one synchronous call takes longer than `ms`: a parser that is
 * super-linear on some input shows up as a slow case long before it shows up as a hang. A
 * slow call is timed again before it fails (a pause of a shared machine or of the garbage
 * collector is not the input's fault; a slow input is slow every time).
 */
export function quick<T>(f: () => T, ms: number, what: string): T {
  let t = performance.now();
  let r = f();
  let took = performance.now() - t;
  if (took > ms) {
    t = performance.now();
    r = f();
    took = performance.now() - t;
    if (took > ms) throw new Error(`${what} took ${took.toFixed(0)} ms, twice (bound ${ms} ms)`);
  }
  return r;
}
