// A tiny timing loop for the micro-benchmarks: runs fn over the inputs for at least `ms`
// (after a warm-up), three times, and reports the median operations per second.
export function opsPerSecond<T>(inputs: readonly T[], fn: (x: T) => unknown, ms = 1000): { opsPerSec: number; runs: number[] } {
  let sink = 0;
  const once = (budget: number) => {
    let n = 0;
    const start = process.hrtime.bigint();
    const until = start + BigInt(budget) * 1_000_000n;
    while (process.hrtime.bigint() < until) {
      for (let k = 0; k < 64; k++) { if (fn(inputs[(n + k) % inputs.length]!)) sink++; }
      n += 64;
    }
    return n / (Number(process.hrtime.bigint() - start) / 1e9);
  };
  once(Math.min(300, ms));
  const runs = [once(ms), once(ms), once(ms)].sort((a, b) => a - b);
  if (sink === -1) process.stdout.write('');
  return { opsPerSec: runs[1]!, runs };
}

export function fmtOps(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M/s` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k/s` : `${n.toFixed(0)} /s`;
}
