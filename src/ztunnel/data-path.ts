// The ztunnel's data path: what happens to one connection, outbound (a local workload's
// captured connection) and inbound (an HBONE tunnel on a workload's 15008, or plaintext
// captured on its 15006). Decisions come from route.ts and inbound-decision.ts; this file
// only carries them out, and fills exactly one telemetry record per connection.
//
// Invariants:
// - A refused or failed connection resets the client's TCP connection promptly (RST), so a
//   client never mistakes a refusal for an empty response.
// - No byte of the application goes anywhere before the route is decided and, for HBONE,
//   the peer's identity is verified (the pool checks it inside the TLS handshake).
// - Every accepted inbound connection is registered with the ConnectionManager until its
//   relay is done, so policy changes can close it.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { describeError, errnoCode } from '../core/errors.js';
import { formatAuthority } from '../core/ip.js';
import type { Logger, Tracer } from '../core/logger.js';
import { RandomIds } from '../core/random-ids.js';
import { closeSignal, relay, type HbonePool, type HboneRequest, type RelayResult } from '../hbone/index.js';
import {
  denyConnection, failConnection, newConnectionRecord, type ConnectionRecord, type TcpTelemetry,
} from '../telemetry/connection-record.js';
import type { Workload } from '../xds/workload-api.js';
import { currentCertificate, type CertificateSource } from './certificates.js';
import type { ConnectionManager } from './connection-manager.js';
import { decideInbound } from './inbound-decision.js';
import { baggageOf, newTraceparent, peerInfo, serviceInfo } from './peer-info.js';
import type { Endpoint, PodNetwork } from './pod-network.js';
import { decideOutbound, type OutboundRoute, type Picker } from './route.js';

/** Tries of an outbound HBONE connection that gets no answer at all (see connectHbone). */
const MAX_CONNECT_ATTEMPTS = 3;
import { identityOf, normalizeIp, type ZtunnelState } from './state.js';

export interface DataPathDeps {
  state(): ZtunnelState;
  pool: HbonePool;
  certificates: CertificateSource;
  telemetry: TcpTelemetry;
  connections: ConnectionManager;
  pick: Picker;
  logger: Logger;
  nextId(): string;
  now(): number;
  upstreamConnectTimeoutMs: number;
}

export class DataPath {
  private readonly trace: Tracer;
  private readonly ids = new RandomIds();
  /** Workload objects are immutable (a new state brings new ones): baggage is built once per object. */
  private readonly baggage = new WeakMap<Workload, string>();

  constructor(private readonly d: DataPathDeps) {
    this.trace = d.logger.tracer('conn');
  }

  /** A connection a local workload made to `dst` (captured, or an explicit forward). */
  outbound(client: net.Socket, source: Workload, network: PodNetwork, dst: Endpoint): void {
    const { d } = this;
    client.on('error', ignore);
    const state = d.state();
    const route = decideOutbound(state, source, dst, d.pick);
    const dstWorkload = route.kind === 'refuse' ? state.workloadByIp(dst.ip) : route.workload ?? state.workloadByIp(route.connectTo.ip);
    const record = newConnectionRecord({
      id: d.nextId(), reporter: 'source', startMs: d.now(),
      source: { ip: normalizeIp(client.remoteAddress ?? source.addresses[0]!), port: client.remotePort ?? 0, workload: peerInfo(source), identity: identityOf(source) },
      destination: { ip: dst.ip, port: dst.port, workload: peerInfo(dstWorkload) },
      service: serviceInfo(route.kind === 'refuse' ? route.service ?? state.serviceByVip(dst.ip) : route.service),
      via: route.kind === 'hbone' ? (route.via === 'waypoint' ? 'waypoint' : 'hbone') : 'passthrough',
      securityPolicy: route.kind === 'hbone' ? 'mutual_tls' : 'unknown',
    });
    d.telemetry.opened(record);
    if (this.trace.enabled) this.trace.log('outbound', { id: record.id, dst: formatAuthority(dst.ip, dst.port), route: route.kind });

    if (route.kind === 'refuse') {
      failConnection(record, { code: route.code, message: route.reason });
      this.finishFailed(client, record);
      return;
    }
    if (route.kind === 'passthrough') {
      const upstream = network.connect(route.connectTo);
      this.whenConnected(upstream, () => this.relayAndRecord(client, upstream, record, 'outbound'), (e) => {
        failConnection(record, { code: describeError(e).code, message: `passthrough to ${formatAuthority(route.connectTo.ip, route.connectTo.port)} failed: ${describeError(e).message}` });
        this.finishFailed(client, record);
      });
      return;
    }
    this.connectHbone(client, source, route, record, dst, MAX_CONNECT_ATTEMPTS).then((stream) => {
      if (client.destroyed) {
        stream.destroy();
        record.reason = { kind: 'error', code: 'CLIENT_GONE', message: 'the client closed before the tunnel was up' };
        d.telemetry.closed(record);
        return;
      }
      this.relayAndRecord(client, stream, record, 'outbound');
    }, (e: unknown) => {
      const err = describeError(e);
      const status = (e as { details?: { status?: number } }).details?.status;
      if (status === 401 || status === 403) {
        denyConnection(record, { policy: null, rule: null, message: `the destination refused the tunnel (HTTP ${status})` });
      } else {
        failConnection(record, { code: status ? `HTTP_${status}` : err.code, message: err.message });
      }
      this.finishFailed(client, record);
    });
  }

