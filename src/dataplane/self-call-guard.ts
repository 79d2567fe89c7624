// Refuses captured connections that are a proxy calling itself (see selfCall in route.ts): at
// once, with a reset, counted, and logged at most once per workload and interval — a pod that
// hammers its own capture port costs one refusal each, never a loop and never a log flood.
import type net from 'node:net';
import type { Clock } from '../core/clock.js';
import { LogLimiter } from '../core/log-limiter.js';
import type { Logger } from '../core/logger.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import type { Workload } from '../xds/workload-api.js';
import type { Endpoint } from './pod-network.js';
import { selfCall } from './route.js';

export class SelfCallGuard {
  private readonly limiter: LogLimiter;
  private readonly refused: ReturnType<MetricsRegistry['counter']>;

  constructor(private readonly logger: Logger, metrics: MetricsRegistry, clock: Clock) {
    this.limiter = new LogLimiter(clock);
    this.refused = metrics.counter({
      name: 'ambit_self_calls_refused_total',
      help: 'Captured connections refused because they would bring the proxy back to itself (a direct connection to a capture port, loopback, the pod itself).',
      labelNames: ['direction'],
    });
  }

  /** True when the connection was refused (it is reset and must not be used). */
  refuse(socket: net.Socket, direction: 'inbound' | 'outbound', dst: Endpoint, workload: Workload): boolean {
    const listener = { ip: socket.localAddress ?? '', port: socket.localPort ?? 0 };
    const why = selfCall(direction, dst, listener, workload);
    if (!why) return false;
    socket.resetAndDestroy();
    this.refused.labels({ direction }).inc();
    const d = this.limiter.allow(`${workload.uid}|${direction}`);
    if (d.log) {
      this.logger.warn('refused a self-call: it would loop back to the proxy', {
        workload: `${workload.namespace}/${workload.name}`, direction, dst: `${dst.ip}:${dst.port}`, reason: why,
        ...(d.suppressed ? { alsoRefusedSinceLastLine: d.suppressed } : {}),
      });
    }
    return true;
  }
}
