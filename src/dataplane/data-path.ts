// The ztunnel's data path: what happens to one connection, outbound (a local workload's
// captured connection) and inbound (an HBONE tunnel on a workload's 15008, or plaintext
// captured on its 15006). Decisions come from route.ts and inbound-decision.ts; this file
// only carries them out, through the shared L4 routine (l4-forward.ts), which fills exactly one
// telemetry record per connection.
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
import type { Clock } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import { formatAuthority } from '../core/ip.js';
import type { Logger, Tracer } from '../core/logger.js';
import { RandomIds } from '../core/random-ids.js';
import { closeSignal, type HbonePool, type HboneRequest } from '../hbone/index.js';
import { newConnectionRecord, type ConnectionRecord, type TcpTelemetry } from '../telemetry/connection-record.js';
import type { Workload } from '../xds/workload-api.js';
import { currentCertificate, type CertificateSource } from './certificates.js';
import type { ConnectionManager } from './connection-manager.js';
import { decideInbound, type InboundRequest } from './inbound-decision.js';
import { connected, denyL4, failL4, forwardL4, refuseL4, streamDownstream, type Downstream, type L4Sink } from './l4-forward.js';
import { identityOf, normalizeIp, type MeshView } from './mesh-view.js';
import { baggageOf, newTraceparent, peerInfo, serviceInfo } from './peer-info.js';
import type { Endpoint, PodNetwork } from './pod-network.js';
import { decideOutbound, type OutboundRoute, type Picker } from './route.js';

/** Tries of an outbound HBONE connection that gets no answer at all (see connectHbone). */
const MAX_CONNECT_ATTEMPTS = 3;

export interface DataPathDeps {
  state(): MeshView;
  pool: HbonePool;
  certificates: CertificateSource;
  telemetry: TcpTelemetry;
  connections: ConnectionManager;
  pick: Picker;
  logger: Logger;
  clock: Clock;
  nextId(): string;
  upstreamConnectTimeoutMs: number;
}

export class DataPath {
  private readonly trace: Tracer;
  private readonly ids = new RandomIds();
  private readonly sink: L4Sink;
  /** Workload objects are immutable (a new state brings new ones): baggage is built once per object. */
  private readonly baggage = new WeakMap<Workload, string>();

  constructor(private readonly d: DataPathDeps) {
    this.trace = d.logger.tracer('conn');
    this.sink = { telemetry: d.telemetry, now: () => d.clock.now() };
  }

