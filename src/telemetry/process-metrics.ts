// The standard process metrics every Prometheus client exposes (process_*, and prom-client's
// nodejs_* heap names), read when /metrics is rendered: what an operator watches to see a
// proxy's memory and CPU without shelling into the node.
import { processGuardStats } from '../core/process-guards.js';
import { readdirSync } from 'node:fs';
import type { MetricsRegistry } from './metrics.js';

export function registerProcessMetrics(registry: MetricsRegistry): void {
  const cpu = registry.counter({ name: 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.' }).labels({});
  const rss = registry.gauge({ name: 'process_resident_memory_bytes', help: 'Resident memory size in bytes.' }).labels({});
  const start = registry.gauge({ name: 'process_start_time_seconds', help: 'Start time of the process since unix epoch in seconds.' }).labels({});
  const fds = registry.gauge({ name: 'process_open_fds', help: 'Number of open file descriptors.' }).labels({});
  const heapUsed = registry.gauge({ name: 'nodejs_heap_size_used_bytes', help: 'Process heap size used from Node.js in bytes.' }).labels({});
  const heapTotal = registry.gauge({ name: 'nodejs_heap_size_total_bytes', help: 'Process heap size from Node.js in bytes.' }).labels({});
  const external = registry.gauge({ name: 'nodejs_external_memory_bytes', help: 'Node.js external memory size in bytes.' }).labels({});
  start.set(Math.round(Date.now() / 1000 - process.uptime()));
  const slipped = registry.gauge({ name: 'ambit_unhandled_errors', help: 'Errors that reached no handler (caught by the process guards; each is a bug), by kind.', labelNames: ['kind'] });
  let cpuSeen = 0;
  registry.addCollector(() => {
    const g = processGuardStats();
    slipped.labels({ kind: 'rejection' }).set(g.unhandledRejections);
    slipped.labels({ kind: 'exception' }).set(g.uncaughtExceptions);
    const u = process.cpuUsage();
    const total = (u.user + u.system) / 1e6;
    cpu.inc(total - cpuSeen);
    cpuSeen = total;
    const m = process.memoryUsage();
    rss.set(m.rss);
    heapUsed.set(m.heapUsed);
    heapTotal.set(m.heapTotal);
    external.set(m.external);
    try { fds.set(readdirSync('/proc/self/fd').length); } catch { /* not Linux */ }
  });
}
