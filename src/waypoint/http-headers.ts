// Header handling of the L7 pipeline (pure): what crosses to the upstream, edits in Envoy's
// order, W3C trace context.
import type { HeaderEdits } from './routing.js';
import type { RandomIds } from '../core/random-ids.js';

export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host', 'http2-settings']);

/** In place, in Envoy's order: remove, set, add. */
export function applyEdits(h: Record<string, string | string[]>, e: HeaderEdits): void {
  for (const k of e.remove) delete h[k.toLowerCase()];
  for (const [k, v] of e.set) h[k.toLowerCase()] = v;
  for (const [k, v] of e.add) {
    const key = k.toLowerCase();
    const cur = h[key];
    h[key] = cur === undefined ? v : [...(Array.isArray(cur) ? cur : [cur]), v];
  }
}

export function upstreamHeaders(inbound: Record<string, string | string[] | undefined>, edits: HeaderEdits, traceparent: string, requestId: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(inbound)) {
    if (v === undefined || k.startsWith(':') || HOP_BY_HOP.has(k)) continue;
    out[k] = v;
  }
  if (first(inbound.te) === 'trailers') out.te = 'trailers';
  out.traceparent = traceparent;
  out['x-request-id'] = requestId;
  out['x-forwarded-proto'] ??= 'http';
  applyEdits(out, edits);
  return out;
}

export function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function hostOnly(authority: string): string {
  return authority.replace(/:\d+$/, '');
}

/** Keeps the trace id of a valid W3C traceparent with a new span id; starts a trace otherwise. */
export function childTraceparent(incoming: string | undefined, ids: RandomIds): string {
  const m = incoming ? /^00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/.exec(incoming) : null;
  const span = ids.hex(8);
  if (m && !/^0+$/.test(m[1]!)) return `00-${m[1]}-${span}-${m[2]}`;
  return `00-${ids.hex(16)}-${span}-01`;
}
