// One request to one upstream endpoint over HBONE, HTTP/1.1 or HTTP/2, as the client spoke.
// The outcome says whether a response came (with its body still to read), or the connection
// could not be made (retryable), or it broke after the request was sent.
import http from 'node:http';
import type http2 from 'node:http2';
import type { Readable } from 'node:stream';
import { describeError } from '../core/errors.js';
import type { UpstreamTarget, Upstreams } from './upstream.js';

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  trailers: Promise<Record<string, string | string[] | undefined> | undefined>;
}

export type Exchange = { kind: 'response'; res: UpstreamResponse } | { kind: 'connect-failed' | 'reset'; message: string };

export function sendHttp1(upstreams: Upstreams, up: UpstreamTarget, method: string, path: string, host: string, headers: Record<string, string | string[]>, body: Buffer | Readable | undefined): Promise<Exchange> {
  return new Promise((resolve) => {
    let connected = false;
    const r = http.request({ agent: upstreams.http1Agent(up), method, path, headers: { ...headers, host }, setHost: false });
    r.once('socket', () => { connected = true; });
    r.once('response', (m) => resolve({ kind: 'response', res: { status: m.statusCode ?? 502, headers: m.headers, body: m, trailers: new Promise((t) => m.once('end', () => t(m.trailers))) } }));
    // A reused keep-alive connection the server closed meanwhile fails like a connect: retried.
    r.once('error', (e) => resolve({ kind: connected && !r.reusedSocket ? 'reset' : 'connect-failed', message: describeError(e).message }));
    if (body === undefined) r.end();
    else if (Buffer.isBuffer(body)) r.end(body);
    else body.pipe(r);
  });
}

export async function sendHttp2(upstreams: Upstreams, up: UpstreamTarget, method: string, path: string, host: string, headers: Record<string, string | string[]>, body: Buffer | Readable | undefined): Promise<Exchange> {
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
    if (Buffer.isBuffer(body)) s.end(body);
    else if (body) body.pipe(s);
  });
}