  /**
   * HBONE to the route's destination. A connection that cannot be made (refused, unreachable,
   * TLS, timeout: no tunnel answer at all) is tried again on a fresh route decision while the
   * client waits, so a waypoint replica or endpoint that just went away or is not listening
   * yet costs a retry, not the client's connection. An HTTP answer (401, 503...) is final.
   */
  private async connectHbone(client: net.Socket, source: Workload, first: Extract<OutboundRoute, { kind: 'hbone' }>, record: ConnectionRecord, dst: Endpoint, attempts: number): Promise<Duplex> {
    const { d } = this;
    const sourceIdentity = identityOf(source);
    const signal = closeSignal(client); // a client that leaves cancels the attempt
    let route = first;
    for (let i = 1; ; i++) {
      record.destination.hboneAddr = route.authority;
      record.destination.identity = route.via === 'direct' ? route.expectedIdentities[0] : undefined;
      try {
        return await d.pool.connect({
          sourceIdentity,
          certificate: () => currentCertificate(d.certificates, sourceIdentity),
          destination: route.connectTo,
          expectedIdentities: route.expectedIdentities,
          authority: route.authority,
          headers: {
            baggage: this.baggageOf(source),
            forwarded: `for="${formatAuthority(record.source.ip, record.source.port)}"${route.service ? `;host=${route.service.hostname}` : ''}`,
            traceparent: newTraceparent(this.ids),
          },
          sourceIp: source.addresses[0],
          connectTimeoutMs: d.upstreamConnectTimeoutMs,
          signal,
        });
      } catch (e: unknown) {
        const answered = (e as { details?: { status?: number } }).details?.status !== undefined;
        if (answered || client.destroyed || i >= attempts) throw e;
        const next = decideOutbound(d.state(), source, dst, d.pick);
        if (next.kind !== 'hbone') throw e;
        if (this.trace.enabled) this.trace.log('connect retry', { id: record.id, failed: formatAuthority(route.connectTo.ip, route.connectTo.port), next: formatAuthority(next.connectTo.ip, next.connectTo.port), error: describeError(e).message });
        route = next;
      }
    }
  }

  private baggageOf(w: Workload): string {
    let b = this.baggage.get(w);
    if (b === undefined) {
      b = baggageOf(w);
      this.baggage.set(w, b);
    }
    return b;
  }

  /** An HBONE CONNECT on a local workload's 15008. */
  inboundHbone(req: HboneRequest, workload: Workload, network: PodNetwork): void {
    const { d } = this;
    const state = d.state();
    const sourceWorkload = state.workloadByIp(req.peerAddress.ip);
    const record = newConnectionRecord({
      id: d.nextId(), reporter: 'destination', startMs: d.now(),
      source: { ip: normalizeIp(req.peerAddress.ip), port: req.peerAddress.port, workload: peerInfo(sourceWorkload), identity: req.peerIdentity },
      destination: { ip: req.target.ip, port: req.target.port, workload: peerInfo(workload), identity: identityOf(workload) },
      service: serviceInfo(serviceFromForwarded(state, req.headers.forwarded)),
      via: 'hbone', securityPolicy: 'mutual_tls',
    });
    d.telemetry.opened(record);
    const request = { target: req.target, peerIdentity: req.peerIdentity, sourceIp: req.peerAddress.ip };
    const decision = decideInbound(state, workload, request);
    if (decision.kind === 'reject') {
      if (decision.status === 401) denyConnection(record, { policy: decision.authz.policy, rule: decision.authz.ruleIndex, message: decision.reason });
      else failConnection(record, { code: `HTTP_${decision.status}`, message: decision.reason });
      req.reject(decision.status, decision.reason);
      record.endMs = d.now();
      d.telemetry.closed(record);
      return;
    }
    // The application sees the client's address, not the pod's own (as with Istio's ztunnel).
    const upstream = network.connect({ ip: req.target.ip, port: req.target.port }, { spoofSource: normalizeIp(req.peerAddress.ip) });
    this.whenConnected(upstream, () => {
      if (req.cancelled) {
        upstream.destroy();
        record.reason = { kind: 'error', code: 'CLIENT_GONE', message: 'the tunnel was cancelled before the upstream was up' };
        d.telemetry.closed(record);
        return;
      }
      const stream = req.accept({ baggage: this.baggageOf(workload) });
      this.relayAndRecord(stream, upstream, record, 'inbound', { workloadUid: workload.uid, request });
    }, (e) => {
      const err = describeError(e);
      failConnection(record, { code: err.code, message: `upstream ${formatAuthority(req.target.ip, req.target.port)}: ${err.message}` });
      req.reject(503, `upstream connect failed: ${err.message}`);
      record.endMs = d.now();
      d.telemetry.closed(record);
    });
  }

