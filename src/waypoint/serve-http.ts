// Hands one sniffed connection (a tunnel, or a captured socket at a sidecar) to the L7
// pipeline: HTTP/1.1 through the waypoint's own codec (http1/), HTTP/2 (h2c, gRPC) through
// Node's HTTP/2 server.
//
// Limits (counted in ambit_http_limits_total{limit}): the HTTP/1.1 codec's (http1/server.ts:
// head, body progress, idle, pipelining); for HTTP/2, at most H2_MAX_CONCURRENT_STREAMS
// streams per connection and a session closed after H2_IDLE_TIMEOUT_MS without one. A
// malformed request is logged at most once per peer and interval.
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Clock } from '../core/clock.js';
import { LogLimiter } from '../core/log-limiter.js';
import type { Logger } from '../core/logger.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import type { HttpProxy, TunnelContext } from './http-proxy.js';
import { asHttpTransport } from './http-transport.js';
import { DEFAULT_HTTP1_LIMITS, serveHttp1, type Http1Limits } from './http1/server.js';

export const H2_MAX_CONCURRENT_STREAMS = 100;
export const H2_IDLE_TIMEOUT_MS = 300_000;

/** What an L7 proxy shares among its connections: the clock, the limits and their counter. */
export class HttpServing {
  readonly limits: Http1Limits;
  private readonly log: LogLimiter;
  private readonly hits: ReturnType<MetricsRegistry['counter']>;

  constructor(readonly clock: Clock, readonly logger: Logger, metrics: MetricsRegistry, limits: Partial<Http1Limits> = {}) {
    this.limits = { ...DEFAULT_HTTP1_LIMITS, ...limits };
    this.log = new LogLimiter(clock);
    this.hits = metrics.counter({ name: 'ambit_http_limits_total', help: 'HTTP connections ended or paused by a limit (header_timeout, body_timeout, idle_timeout, pipelined, malformed).', labelNames: ['limit'] });
  }

  hit(limit: string): void {
    this.hits.labels({ limit }).inc();
  }

  /** Log a refusal at most once per peer and interval. */
  refused(peer: string, fields: Record<string, unknown>): void {
    const d = this.log.allow(peer);
    if (d.log) this.logger.info('malformed HTTP/1.1 request refused', { ...fields, peer, ...(d.suppressed ? { alsoRefusedSinceLastLine: d.suppressed } : {}) });
  }
}

export function serveHttp(stream: Duplex, kind: 'http1' | 'h2', proxy: HttpProxy, ctx: TunnelContext, serving: HttpServing): void {
  if (kind === 'http1') {
    serveHttp1(stream, {
      request: (rq, rs) => proxy.handle(rq, rs, ctx),
      badRequest: (status, e) => {
        serving.hit('malformed');
        serving.refused(ctx.peerIdentity || ctx.peerAddress.ip, { status, code: e.code, error: e.message });
      },
      limitHit: (limit) => serving.hit(limit),
    }, { clock: serving.clock, limits: serving.limits });
  } else {
    const server = http2.createServer({ settings: { maxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS } }, (rq, rs) => proxy.handle(rq, rs, ctx));
    server.setTimeout(H2_IDLE_TIMEOUT_MS);
    server.on('timeout', (session: http2.ServerHttp2Session) => {
      serving.hit('idle_timeout');
      session.close();
    });
    server.on('sessionError', () => {});
    server.emit('connection', asHttpTransport(stream));
  }
  stream.resume();
}
