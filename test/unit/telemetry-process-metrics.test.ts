// Standard process metrics on every Ambit process's /metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsRegistry } from '../../src/telemetry/metrics.js';
import { registerProcessMetrics } from '../../src/telemetry/process-metrics.js';

test('process_* and nodejs_* metrics are read at render time, the CPU counter only grows', () => {
  const r = new MetricsRegistry();
  registerProcessMetrics(r);
  const value = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  const first = r.render();
  for (const n of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds', 'nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes']) {
    assert.ok(value(first, n) > 0, `${n} in\n${first}`);
  }
  assert.match(first, /# TYPE process_cpu_seconds_total counter/);
  let x = 0;
  for (let i = 0; i < 2e6; i++) x += Math.sqrt(i);
  assert.ok(x > 0);
  assert.ok(value(r.render(), 'process_cpu_seconds_total') >= value(first, 'process_cpu_seconds_total'));
  assert.ok(Math.abs(value(first, 'process_start_time_seconds') - (Date.now() / 1000 - process.uptime())) < 2);
});
