// The small HTTP server every Ambit process exposes for operators: metrics in Prometheus
// text, log level and tracers at run time, readiness, and whatever JSON a component adds
// (e.g. the ztunnel's /config_dump). Several listeners may share one router (Istio splits
// admin 15000, metrics 15020 and readiness 15021 across ports).
import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { isIP } from 'node:net';
import type { AddressInfo } from 'node:net';
import { parseLevel, type Logger } from '../core/logger.js';
import { PROMETHEUS_CONTENT_TYPE, type MetricsRegistry } from './metrics.js';

export type AdminHandler = (req: http.IncomingMessage, url: URL) => Promise<AdminResponse> | AdminResponse;
export interface AdminResponse {
  status?: number;
  json?: unknown;
  text?: string;
  contentType?: string;
}

export interface AdminServerOptions {
  logger: Logger;
  metrics?: MetricsRegistry;
  ready?: () => boolean | { ready: boolean; reason?: string };
  routes?: Record<string, AdminHandler>;
  /**
   * A bearer token every path but `open` requires (401 without it). Without `auth` every path
   * is served to whoever can connect.
   */
  auth?: { token: string; open: ReadonlySet<string> };
}

export class AdminServer {
  private readonly servers: http.Server[] = [];
  private readonly routes: Record<string, AdminHandler>;

  constructor(private readonly opts: AdminServerOptions) {
    this.routes = {
      '/metrics': () => this.metrics(),
      '/stats/prometheus': () => this.metrics(),
      '/healthz/ready': () => this.readiness(),
      '/ready': () => this.readiness(),
      '/logging': (req, url) => this.logging(req, url),
      ...opts.routes,
    };
  }

  /**
   * Serve the router on host:port; resolves with the bound address. With reusePort, another
   * process may listen on the same address at once (a ztunnel and its successor while they
   * hand over); the kernel spreads connections between them.
   */
  async listen(host: string, port: number, options: { reusePort?: boolean } = {}): Promise<AddressInfo> {
    const server = http.createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, reusePort: options.reusePort }, () => { server.off('error', reject); resolve(); });
    });
    // After listening: an accept error (EMFILE...) is logged; Node would otherwise throw it.
    server.on('error', (e: Error) => this.opts.logger.warn('admin listener error; still listening', { error: e.message, code: (e as NodeJS.ErrnoException).code }));
    this.servers.push(server);
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    })));
    this.servers.length = 0;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const route = this.routes[url.pathname];
    let r: AdminResponse;
    try {
      const refusal = refuseRequest(req, url.pathname, this.opts.auth);
      if (refusal) this.opts.logger.warn('admin request refused', { path: url.pathname, method: req.method, peer: req.socket.remoteAddress, reason: (refusal.text ?? '').trim() });
      r = refusal ?? (route ? await route(req, url) : { status: 404, text: `no such endpoint; try ${Object.keys(this.routes).join(' ')}\n` });
    } catch (e: unknown) {
      r = { status: 500, text: `${e instanceof Error ? e.message : String(e)}\n` };
    }
    const body = r.json !== undefined ? JSON.stringify(r.json, null, 2) + '\n' : r.text ?? '';
    // One request per connection: scrapes are seconds apart, and a kept-alive connection the
    // server times out just as a client reuses it fails that client's request ("other side
    // closed"), a race no operator should have to debug.
    res.writeHead(r.status ?? 200, {
      'content-type': r.contentType ?? (r.json !== undefined ? 'application/json' : 'text/plain; charset=utf-8'), connection: 'close',
      ...(r.status === 401 ? { 'www-authenticate': 'Bearer realm="ambit"' } : {}),
    });
    res.end(body);
  }

  private metrics(): AdminResponse {
    return { text: this.opts.metrics?.render() ?? '', contentType: PROMETHEUS_CONTENT_TYPE };
  }

  private readiness(): AdminResponse {
    const r = this.opts.ready?.() ?? true;
    const { ready, reason } = typeof r === 'boolean' ? { ready: r, reason: undefined } : r;
    return ready ? { text: 'ready\n' } : { status: 503, text: `not ready${reason ? `: ${reason}` : ''}\n` };
  }

  /** GET: current level and tracers. POST/PUT ?level=debug&trace=pool,xds: change them. */
  private logging(req: http.IncomingMessage, url: URL): AdminResponse {
    const { logger } = this.opts;
    if (req.method === 'POST' || req.method === 'PUT') {
      const level = url.searchParams.get('level');
      if (level !== null) {
        const parsed = parseLevel(level);
        if (!parsed) return { status: 400, text: `unknown level "${level}"; use error, warn, info or debug\n` };
        logger.setLevel(parsed);
      }
      const trace = url.searchParams.get('trace');
      if (trace !== null) logger.setTracing(trace);
      logger.info('logging changed', { level: logger.level, tracing: logger.tracing().enabled });
    }
    return { json: { level: logger.level, ...logger.tracing() } };
  }
}

/**
 * Requests an admin port must not serve (pure):
 * - any request from a web page (an `Origin` header), so a browser cannot be made to POST to it;
 * - a `Host` that is not an address or localhost (DNS rebinding: a page's own name resolving to
 *   127.0.0.1);
 * - with `auth`, a path outside `open` without the bearer token.
 */
export function refuseRequest(req: Pick<http.IncomingMessage, 'headers'>, path: string, auth: AdminServerOptions['auth']): AdminResponse | undefined {
  if (req.headers.origin !== undefined) return { status: 403, text: 'requests from web pages (with an Origin header) are refused\n' };
  const host = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (host !== '' && host !== 'localhost' && isIP(host) === 0) return { status: 403, text: `host "${host.slice(0, 64)}" is not an address of this admin port\n` };
  if (!auth || auth.open.has(path)) return undefined;
  const given = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (given === undefined || !sameSecret(given, auth.token)) {
    return { status: 401, text: 'this endpoint needs the admin token (Authorization: Bearer <token>); `ambit` reads it from the state directory\n' };
  }
  return undefined;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
