// A small metrics registry: counters, gauges and histograms with label sets, rendered in the
// Prometheus text exposition format 0.0.4.
//
// Invariants:
// - No module-level registry: a part gets the `MetricsRegistry` it should write to.
// - A family has a fixed, ordered list of label names. `family.labels(values)` returns the
//   series handle for one label set, created on first use and cached under a key made of the
//   values in label-name order (joined with NUL, so values containing NUL could collide; label
//   values here are names and codes); later calls return the same object. Callers on a hot path
//   resolve the handle once and then only touch it: `handle.inc(n)` is one property write.
// - `prepareLabels(names, values)` builds the key and the rendered label text once, for a label
//   set shared by several families (Istio's traffic metrics share one label set).
// - Counters only go up: `inc(n)` ignores n <= 0 and NaN.
// - Histogram buckets are strictly increasing finite upper bounds; `+Inf` is implicit. A value v
//   lands in the first bucket with v <= bound (Prometheus `le`). Buckets are stored per bucket
//   and made cumulative when rendered.
// - Rendering order is stable: families in registration order, series in creation order.
//   Families without any series are not rendered (as client_golang does).
// - Registering a name twice returns the existing family when type, help, label names (and
//   buckets) agree, and throws AMBIT_ERR_INTERNAL otherwise: two parts may share one registry.
// - Collectors registered with `addCollector` run at the start of every `render()`, so values
//   kept elsewhere (e.g. byte counts on open connection records) can be folded in lazily.
import { AmbitError } from '../core/errors.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type MetricType = 'counter' | 'gauge' | 'histogram';

/** Values for every label of a family, keyed by label name. */
export type LabelValues<L extends string> = { readonly [K in L]: string | number };

export interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds, strictly increasing and finite; `+Inf` is added. */
  buckets: readonly number[];
}

const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const KEY_SEPARATOR = '\u0000';

// ---- text format helpers ----

/** Escape a label value: backslash, double quote and line feed. */
export function escapeLabelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

/** Escape HELP text: backslash and line feed (quotes stay as they are). */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value or bucket bound as the text format spells it. */
export function formatSampleValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

// ---- prepared label sets ----

/** A label set resolved once: its cache key, and (built on first use) its `a="x",b="y"` text. */
export class PreparedLabels<L extends string = string> {
  private rendered: string | undefined;
  constructor(
    readonly names: readonly L[],
    readonly values: readonly string[],
    readonly key: string,
  ) {}

  get text(): string {
    if (this.rendered === undefined) {
      let t = '';
      for (let i = 0; i < this.names.length; i++) t += (i === 0 ? '' : ',') + this.names[i]! + '="' + escapeLabelValue(this.values[i]!) + '"';
      this.rendered = t;
    }
    return this.rendered;
  }
}

export function prepareLabels<L extends string>(names: readonly L[], values: LabelValues<L>): PreparedLabels<L> {
  const strs: string[] = new Array<string>(names.length);
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const raw = values[name];
    if (raw === undefined || raw === null) {
      throw new AmbitError('AMBIT_ERR_INTERNAL', `metric label '${name}' has no value`, {
        hint: 'every label of a metric family needs a value; use "unknown" for a missing one',
      });
    }
    strs[i] = typeof raw === 'string' ? raw : String(raw);
  }
  return new PreparedLabels(names, strs, strs.join(KEY_SEPARATOR));
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---- series handles ----

export class CounterHandle {
  value = 0;
  constructor(readonly labels: PreparedLabels) {}
  inc(n = 1): void {
    if (n > 0) this.value += n;
  }
}

export class GaugeHandle {
  value = 0;
  constructor(readonly labels: PreparedLabels) {}
  inc(n = 1): void { this.value += n; }
  dec(n = 1): void { this.value -= n; }
  set(v: number): void { this.value = v; }
}

export class HistogramHandle {
  /** Per-bucket (not cumulative) counts; the last entry is the `+Inf` bucket. */
  readonly bucketCounts: number[];
  sum = 0;
  count = 0;
  constructor(readonly labels: PreparedLabels, readonly bounds: readonly number[]) {
    this.bucketCounts = new Array<number>(bounds.length + 1).fill(0);
  }
  observe(v: number): void {
    if (Number.isNaN(v)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && v > bounds[i]!) i++;
    this.bucketCounts[i]!++;
    this.sum += v;
    this.count++;
  }
  /** Cumulative counts per bound, `+Inf` last (what `_bucket` renders). */
  cumulative(): number[] {
    const out: number[] = [];
    let acc = 0;
    for (const c of this.bucketCounts) out.push((acc += c));
    return out;
  }
}

