// Aggregation and presentation of a suite run: medians with min–max over rounds, ratios to the
// direct path and to the stunnel pair from the same run, the issue-7 targets, and the JSON record.
import type { PathId } from './paths.js';

export type Workload = 'throughput' | 'keepalive' | 'newconns' | 'fixed1k';

export interface Sample {
  /** Gbit/s for throughput, requests/s otherwise. */
  value: number;
  p50Ms?: number;
  p90Ms?: number;
  p99Ms?: number;
  errors: number;
  /** CPU seconds used by the path's proxy processes during the run (utime + stime). */
  proxyCpuSeconds: number;
  /** The same, per proxy process (by the path's name for it). */
  proxyCpuByProcess: Record<string, number>;
  seconds: number;
}

export interface Stat { median: number; min: number; max: number; n: number }

export function stat(values: readonly number[]): Stat | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

/** The figures the report prints, each derived from one workload's samples. */
export interface FigureDef {
  key: string;
  title: string;
  unit: string;
  workload: Workload;
  pick: (s: Sample) => number | undefined;
  higherIsBetter: boolean;
}

export const FIGURES: FigureDef[] = [
  { key: 'throughputGbps', title: 'single-stream throughput (iperf3)', unit: 'Gbit/s', workload: 'throughput', pick: (s) => s.value, higherIsBetter: true },
  { key: 'throughputCpu', title: 'proxy CPU during throughput', unit: 'cpu-s', workload: 'throughput', pick: (s) => s.proxyCpuSeconds, higherIsBetter: false },
  { key: 'keepaliveRps', title: 'keep-alive requests/s (wrk, 16 conns)', unit: 'req/s', workload: 'keepalive', pick: (s) => s.value, higherIsBetter: true },
  { key: 'keepaliveP99', title: 'keep-alive p99 latency (wrk)', unit: 'ms', workload: 'keepalive', pick: (s) => s.p99Ms, higherIsBetter: false },
  { key: 'keepaliveCpuPer10k', title: 'proxy CPU per 10k keep-alive requests', unit: 'cpu-ms', workload: 'keepalive', pick: (s) => (s.value > 0 ? (s.proxyCpuSeconds * 1000) / ((s.value * s.seconds) / 10_000) : undefined), higherIsBetter: false },
  { key: 'newConnsPerSec', title: 'new connections/s (wrk, Connection: close)', unit: 'conn/s', workload: 'newconns', pick: (s) => s.value, higherIsBetter: true },
  { key: 'newConnsCpuPer1k', title: 'proxy CPU per 1k new connections', unit: 'cpu-ms', workload: 'newconns', pick: (s) => (s.value > 0 ? (s.proxyCpuSeconds * 1000) / ((s.value * s.seconds) / 1000) : undefined), higherIsBetter: false },
  { key: 'fixed1kP50', title: 'p50 latency at 1,000 req/s (hey)', unit: 'ms', workload: 'fixed1k', pick: (s) => s.p50Ms, higherIsBetter: false },
  { key: 'fixed1kP90', title: 'p90 latency at 1,000 req/s (hey)', unit: 'ms', workload: 'fixed1k', pick: (s) => s.p90Ms, higherIsBetter: false },
  { key: 'fixed1kP99', title: 'p99 latency at 1,000 req/s (hey)', unit: 'ms', workload: 'fixed1k', pick: (s) => s.p99Ms, higherIsBetter: false },
  { key: 'fixed1kRps', title: 'achieved rate in the 1,000 req/s run', unit: 'req/s', workload: 'fixed1k', pick: (s) => s.value, higherIsBetter: true },
];

