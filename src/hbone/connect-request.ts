// Reading an incoming HBONE request: a pure function from HTTP/2 headers to either the tunnel
// target or a 400 with the reason. Whether the target IP belongs to the
// workload behind this listener is the caller's (the ztunnel's) decision.
import { parseAuthority } from '../core/ip.js';

export interface TunnelHeaders {
  baggage?: string;
  forwarded?: string;
  traceparent?: string;
}

export type ConnectRequestVerdict =
  | { ok: true; authority: string; target: { ip: string; port: number }; headers: TunnelHeaders }
  | { ok: false; status: 400; reason: string; authority?: string };

type HeaderValue = string | string[] | number | undefined;

function text(v: HeaderValue): string | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : String(v);
}

export function parseConnectRequest(headers: Record<string, HeaderValue>): ConnectRequestVerdict {
  const method = text(headers[':method']);
  const authority = text(headers[':authority']);
  if (method !== 'CONNECT') return { ok: false, status: 400, reason: `method ${method ?? '(none)'} is not CONNECT`, authority };
  if (authority === undefined || authority === '') return { ok: false, status: 400, reason: 'CONNECT without :authority' };
  const target = parseAuthority(authority);
  if (!target) return { ok: false, status: 400, reason: `authority '${authority.slice(0, 100)}' is not ip:port`, authority };
  const out: TunnelHeaders = {};
  const baggage = text(headers.baggage);
  const forwarded = text(headers.forwarded);
  const traceparent = text(headers.traceparent);
  if (baggage !== undefined) out.baggage = baggage;
  if (forwarded !== undefined) out.forwarded = forwarded;
  if (traceparent !== undefined) out.traceparent = traceparent;
  return { ok: true, authority, target: { ip: target.ip, port: target.port }, headers: out };
}
