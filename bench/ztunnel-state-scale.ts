// What a one-pod change costs a proxy's mesh view, at 1k and 10k workloads: the CPU to take
// the change (before: rebuild the whole state from every object, as the proxies did; after:
// apply the delta in place), and to answer the first connection's policy lookup afterwards.
// Run: node dist/bench/ztunnel-state-scale.js [workloads...]
import os from 'node:os';
import { MeshView, type WorkloadApiSnapshot } from '../src/dataplane/mesh-view.js';
import { authorization, service, workload } from '../test/helpers/xds-fixtures.js';

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

function snapshotOf(n: number): WorkloadApiSnapshot {
  return {
    workloads: Array.from({ length: n }, (_, i) => workload(i)),
    services: Array.from({ length: Math.max(1, n / 5) }, (_, i) => service(i)),
    authorizations: Array.from({ length: Math.max(1, n / 20) }, (_, i) => authorization(i)),
  };
}

function measure(n: number): { rebuildMs: number; applyMs: number; lookupMs: number } {
  const snap = snapshotOf(n);
  const state = MeshView.fromSnapshot(snap);
  // Before: every update rebuilt the whole view (and its indexes) from every object.
  const rebuild: number[] = [];
  for (let k = 0; k < 15; k++) {
    const changed = workload(k, { status: k % 2 ? 'UNHEALTHY' : 'HEALTHY' });
    const t = cpuMs();
    MeshView.fromSnapshot({ ...snap, workloads: [...snap.workloads.slice(0, k), changed, ...snap.workloads.slice(k + 1)] });
    rebuild.push(cpuMs() - t);
  }
  // After: the change alone, in place; then the first policy lookup of a workload in its namespace.
  const apply: number[] = [];
  const lookup: number[] = [];
  for (let k = 0; k < 2000; k++) {
    const changed = workload(k % n, { status: k % 2 ? 'UNHEALTHY' : 'HEALTHY' });
    const policyChange = k % 10 === 0 ? { authorizations: { upsert: [authorization(k % 7, { dryRun: k % 20 === 0 })] } } : {};
    const t = cpuMs();
    state.apply({ workloads: { upsert: [changed] }, ...policyChange }, `v${k}`);
    const t2 = cpuMs();
    state.policiesFor(changed);
    lookup.push(cpuMs() - t2);
    apply.push(t2 - t);
  }
  // Per-operation figures are below the clock's resolution: report the mean over the batch.
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { rebuildMs: median(rebuild), applyMs: mean(apply), lookupMs: mean(lookup) };
}

const sizes = process.argv.slice(2).map(Number).filter((x) => x > 0);
console.log(`proxy mesh view: CPU per one-pod change — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, ${new Date().toISOString()}`);
const results = (sizes.length ? sizes : [1_000, 10_000]).map((n) => ({ n, ...measure(n) }));
const base = results[0]!;
for (const r of results) {
  console.log(`${String(r.n).padStart(6)} workloads: rebuild ${r.rebuildMs.toFixed(2)} ms (${(r.rebuildMs / base.rebuildMs).toFixed(1)}× the smallest) | incremental apply ${(r.applyMs * 1000).toFixed(1)} µs (${(r.applyMs / base.applyMs).toFixed(2)}×), first policy lookup ${(r.lookupMs * 1000).toFixed(1)} µs; rebuild / apply = ${(r.rebuildMs / r.applyMs).toFixed(0)}×`);
}