export interface PathReport {
  id: PathId;
  label: string;
  available: boolean;
  reason?: string;
  samples: Partial<Record<Workload, Sample[]>>;
  figures: Record<string, Stat & { vsDirect?: number; vsStunnel?: number }>;
  /** Peak RSS (VmHWM) of each proxy process at the end of the run, MiB. */
  peakRssMiB: Record<string, number>;
  /** RSS of each proxy process while holding N concurrent connections, MiB. */
  holdRssMiB?: Record<string, number>;
  holdConnections?: { requested: number; held: number; failed: number };
  /** RSS of each proxy process before any load, MiB. */
  /** RSS right after the path was set up. */
  startRssMiB?: Record<string, number>;
  /** RSS after the mode's idle period (the same as start when it has none). */
  idleRssMiB?: Record<string, number>;
  errors: string[];
  /**
   * Each measurement of an available path that produced no sample at all, with why
   * (`not measured: ...`): a workload id, or `hold` for the held-connections memory figure.
   */
  notMeasured: Partial<Record<Workload | 'hold', string>>;
}

export interface Target { name: string; value?: number; threshold: string; met?: boolean; note?: string }

export interface SuiteRecord {
  kind: 'ambit-bench-suite';
  date: string;
  mode: string;
  node: string;
  machine: { cpus: number; model: string; memoryGiB: number; kernel: string };
  settings: Record<string, unknown>;
  durationSeconds: number;
  paths: PathReport[];
  targets: Target[];
  notes: string[];
}

/** The workloads a path is measured with: throughput only where there is an iperf3 target. */
export function workloadsFor(hasIperf: boolean): Workload[] {
  return hasIperf ? ['throughput', 'keepalive', 'newconns', 'fixed1k'] : ['keepalive', 'newconns', 'fixed1k'];
}

/**
 * Fills `notMeasured` for every expected workload of an available path without a sample: the
 * last error recorded for it, or a generic reason. Pure over the report.
 */
export function markUnmeasured(p: PathReport, expected: readonly Workload[]): void {
  if (!p.available) return;
  for (const w of expected) {
    if ((p.samples[w]?.length ?? 0) > 0) continue;
    const last = [...p.errors].reverse().find((e) => e.includes(` ${w}: `));
    p.notMeasured[w] = last ? last.slice(last.indexOf(` ${w}: `) + w.length + 3) : 'not measured: no run completed';
  }
}

export function computeFigures(paths: PathReport[]): void {
  const direct = paths.find((p) => p.id === 'direct');
  const stunnel = paths.find((p) => p.id === 'stunnel');
  for (const p of paths) {
    for (const f of FIGURES) {
      const values = (p.samples[f.workload] ?? []).map(f.pick).filter((x): x is number => x !== undefined);
      const s = stat(values);
      if (s) p.figures[f.key] = { ...s };
    }
  }
  for (const p of paths) {
    for (const [k, s] of Object.entries(p.figures)) {
      const d = direct?.figures[k]?.median;
      const st = stunnel?.figures[k]?.median;
      if (d) s.vsDirect = s.median / d;
      if (st) s.vsStunnel = s.median / st;
    }
  }
}

const med = (p: PathReport | undefined, k: string) => p?.figures[k]?.median;