// ---- families ----

export abstract class MetricFamily<L extends string, H extends { labels: PreparedLabels }> {
  abstract readonly type: MetricType;
  private readonly series = new Map<string, H>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
  ) {}

  protected abstract create(labels: PreparedLabels): H;
  protected abstract renderSeries(h: H, out: string[]): void;

  /** The handle for one label set, created on first use. Resolve once; keep the handle. */
  labels(values?: LabelValues<L> | PreparedLabels<L>): H {
    const p = this.prepare(values);
    let h = this.series.get(p.key);
    if (h === undefined) {
      h = this.create(p);
      this.series.set(p.key, h);
    }
    return h;
  }

  /** The handle for a label set if it exists (does not create one). */
  find(values?: LabelValues<L> | PreparedLabels<L>): H | undefined {
    return this.series.get(this.prepare(values).key);
  }

  /** Drop one series (e.g. a gauge for a workload that left). */
  remove(values?: LabelValues<L> | PreparedLabels<L>): boolean {
    return this.series.delete(this.prepare(values).key);
  }

  clear(): void {
    this.series.clear();
  }

  get size(): number {
    return this.series.size;
  }

  handles(): IterableIterator<H> {
    return this.series.values();
  }

  render(out: string[]): void {
    if (this.series.size === 0) return;
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    for (const h of this.series.values()) this.renderSeries(h, out);
  }

  private prepare(values: LabelValues<L> | PreparedLabels<L> | undefined): PreparedLabels<L> {
    if (values instanceof PreparedLabels) {
      if (!sameNames(values.names, this.labelNames)) {
        throw new AmbitError('AMBIT_ERR_INTERNAL', `label set [${values.names.join(',')}] does not fit metric ${this.name} [${this.labelNames.join(',')}]`);
      }
      return values;
    }
    if (values === undefined) {
      if (this.labelNames.length > 0) {
        throw new AmbitError('AMBIT_ERR_INTERNAL', `metric ${this.name} needs label values for [${this.labelNames.join(',')}]`);
      }
      return prepareLabels(this.labelNames, {} as LabelValues<L>);
    }
    return prepareLabels(this.labelNames, values);
  }
}

function sampleLine(name: string, labelText: string, value: number): string {
  return labelText === '' ? `${name} ${formatSampleValue(value)}` : `${name}{${labelText}} ${formatSampleValue(value)}`;
}

export class Counter<L extends string = never> extends MetricFamily<L, CounterHandle> {
  readonly type = 'counter';
  protected create(p: PreparedLabels): CounterHandle { return new CounterHandle(p); }
  protected renderSeries(h: CounterHandle, out: string[]): void {
    out.push(sampleLine(this.name, h.labels.text, h.value));
  }
}

export class Gauge<L extends string = never> extends MetricFamily<L, GaugeHandle> {
  readonly type = 'gauge';
  protected create(p: PreparedLabels): GaugeHandle { return new GaugeHandle(p); }
  protected renderSeries(h: GaugeHandle, out: string[]): void {
    out.push(sampleLine(this.name, h.labels.text, h.value));
  }
}

export class Histogram<L extends string = never> extends MetricFamily<L, HistogramHandle> {
  readonly type = 'histogram';
  private readonly leTexts: string[];

  constructor(name: string, help: string, labelNames: readonly L[], readonly buckets: readonly number[]) {
    super(name, help, labelNames);
    this.leTexts = [...buckets.map(formatSampleValue), '+Inf'];
  }

  protected create(p: PreparedLabels): HistogramHandle { return new HistogramHandle(p, this.buckets); }

