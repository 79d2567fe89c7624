// One request to one upstream endpoint over HBONE, HTTP/1.1 or HTTP/2, as the client spoke.
// The outcome says whether a response came (with its body still to read), or the connection
// could not be made (retryable), or it broke after the request was sent.
import http2 from 'node:http2';
import type { Readable } from 'node:stream';
import { describeError } from '../core/errors.js';
import type { UpstreamTarget, Upstreams } from './upstream.js';
import type { Exchange } from './http1/client.js';

export type { Exchange, UpstreamResponse } from './http1/client.js';

/** `signal`: abandon the exchange (a timeout): an unanswered request's connection or stream is closed. */
export function sendHttp1(upstreams: Upstreams, up: UpstreamTarget, method: string, path: string, host: string, headers: Record<string, string | string[]>, body: Buffer | Readable | undefined, signal?: AbortSignal): Promise<Exchange> {
  return upstreams.http1(up).request(method, path, host, headers, body, signal);
}

export async function sendHttp2(upstreams: Upstreams, up: UpstreamTarget, method: string, path: string, host: string, headers: Record<string, string | string[]>, body: Buffer | Readable | undefined, signal?: AbortSignal): Promise<Exchange> {
  let session: http2.ClientHttp2Session;
  try {
    session = await upstreams.h2Session(up);
  } catch (e: unknown) {
    return { kind: 'connect-failed', message: describeError(e).message };
  }
  return new Promise((resolve) => {
    const s = session.request({ ...headers, ':method': method, ':path': path, ':authority': host }, { endStream: !body });
    const trailers = new Promise<Record<string, string | string[] | undefined> | undefined>((t) => {
      s.once('trailers', (tr) => t(tr as Record<string, string>));
      s.once('close', () => t(undefined));
    });
    s.once('response', (h) => resolve({ kind: 'response', res: { status: Number(h[':status'] ?? 502), headers: h as Record<string, string>, body: s, trailers } }));
    s.once('error', (e) => resolve({ kind: 'reset', message: describeError(e).message }));
    signal?.addEventListener('abort', () => { if (!s.closed) s.close(http2.constants.NGHTTP2_CANCEL); }, { once: true });
    if (Buffer.isBuffer(body)) s.end(body);
    else if (body) body.pipe(s);
  });
}
