// The L4 routine every proxy shares: authorize a connection, refuse it with a typed reason, or
// dial its upstream, relay, and close its one TCP record. The ztunnel (inbound HBONE and
// plaintext, outbound passthrough), the waypoint's and the ingress gateway's TCP paths and the
// sidecar's inbound TCP all go through it; the decision of where to go stays with the caller.
//
// Invariants:
// - Exactly one telemetry record per connection, closed exactly once, whatever happens.
// - A refused or failed connection answers its client at once: an HBONE request not yet
//   accepted gets an HTTP status; a plain connection is reset (RST), so a client never mistakes
//   a refusal for an empty response.
// - No byte goes upstream before the upstream is connected; an HBONE request is accepted only
//   then (so an upstream that refuses becomes a 503 the client's ztunnel can report).
// - Bytes are counted from the reporter's workload: the downstream for a `source` record, the
//   upstream otherwise.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Clock } from '../core/clock.js';
import { describeError, errnoCode } from '../core/errors.js';
import { relay, type RelayResult } from '../hbone/index.js';
import { evaluate, stripSpiffe, type Decision, type Enforcer } from '../rbac/index.js';
import type { CompiledPolicy } from '../rbac/compiled-policy.js';
import {
  denyConnection, failConnection, refuseConnection,
  type ConnectionRecord, type Refusal, type TcpTelemetry,
} from '../telemetry/connection-record.js';
import { normalizeIp } from './mesh-view.js';

/** What an L4 authorization sees of a connection. */
export interface L4Attributes {
  sourceIp?: string;
  /** spiffe://... proven by mTLS; absent for plaintext. */
  peerIdentity?: string;
  destination: { ip: string; port: number };
}

/** One L4 authorization for every proxy: addresses normalized, identity stripped of spiffe://. */
export function authorizeConnection(policies: readonly CompiledPolicy[], c: L4Attributes, enforcer: Enforcer): Decision {
  return evaluate(policies, {
    sourceIp: c.sourceIp === undefined ? undefined : normalizeIp(c.sourceIp),
    sourcePrincipal: c.peerIdentity ? stripSpiffe(c.peerIdentity) : undefined,
    destinationIp: normalizeIp(c.destination.ip),
    destinationPort: c.destination.port,
  }, { enforcer });
}

/** The client's side of a connection. */
export interface Downstream {
  /** The stream to relay, once the upstream is up; undefined when the client already left. */
  open(): Duplex | undefined;
  /** Answers a refused or failed connection: `status` for an HBONE client, a reset otherwise. */
  refuse(status: number, message: string): void;
}

/** A plain stream (a captured socket, an accepted tunnel): refused by a reset. */
export function streamDownstream(stream: Duplex): Downstream {
  return {
    open: () => (stream.destroyed ? undefined : stream),
    refuse: () => {
      if (stream.destroyed) return;
      const s = stream as Partial<net.Socket>;
      if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
      else stream.destroy();
    },
  };
}

export interface L4Sink {
  telemetry: TcpTelemetry;
  now(): number;
}

/** Refuses a connection the mesh will not carry: one record, the client answered at once. */
export function refuseL4(sink: L4Sink, record: ConnectionRecord, down: Downstream, refusal: Refusal, message: string, status = 400): void {
  refuseConnection(record, { refusal, message, status });
  finish(sink, record, down, status, message);
}

/** Denies a connection by authorization (answered 401 to an HBONE client, reset otherwise). */
export function denyL4(sink: L4Sink, record: ConnectionRecord, down: Downstream, decision: Pick<Decision, 'policy' | 'ruleIndex' | 'reason'>): void {
  denyConnection(record, { policy: decision.policy, rule: decision.ruleIndex, message: decision.reason });
  finish(sink, record, down, 401, decision.reason);
}

/** An upstream that could not be reached (answered 503 to an HBONE client, reset otherwise). */
export function failL4(sink: L4Sink, record: ConnectionRecord, down: Downstream, e: unknown, upstreamName: string): void {
  const err = describeError(e);
  failConnection(record, { code: errnoCode(e) ?? err.code, message: `upstream ${upstreamName}: ${err.message}` });
  finish(sink, record, down, 503, `upstream connect failed: ${err.message}`);
}

export interface ForwardL4 {
  record: ConnectionRecord;
  down: Downstream;
  /** The upstream, connected (rejects when it cannot be). */
  dial(): Promise<Duplex>;
  /** What the upstream is, for a failure's message (`10.0.0.5:8080`, `api.example.com`). */
  upstreamName: string;
  /** Answers a dial that failed (default: failL4, a connect failure). */
  dialFailed?(e: unknown): void;
  /** Registers the relay as a live connection (policy rechecks, drain); returns the unregister. */
  live?(abort: (reason: string) => void): () => void;
}

/** Dials, relays, and closes the record when the relay is done. */
export function forwardL4(sink: L4Sink, f: ForwardL4): void {
  const { record } = f;
  f.dial().then((upstream) => {
    const down = f.down.open();
    if (!down) {
      upstream.destroy();
      record.reason = { kind: 'cancelled', message: 'the client left before the upstream was up' };
      closeRecord(sink, record);
      return;
    }
    relayAndRecord(sink, down, upstream, record, f.live);
  }, (e: unknown) => (f.dialFailed ? f.dialFailed(e) : failL4(sink, record, f.down, e, f.upstreamName)));
}

/** Relays an established pair and closes the record when both directions are done. */
function relayAndRecord(sink: L4Sink, down: Duplex, upstream: Duplex, record: ConnectionRecord, live?: ForwardL4['live']): void {
  const r = relay(down, upstream);
  const unregister = live?.((reason) => r.abort(reason));
  void r.done.then((res: RelayResult) => {
    unregister?.();
    if (record.reporter === 'source') {
      record.bytesSent = res.bytesOutbound;
      record.bytesReceived = res.bytesInbound;
    } else {
      record.bytesSent = res.bytesInbound;
      record.bytesReceived = res.bytesOutbound;
    }
    if (!record.reason) {
      if (res.closedBy === 'error' && res.error) record.reason = { kind: 'error', code: errnoCode(res.error) ?? describeError(res.error).code, message: res.error.message };
      else if (res.closedBy === 'abort') record.reason = { kind: 'aborted', message: res.abortReason ?? 'aborted' };
    }
    closeRecord(sink, record);
  });
  down.resume(); // a sniffer may have paused it
}

/** Resolves when `socket` connects; rejects (and destroys it) on error or after `timeoutMs`. */
export function connected(socket: net.Socket, timeoutMs: number, clock: Clock): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const timer = clock.setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`connect timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    const onError = (e: Error): void => {
      timer.cancel();
      socket.destroy();
      reject(e);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      timer.cancel();
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

function finish(sink: L4Sink, record: ConnectionRecord, down: Downstream, status: number, message: string): void {
  down.refuse(status, message);
  closeRecord(sink, record);
}

function closeRecord(sink: L4Sink, record: ConnectionRecord): void {
  record.endMs = sink.now();
  sink.telemetry.closed(record);
}