  /** A connection a local workload made to `dst` (captured, or an explicit forward). */
  outbound(client: net.Socket, source: Workload, network: PodNetwork, dst: Endpoint): void {
    const { d } = this;
    client.on('error', ignore);
    const state = d.state();
    const route = decideOutbound(state, source, dst, d.pick);
    const dstWorkload = route.kind === 'refuse' ? state.workloadByIp(dst.ip) : route.workload ?? state.workloadByIp(route.connectTo.ip);
    const record = newConnectionRecord({
      id: d.nextId(), reporter: 'source', startMs: d.clock.now(),
      source: { ip: normalizeIp(client.remoteAddress ?? source.addresses[0]!), port: client.remotePort ?? 0, workload: peerInfo(source), identity: identityOf(source) },
      destination: { ip: dst.ip, port: dst.port, workload: peerInfo(dstWorkload) },
      service: serviceInfo(route.kind === 'refuse' ? route.service ?? state.serviceByVip(dst.ip) : route.service),
      via: route.kind === 'hbone' ? (route.via === 'waypoint' ? 'waypoint' : 'hbone') : 'passthrough',
      securityPolicy: route.kind === 'hbone' ? 'mutual_tls' : 'unknown',
    });
    d.telemetry.opened(record);
    if (this.trace.enabled) this.trace.log('outbound', { id: record.id, dst: formatAuthority(dst.ip, dst.port), route: route.kind });
    const down = streamDownstream(client);

    if (route.kind === 'refuse') {
      refuseL4(this.sink, record, down, route.refusal, route.reason);
      return;
    }
    if (route.kind === 'passthrough') {
      forwardL4(this.sink, {
        record, down, upstreamName: formatAuthority(route.connectTo.ip, route.connectTo.port),
        dial: () => connected(network.connect(route.connectTo), d.upstreamConnectTimeoutMs, d.clock),
      });
      return;
    }
    forwardL4(this.sink, {
      record, down, upstreamName: route.authority,
      dial: () => this.connectHbone(client, source, route, record, dst, MAX_CONNECT_ATTEMPTS),
      // An HTTP answer to the tunnel is the destination's refusal; no answer, a connect failure.
      dialFailed: (e) => {
        const status = (e as { details?: { status?: number } }).details?.status;
        if (status === 401 || status === 403) denyL4(this.sink, record, down, { policy: null, ruleIndex: null, reason: `the destination refused the tunnel (HTTP ${status})` });
        else if (status) refuseL4(this.sink, record, down, 'peer_refused', describeError(e).message, status);
        else failL4(this.sink, record, down, e, route.authority);
      },
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

  /** An HBONE CONNECT on a local workload's 15008: accepted only once the application is reached. */
  inboundHbone(req: HboneRequest, workload: Workload, network: PodNetwork): void {
    const { d } = this;
    const state = d.state();
    const sourceWorkload = state.workloadByIp(req.peerAddress.ip);
    const record = newConnectionRecord({
      id: d.nextId(), reporter: 'destination', startMs: d.clock.now(),
      source: { ip: normalizeIp(req.peerAddress.ip), port: req.peerAddress.port, workload: peerInfo(sourceWorkload), identity: req.peerIdentity },
      destination: { ip: req.target.ip, port: req.target.port, workload: peerInfo(workload), identity: identityOf(workload) },
      service: serviceInfo(serviceFromForwarded(state, req.headers.forwarded)),
      via: 'hbone', securityPolicy: 'mutual_tls',
    });
    d.telemetry.opened(record);
    const down: Downstream = {
      open: () => (req.cancelled ? undefined : req.accept({ baggage: this.baggageOf(workload) })),
      refuse: (status, message) => req.reject(status, message),
    };
    this.inbound(down, record, workload, network, { target: req.target, peerIdentity: req.peerIdentity, sourceIp: req.peerAddress.ip });
  }

  /** Plaintext captured on a local workload's 15006 (no identity). */
  inboundPlaintext(client: net.Socket, workload: Workload, network: PodNetwork, target: Endpoint): void {
    const { d } = this;
    client.on('error', ignore);
    const srcIp = normalizeIp(client.remoteAddress ?? '');
    const record = newConnectionRecord({
      id: d.nextId(), reporter: 'destination', startMs: d.clock.now(),
      source: { ip: srcIp, port: client.remotePort ?? 0, workload: peerInfo(d.state().workloadByIp(srcIp)) },
      destination: { ip: target.ip, port: target.port, workload: peerInfo(workload), identity: identityOf(workload) },
      via: 'plaintext', securityPolicy: 'unknown',
    });
    d.telemetry.opened(record);
    this.inbound(streamDownstream(client), record, workload, network, { target, sourceIp: srcIp });
  }

  /** Decides an inbound connection and carries the decision out. */
  private inbound(down: Downstream, record: ConnectionRecord, workload: Workload, network: PodNetwork, request: InboundRequest): void {
    const { d } = this;
    const decision = decideInbound(d.state(), workload, request);
    if (decision.kind === 'reject') {
      if (decision.status === 401) denyL4(this.sink, record, down, decision.authz);
      else refuseL4(this.sink, record, down, decision.refusal, decision.reason, decision.status);
      return;
    }
    // The application sees the client's address, not the pod's own (as with Istio's ztunnel).
    const target = { ip: request.target.ip, port: request.target.port };
    forwardL4(this.sink, {
      record, down, upstreamName: formatAuthority(target.ip, target.port),
      dial: () => connected(network.connect(target, { spoofSource: normalizeIp(request.sourceIp ?? '') || undefined }), d.upstreamConnectTimeoutMs, d.clock),
      live: (abort) => d.connections.add({ workloadUid: workload.uid, request, record, abort }),
    });
  }
}

function serviceFromForwarded(state: MeshView, forwarded: string | undefined) {
  const host = forwarded ? /;host=([^;,\s]+)/.exec(forwarded)?.[1] : undefined;
  if (!host) return undefined;
  for (const s of state.services.values()) if (s.hostname === host) return s;
  return undefined;
}

function ignore(): void {}