  protected renderSeries(h: HistogramHandle, out: string[]): void {
    const prefix = h.labels.text === '' ? '' : h.labels.text + ',';
    let acc = 0;
    for (let i = 0; i < h.bucketCounts.length; i++) {
      acc += h.bucketCounts[i]!;
      out.push(`${this.name}_bucket{${prefix}le="${this.leTexts[i]!}"} ${formatSampleValue(acc)}`);
    }
    out.push(sampleLine(`${this.name}_sum`, h.labels.text, h.sum));
    out.push(sampleLine(`${this.name}_count`, h.labels.text, h.count));
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFamily = Counter<any> | Gauge<any> | Histogram<any>;

// ---- registry ----

export class MetricsRegistry {
  private readonly families = new Map<string, AnyFamily>();
  /** Sample names taken by registered families (a histogram takes _bucket, _sum, _count). */
  private readonly sampleNames = new Map<string, string>();
  private readonly collectors = new Set<() => void>();

  counter<const L extends string = never>(options: MetricOptions<L>): Counter<L> {
    return this.register(options, 'counter', () => new Counter<L>(options.name, options.help, this.labelNamesOf(options)));
  }

  gauge<const L extends string = never>(options: MetricOptions<L>): Gauge<L> {
    return this.register(options, 'gauge', () => new Gauge<L>(options.name, options.help, this.labelNamesOf(options)));
  }

  histogram<const L extends string = never>(options: HistogramOptions<L>): Histogram<L> {
    const buckets = options.buckets;
    if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))) {
      throw new AmbitError('AMBIT_ERR_INTERNAL', `histogram ${options.name}: buckets must be finite and strictly increasing, got [${buckets.join(', ')}]`);
    }
    const names = this.labelNamesOf(options);
    if (names.includes('le' as L)) {
      throw new AmbitError('AMBIT_ERR_INTERNAL', `histogram ${options.name} may not have a label named 'le'`);
    }
    const existing = this.families.get(options.name);
    if (existing instanceof Histogram && !sameNumbers(existing.buckets, buckets)) {
      throw new AmbitError('AMBIT_ERR_INTERNAL', `metric ${options.name} is already registered with other buckets`);
    }
    return this.register(options, 'histogram', () => new Histogram<L>(options.name, options.help, names, Object.freeze([...buckets])));
  }

  /** A registered family by name. */
  get(name: string): AnyFamily | undefined {
    return this.families.get(name);
  }

  /** Run `fn` at the start of every render(); returns a function that removes it. */
  addCollector(fn: () => void): () => void {
    this.collectors.add(fn);
    return () => { this.collectors.delete(fn); };
  }

  /** Everything, in the Prometheus text format 0.0.4 (ends with a newline when not empty). */
  render(): string {
    for (const c of this.collectors) c();
    const out: string[] = [];
    for (const f of this.families.values()) f.render(out);
    return out.length === 0 ? '' : out.join('\n') + '\n';
  }

  private labelNamesOf<L extends string>(options: MetricOptions<L>): readonly L[] {
    const names = options.labelNames ?? [];
    const seen = new Set<string>();
    for (const n of names) {
      if (!LABEL_NAME_RE.test(n) || n.startsWith('__')) {
        throw new AmbitError('AMBIT_ERR_INTERNAL', `metric ${options.name}: invalid label name '${n}'`, {
          hint: 'label names match [a-zA-Z_][a-zA-Z0-9_]* and do not start with __',
        });
      }
      if (seen.has(n)) throw new AmbitError('AMBIT_ERR_INTERNAL', `metric ${options.name}: label '${n}' listed twice`);
      seen.add(n);
    }
    return Object.freeze([...names]);
  }

  private register<F extends AnyFamily>(options: MetricOptions<string>, type: MetricType, make: () => F): F {
    const { name } = options;
    if (!METRIC_NAME_RE.test(name)) {
      throw new AmbitError('AMBIT_ERR_INTERNAL', `invalid metric name '${name}'`, { hint: 'metric names match [a-zA-Z_:][a-zA-Z0-9_:]*' });
    }
    const existing = this.families.get(name);
    if (existing) {
      if (existing.type === type && existing.help === options.help && sameNames(existing.labelNames, options.labelNames ?? [])) {
        return existing as F;
      }
      throw new AmbitError('AMBIT_ERR_INTERNAL', `metric ${name} is already registered as a ${existing.type} with labels [${existing.labelNames.join(',')}]`, {
        hint: 'two parts sharing a registry must declare a metric identically',
      });
    }
    const samples = type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
    for (const s of samples) {
      const owner = this.sampleNames.get(s);
      if (owner !== undefined) {
        throw new AmbitError('AMBIT_ERR_INTERNAL', `metric ${name} would expose '${s}', which metric ${owner} already exposes`);
      }
    }
    const family = make();
    this.families.set(name, family);
    for (const s of samples) this.sampleNames.set(s, name);
    return family;
  }
}

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