export function evaluateTargets(paths: PathReport[]): Target[] {
  const by = (id: PathId) => paths.find((p) => p.id === id && p.available);
  const l4 = by('ambitL4');
  const l7 = by('ambitL7');
  const stunnel = by('stunnel');
  const h4 = by('haproxyL4');
  const h7 = by('haproxyL7');
  const ratio = (a?: number, b?: number) => (a !== undefined && b ? a / b : undefined);
  const t: Target[] = [];
  const add = (name: string, value: number | undefined, threshold: string, ok: (v: number) => boolean, note?: string) =>
    t.push({ name, value, threshold, met: value === undefined ? undefined : ok(value), ...(note ? { note } : {}) });
  add('keep-alive req/s, ambit L4 / stunnel', ratio(med(l4, 'keepaliveRps'), med(stunnel, 'keepaliveRps')), '>= 1.3', (v) => v >= 1.3);
  add('keep-alive req/s, ambit L4 / HAProxy L4', ratio(med(l4, 'keepaliveRps'), med(h4, 'keepaliveRps')), '>= 1.0', (v) => v >= 1.0);
  add('new conn/s, ambit L4 / stunnel', ratio(med(l4, 'newConnsPerSec'), med(stunnel, 'newConnsPerSec')), '>= 3', (v) => v >= 3);
  add('p99 at 1k req/s, ambit L4 / stunnel', ratio(med(l4, 'fixed1kP99'), med(stunnel, 'fixed1kP99')), '<= 1.0', (v) => v <= 1.0);
  add('throughput, ambit L4 / stunnel', ratio(med(l4, 'throughputGbps'), med(stunnel, 'throughputGbps')), '>= 0.8 (stretch 1.0)', (v) => v >= 0.8);
  add('keep-alive req/s, ambit L7 / HAProxy L7', ratio(med(l7, 'keepaliveRps'), med(h7, 'keepaliveRps')), '>= 0.7', (v) => v >= 0.7,
    l7 ? undefined : `ambit L7 not available: ${paths.find((p) => p.id === 'ambitL7')?.reason ?? 'not run'}`);
  const l4all = paths.find((p) => p.id === 'ambitL4');
  const maxOf = (r?: Record<string, number>) => (r && Object.keys(r).length ? Math.max(...Object.entries(r).filter(([k]) => k.startsWith('ztunnel')).map(([, v]) => v)) : undefined);
  add('ztunnel idle RSS (MiB, largest ztunnel)', maxOf(l4all?.idleRssMiB), '<= 60', (v) => v <= 60);
  add(`ztunnel RSS with ${l4all?.holdConnections?.requested ?? 1000} concurrent connections (MiB, largest ztunnel)`, maxOf(l4all?.holdRssMiB), '<= 150', (v) => v <= 150,
    l4all?.holdConnections ? `held ${l4all.holdConnections.held}, failed ${l4all.holdConnections.failed}` : undefined);
  return t;
}

function fmt(v: number | undefined, digits = 2): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  if (Math.abs(v) >= 1000) return v.toFixed(0);
  if (Math.abs(v) >= 100) return v.toFixed(1);
  return v.toFixed(digits);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

export function renderText(rec: SuiteRecord): string {
  const out: string[] = [];
  out.push(`Ambit benchmark suite (${rec.mode}) — ${rec.date}, node ${rec.node}, ${rec.machine.cpus} x ${rec.machine.model}, ${rec.durationSeconds.toFixed(0)} s`);
  for (const p of rec.paths) if (!p.available) out.push(`  ${p.id}: not available — ${p.reason}`);
  for (const p of rec.paths) for (const [w, why] of Object.entries(p.notMeasured)) out.push(`  ${p.id} ${w}: ${why}`);
  for (const f of FIGURES) {
    const rows = [[f.title + ` [${f.unit}]`, 'median', 'min–max', '×direct', '×stunnel', 'n']];
    for (const p of rec.paths) {
      const s = p.figures[f.key];
      if (!s) continue;
      rows.push([`  ${p.id}`, fmt(s.median), `${fmt(s.min)}–${fmt(s.max)}`, fmt(s.vsDirect), fmt(s.vsStunnel), String(s.n)]);
    }
    if (rows.length > 1) out.push('', table(rows));
  }
  const memRows = [['memory per proxy process [MiB]', 'RSS at start', 'idle RSS', `RSS @ hold`, 'peak (VmHWM)']];
  for (const p of rec.paths) {
    for (const name of Object.keys(p.peakRssMiB)) {
      memRows.push([`  ${p.id} ${name}`, fmt(p.startRssMiB?.[name], 1), fmt(p.idleRssMiB?.[name], 1), fmt(p.holdRssMiB?.[name], 1), fmt(p.peakRssMiB[name], 1)]);
    }
  }
  if (memRows.length > 1) out.push('', table(memRows));
  out.push('', 'targets (issue 7):');
  for (const t of rec.targets) {
    out.push(`  ${t.met === undefined ? 'n/a ' : t.met ? 'MET ' : 'MISS'}  ${t.name}: ${fmt(t.value)} (target ${t.threshold})${t.note ? ` — ${t.note}` : ''}`);
  }
  const errs = rec.paths.flatMap((p) => p.errors.map((e) => `  ${p.id}: ${e}`));
  if (errs.length) out.push('', 'errors:', ...errs.slice(0, 20));
  return out.join('\n') + '\n';
}
