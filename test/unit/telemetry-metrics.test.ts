import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AmbitError } from '../../src/core/errors.js';
import {
  escapeHelp,
  escapeLabelValue,
  formatSampleValue,
  MetricsRegistry,
  prepareLabels,
  PROMETHEUS_CONTENT_TYPE,
} from '../../src/telemetry/metrics.js';

function throwsInternal(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof AmbitError && e.code === 'AMBIT_ERR_INTERNAL' && message.test(e.message));
}

test('renders counters, gauges and histograms in the 0.0.4 text format, exactly', () => {
  const r = new MetricsRegistry();
  const c = r.counter({ name: 'requests_total', help: 'Requests seen.', labelNames: ['method', 'code'] });
  const g = r.gauge({ name: 'open_sockets', help: 'Open sockets.' });
  const h = r.histogram({ name: 'latency_ms', help: 'Latency.', labelNames: ['route'], buckets: [1, 5, 10] });

  c.labels({ method: 'GET', code: 200 }).inc();
  c.labels({ method: 'GET', code: 200 }).inc(2);
  c.labels({ method: 'POST', code: '503' }).inc();
  g.labels().set(3);
  g.labels().dec();
  const a = h.labels({ route: 'a' });
  for (const v of [0.5, 1, 1.5, 5, 7, 10, 11]) a.observe(v);

  assert.equal(
    r.render(),
    [
      '# HELP requests_total Requests seen.',
      '# TYPE requests_total counter',
      'requests_total{method="GET",code="200"} 3',
      'requests_total{method="POST",code="503"} 1',
      '# HELP open_sockets Open sockets.',
      '# TYPE open_sockets gauge',
      'open_sockets 2',
      '# HELP latency_ms Latency.',
      '# TYPE latency_ms histogram',
      'latency_ms_bucket{route="a",le="1"} 2',
      'latency_ms_bucket{route="a",le="5"} 4',
      'latency_ms_bucket{route="a",le="10"} 6',
      'latency_ms_bucket{route="a",le="+Inf"} 7',
      'latency_ms_sum{route="a"} 36',
      'latency_ms_count{route="a"} 7',
      '',
    ].join('\n'),
  );
  assert.equal(PROMETHEUS_CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8');
});

test('a histogram without labels renders only le in its buckets and bare _sum/_count', () => {
  const r = new MetricsRegistry();
  const h = r.histogram({ name: 'size_bytes', help: 'Sizes.', buckets: [0.5, 1800000] });
  h.labels().observe(2);
  h.labels().observe(4000000);
  assert.equal(
    r.render(),
    [
      '# HELP size_bytes Sizes.',
      '# TYPE size_bytes histogram',
      'size_bytes_bucket{le="0.5"} 0',
      'size_bytes_bucket{le="1800000"} 1',
      'size_bytes_bucket{le="+Inf"} 2',
      'size_bytes_sum 4000002',
      'size_bytes_count 2',
      '',
    ].join('\n'),
  );
  assert.deepEqual(h.labels().cumulative(), [0, 1, 2]);
  assert.deepEqual(h.labels().bucketCounts, [0, 1, 1]);
});

test('histogram bounds are inclusive (le), values above the last bound land only in +Inf, NaN is dropped', () => {
  const r = new MetricsRegistry();
  const h = r.histogram({ name: 'h', help: 'h', buckets: [1, 2] }).labels();
  h.observe(1);
  h.observe(2);
  h.observe(2.0000001);
  h.observe(-5);
  h.observe(NaN);
  assert.deepEqual(h.bucketCounts, [2, 1, 1]);
  assert.deepEqual(h.cumulative(), [2, 3, 4]);
  assert.equal(h.count, 4);
  assert.equal(h.sum, 1 + 2 + 2.0000001 - 5);
});

test('label values escape backslash, double quote and newline; HELP escapes backslash and newline', () => {
  assert.equal(escapeLabelValue('plain'), 'plain');
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.equal(escapeHelp('line1\nback\\slash "quoted"'), 'line1\\nback\\\\slash "quoted"');

  const r = new MetricsRegistry();
  r.counter({ name: 'x_total', help: 'two\nlines \\ "q"', labelNames: ['path'] }).labels({ path: 'C:\\dir\n"x"' }).inc();
  assert.equal(
    r.render(),
    '# HELP x_total two\\nlines \\\\ "q"\n# TYPE x_total counter\nx_total{path="C:\\\\dir\\n\\"x\\""} 1\n',
  );
});

test('sample values: integers plain, special floats as +Inf, -Inf, NaN', () => {
  assert.equal(formatSampleValue(42), '42');
  assert.equal(formatSampleValue(0.25), '0.25');
  assert.equal(formatSampleValue(Infinity), '+Inf');
  assert.equal(formatSampleValue(-Infinity), '-Inf');
  assert.equal(formatSampleValue(NaN), 'NaN');
  const r = new MetricsRegistry();
  const g = r.gauge({ name: 'g', help: 'g', labelNames: ['k'] });
  g.labels({ k: 'a' }).set(-Infinity);
  g.labels({ k: 'b' }).set(NaN);
  assert.match(r.render(), /g\{k="a"\} -Inf\ng\{k="b"\} NaN\n$/);
});

test('labels() returns the same handle for the same label set, whatever the key order', () => {
  const r = new MetricsRegistry();
  const c = r.counter({ name: 'c_total', help: 'c', labelNames: ['a', 'b'] });
  const h1 = c.labels({ a: '1', b: '2' });
  const h2 = c.labels({ b: '2', a: '1' });
  const h3 = c.labels({ a: '1', b: '3' });
  assert.equal(h1, h2);
  assert.notEqual(h1, h3);
  assert.equal(c.size, 2);
  h1.inc(5);
  assert.equal(c.labels({ a: '1', b: '2' }).value, 5);
  // find() does not create
  assert.equal(c.find({ a: 'x', b: 'y' }), undefined);
  assert.equal(c.size, 2);
  assert.equal(c.find({ a: '1', b: '2' }), h1);
  // values that only differ in where a separator could fall are distinct series
  assert.notEqual(c.labels({ a: 'x', b: 'yz' }), c.labels({ a: 'xy', b: 'z' }));
  assert.equal(c.remove({ a: '1', b: '3' }), true);
  assert.equal(c.find({ a: '1', b: '3' }), undefined);
});

test('a prepared label set is shared by families with the same label names', () => {
  const r = new MetricsRegistry();
  const names = ['x', 'y'] as const;
  const c = r.counter({ name: 'c_total', help: 'c', labelNames: names });
  const g = r.gauge({ name: 'g', help: 'g', labelNames: ['x', 'y'] });
  const p = prepareLabels(names, { x: 'a"b', y: 1 });
  assert.equal(p.text, 'x="a\\"b",y="1"');
  assert.equal(c.labels(p), c.labels({ x: 'a"b', y: '1' }));
  g.labels(p).inc();
  assert.equal(g.find({ x: 'a"b', y: '1' })?.value, 1);
  const other = r.counter({ name: 'o_total', help: 'o', labelNames: ['y', 'x'] });
  throwsInternal(() => other.labels(p as never), /does not fit metric o_total/);
});

test('counters only go up', () => {
  const r = new MetricsRegistry();
  const h = r.counter({ name: 'c_total', help: 'c' }).labels();
  h.inc();
  h.inc(-3);
  h.inc(NaN);
  h.inc(0.5);
  assert.equal(h.value, 1.5);
});

test('a missing label value is an error, not an empty label', () => {
  const r = new MetricsRegistry();
  const c = r.counter({ name: 'c_total', help: 'c', labelNames: ['a', 'b'] });
  throwsInternal(() => c.labels({ a: 'x' } as never), /label 'b' has no value/);
  throwsInternal(() => c.labels(), /needs label values/);
});

test('registering the same metric twice returns the same family; a conflicting one throws', () => {
  const r = new MetricsRegistry();
  const a = r.counter({ name: 'c_total', help: 'c', labelNames: ['a'] });
  const b = r.counter({ name: 'c_total', help: 'c', labelNames: ['a'] });
  assert.equal(a, b);
  throwsInternal(() => r.gauge({ name: 'c_total', help: 'c', labelNames: ['a'] }), /already registered as a counter/);
  throwsInternal(() => r.counter({ name: 'c_total', help: 'c', labelNames: ['b'] }), /already registered/);
  const h = r.histogram({ name: 'lat', help: 'l', buckets: [1, 2] });
  assert.equal(r.histogram({ name: 'lat', help: 'l', buckets: [1, 2] }), h);
  throwsInternal(() => r.histogram({ name: 'lat', help: 'l', buckets: [1, 3] }), /other buckets/);
  // a histogram exposes _bucket/_sum/_count: a counter may not take one of those names
  throwsInternal(() => r.counter({ name: 'lat_count', help: 'x' }), /already exposes/);
  assert.equal(r.get('lat'), h);
});

test('invalid names, an le label and bad buckets are refused', () => {
  const r = new MetricsRegistry();
  throwsInternal(() => r.counter({ name: '1abc', help: 'x' }), /invalid metric name/);
  throwsInternal(() => r.counter({ name: 'ok', help: 'x', labelNames: ['bad-name'] }), /invalid label name/);
  throwsInternal(() => r.counter({ name: 'ok2', help: 'x', labelNames: ['__reserved'] }), /invalid label name/);
  throwsInternal(() => r.counter({ name: 'ok3', help: 'x', labelNames: ['a', 'a'] }), /listed twice/);
  throwsInternal(() => r.histogram({ name: 'h', help: 'x', labelNames: ['le'], buckets: [1] }), /label named 'le'/);
  throwsInternal(() => r.histogram({ name: 'h', help: 'x', buckets: [2, 1] }), /strictly increasing/);
  throwsInternal(() => r.histogram({ name: 'h', help: 'x', buckets: [1, Infinity] }), /finite/);
  throwsInternal(() => r.histogram({ name: 'h', help: 'x', buckets: [] }), /buckets/);
});

test('families without series are not rendered; an empty registry renders nothing', () => {
  const r = new MetricsRegistry();
  assert.equal(r.render(), '');
  r.counter({ name: 'unused_total', help: 'u', labelNames: ['a'] });
  assert.equal(r.render(), '');
  r.counter({ name: 'used_total', help: 'u' }).labels().inc();
  assert.equal(r.render(), '# HELP used_total u\n# TYPE used_total counter\nused_total 1\n');
});

test('collectors run before every render and can be removed', () => {
  const r = new MetricsRegistry();
  const c = r.counter({ name: 'polled_total', help: 'p' }).labels();
  let calls = 0;
  const remove = r.addCollector(() => {
    calls++;
    c.inc(10);
  });
  assert.match(r.render(), /polled_total 10\n/);
  assert.match(r.render(), /polled_total 20\n/);
  remove();
  assert.match(r.render(), /polled_total 20\n/);
  assert.equal(calls, 2);
});
