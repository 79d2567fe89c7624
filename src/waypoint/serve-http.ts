// Hands one sniffed connection (a tunnel, or a captured socket at a sidecar) to the L7
// pipeline: HTTP/1.1 through the waypoint's own codec (http1/), HTTP/2 (h2c, gRPC) through
// Node's HTTP/2 server.
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Logger } from '../core/logger.js';
import type { HttpProxy, TunnelContext } from './http-proxy.js';
import { asHttpTransport } from './http-transport.js';
import { serveHttp1 } from './http1/server.js';

export function serveHttp(stream: Duplex, kind: 'http1' | 'h2', proxy: HttpProxy, ctx: TunnelContext, logger: Logger): void {
  if (kind === 'http1') {
    serveHttp1(stream, {
      request: (rq, rs) => proxy.handle(rq, rs, ctx),
      badRequest: (status, e) => logger.info('malformed HTTP/1.1 request refused', { status, code: e.code, error: e.message, peer: ctx.peerIdentity || ctx.peerAddress.ip }),
    });
  } else {
    const server = http2.createServer({}, (rq, rs) => proxy.handle(rq, rs, ctx));
    server.on('sessionError', () => {});
    server.emit('connection', asHttpTransport(stream));
  }
  stream.resume();
}