  /** Plaintext captured on a local workload's 15006 (no identity). */
  inboundPlaintext(client: net.Socket, workload: Workload, network: PodNetwork, target: Endpoint): void {
    const { d } = this;
    client.on('error', ignore);
    const state = d.state();
    const srcIp = normalizeIp(client.remoteAddress ?? '');
    const record = newConnectionRecord({
      id: d.nextId(), reporter: 'destination', startMs: d.now(),
      source: { ip: srcIp, port: client.remotePort ?? 0, workload: peerInfo(state.workloadByIp(srcIp)) },
      destination: { ip: target.ip, port: target.port, workload: peerInfo(workload), identity: identityOf(workload) },
      via: 'plaintext', securityPolicy: 'unknown',
    });
    d.telemetry.opened(record);
    const request = { target, sourceIp: srcIp };
    const decision = decideInbound(state, workload, request);
    if (decision.kind === 'reject') {
      if (decision.status === 401) denyConnection(record, { policy: decision.authz.policy, rule: decision.authz.ruleIndex, message: decision.reason });
      else failConnection(record, { code: `REFUSED_${decision.status}`, message: decision.reason });
      this.finishFailed(client, record);
      return;
    }
    const upstream = network.connect(target, { spoofSource: srcIp });
    this.whenConnected(upstream, () => this.relayAndRecord(client, upstream, record, 'inbound', { workloadUid: workload.uid, request }), (e) => {
      failConnection(record, { code: describeError(e).code, message: describeError(e).message });
      this.finishFailed(client, record);
    });
  }

  private whenConnected(socket: net.Socket, onUp: () => void, onFail: (e: unknown) => void): void {
    const timer = setTimeout(() => {
      socket.destroy();
      onFail(Object.assign(new Error(`connect timed out after ${this.d.upstreamConnectTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, this.d.upstreamConnectTimeoutMs);
    const onError = (e: Error) => {
      clearTimeout(timer);
      socket.destroy();
      onFail(e);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      onUp();
    });
  }

  private relayAndRecord(
    a: import('node:stream').Duplex, b: import('node:stream').Duplex, record: ConnectionRecord,
    direction: 'inbound' | 'outbound', live?: { workloadUid: string; request: import('./inbound-decision.js').InboundRequest },
  ): void {
    const r = relay(a, b);
    const unregister = live
      ? this.d.connections.add({ workloadUid: live.workloadUid, request: live.request, record, abort: (reason) => r.abort(reason) })
      : undefined;
    void r.done.then((res: RelayResult) => {
      unregister?.();
      // The reporter's workload is `a` outbound (client) and `b` inbound (server).
      if (direction === 'outbound') {
        record.bytesSent = res.bytesOutbound;
        record.bytesReceived = res.bytesInbound;
      } else {
        record.bytesSent = res.bytesInbound;
        record.bytesReceived = res.bytesOutbound;
      }
      if (res.closedBy === 'error' && res.error && !record.reason) {
        record.reason = { kind: 'error', code: errnoCode(res.error) ?? describeError(res.error).code, message: res.error.message };
      } else if (res.closedBy === 'abort' && !record.reason) {
        record.reason = { kind: 'error', code: 'ABORTED', message: res.abortReason ?? 'aborted' };
      }
      record.endMs = this.d.now();
      this.d.telemetry.closed(record);
    });
  }

  private finishFailed(client: net.Socket, record: ConnectionRecord): void {
    if (!client.destroyed) client.resetAndDestroy();
    record.endMs = this.d.now();
    this.d.telemetry.closed(record);
  }
}

function serviceFromForwarded(state: ZtunnelState, forwarded: string | undefined) {
  const host = forwarded ? /;host=([^;,\s]+)/.exec(forwarded)?.[1] : undefined;
  if (!host) return undefined;
  for (const s of state.services.values()) if (s.hostname === host) return s;
  return undefined;
}

function ignore(): void {}
