// A sidecar: the waypoint's L7 engine dedicated to one pod, with the pod's own identity,
// listening inside the pod's network namespace (the node's ztunnel does not serve a pod whose
// workload carries native_tunnel; the sidecar takes its place on the same ports):
//
//   15008  HBONE inbound: mTLS with the pod's identity; the authority must be the pod itself.
//   15006  plaintext inbound (captured): PeerAuthentication decides first (STRICT refuses).
//          Both inbound paths then sniff the protocol: HTTP goes through HttpProxy with the
//          policies that apply to the pod (sidecar-policy.ts) and HTTP attributes, and is
//          delivered to the application at <pod ip>:<port> inside the pod (not captured: the
//          sidecar's sockets carry mark 0x539); other TCP passes the L4 view of the same
//          policies and is relayed.
//   15001  captured outbound, decided by the ztunnel's own route decision (route.ts):
//          - the destination (service or workload) uses a waypoint -> HBONE to the waypoint,
//            relayed as TCP with :authority = the original destination, so the destination's
//            L7 policy is applied there (Istio's sidecars skip the waypoint, and with it that
//            policy; Ambit does not);
//          - HBONE straight to a pod -> HTTP is routed here (HTTPRoute / VirtualService) and
//            forwarded over HBONE to the chosen endpoint's 15008 (an ambient pod's ztunnel or
//            another sidecar); other TCP is tunnelled as is;
//          - outside the mesh / a pod that does not speak HBONE -> passthrough.
//
// Telemetry: request records with reporter `source` (outbound HTTP) and `destination`
// (inbound HTTP); TCP records (ztunnel's) for outbound L4 paths. Telemetry accessLogging that
// selects the pod turns request access-log lines off or filters them (CLIENT mode outbound,
// SERVER inbound); metrics are always kept.
//
// Lifecycle: start() -> setConfig()* -> close(deadlineMs).
import { UpstreamClusters } from '../waypoint/traffic/clusters.js';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Clock } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import { connected, authorizeConnection, denyL4, forwardL4, streamDownstream, type L4Sink } from '../dataplane/l4-forward.js';
import { HbonePool, HboneServer, type HboneRequest } from '../hbone/index.js';
import { newConnectionRecord, TcpTelemetry } from '../telemetry/connection-record.js';
import { RequestTelemetry } from '../telemetry/request-record.js';
import type { ConfigObject } from '../xds/config-resource.js';
import type { Workload } from '../xds/workload-api.js';
import { currentCertificate } from '../dataplane/certificates.js';
import { ConnectionManager } from '../dataplane/connection-manager.js';
import { SelfCallGuard } from '../dataplane/self-call-guard.js';
import { DataPath } from '../dataplane/data-path.js';
import { baggageOf, peerInfo } from '../dataplane/peer-info.js';
import { guardListener, type Endpoint, type PodNetwork } from '../dataplane/pod-network.js';
import { CAPTURE_PORTS, decideOutbound, roundRobin } from '../dataplane/route.js';
import { normalizeIp, MeshView } from '../dataplane/mesh-view.js';
import { EndpointPicker } from '../waypoint/endpoint-picker.js';
import { HttpProxy, type TunnelContext } from '../waypoint/http-proxy.js';
import { HttpServing, serveHttp } from '../waypoint/serve-http.js';
import { ReplayBudget } from '../waypoint/replay-budget.js';
import { decidePlaintext, sidecarInboundPolicies } from './sidecar-policy.js';
import { hboneDialer, Upstreams, type UpstreamDialer } from '../waypoint/upstream.js';
import { podHboneServer, type PodProxyOptions } from '../waypoint/waypoint.js';
import { sniff } from '../waypoint/sniff.js';
import { compileWaypointConfig, WarningLatch, type WaypointConfig } from '../waypoint/waypoint-config.js';
import { HBONE_PORT, INBOUND_PLAINTEXT_PORT, OUTBOUND_CAPTURE_PORT } from '../core/mesh-constants.js';

export const SIDECAR_OUTBOUND_PORT = OUTBOUND_CAPTURE_PORT;
export const SIDECAR_INBOUND_PLAINTEXT_PORT = INBOUND_PLAINTEXT_PORT;
export const SIDECAR_HBONE_PORT = HBONE_PORT;
const SNIFF_TIMEOUT_MS = 300;

export interface SidecarOptions extends PodProxyOptions {
  pod: { namespace: string; name: string };
  /** The pod's labels: which selector-based RequestAuthentications apply to it. */
  labels: Record<string, string>;
}

/** Reaches the local application: plain TCP to <pod ip>:<port> inside the pod. */
function localDialer(network: PodNetwork, timeoutMs: number, clock: Clock): UpstreamDialer {
  return async (target) => {
    const s = await connected(network.connect({ ip: target.ip, port: target.port }, { allowHalfOpen: false }), timeoutMs, clock);
    s.on('error', () => {});
    return s;
  };
}

export class Sidecar {
  private readonly warnings = new WarningLatch();
  private state = MeshView.empty();
  private config: WaypointConfig;
  private readonly pool: HbonePool;
  private readonly upstreams: Upstreams;
  /** The inbound side's upstreams: the application in this pod. */
  private readonly local: Upstreams;
  private readonly outboundProxy: HttpProxy;
  private readonly inboundProxy: HttpProxy;
  private readonly dataPath: DataPath;
  private readonly tcpTelemetry: TcpTelemetry;
  private readonly l4: L4Sink;
  /** Round robin over endpoints and waypoint replicas for L4 outbound routes (one counter per key). */
  private readonly pick = roundRobin();
  private readonly connections: ConnectionManager;
  private readonly selfCalls: SelfCallGuard;
  private readonly serving: HttpServing;
  private hbone: HboneServer | undefined;
  private readonly servers: net.Server[] = [];
  private seq = 0;
  private configured = false;

  constructor(private readonly opts: SidecarOptions) {
    this.config = this.compile(MeshView.empty(), [], '0');
    this.connections = new ConnectionManager(opts.clock);
    this.selfCalls = new SelfCallGuard(opts.logger, opts.metrics, opts.clock);
    this.serving = new HttpServing(opts.clock, opts.logger, opts.metrics);
    const timeoutMs = opts.connectTimeoutMs ?? 5_000;
    this.pool = new HbonePool({
      logger: opts.logger, clock: opts.clock,
      createSocket: (dst) => opts.network.connect(dst, { allowHalfOpen: false }),
    });
    const certificate = () => currentCertificate(opts.certificates, opts.identity);
    this.upstreams = new Upstreams({ dial: hboneDialer({ pool: this.pool, sourceIdentity: opts.identity, certificate, sourceIp: opts.podIp, connectTimeoutMs: timeoutMs }), clock: opts.clock });
    this.local = new Upstreams({ dial: localDialer(opts.network, timeoutMs, opts.clock), clock: opts.clock });
    const telemetry = new RequestTelemetry({ registry: opts.metrics, logger: opts.logger.child({ scope: 'access' }) });
    const common = {
      waypoint: opts.pod,
      config: () => this.config, state: () => this.state,
      telemetry, logger: opts.logger, clock: opts.clock, random: Math.random,
      nextId: () => `${opts.pod.name}-${++this.seq}`,
      replayBudget: new ReplayBudget(),
    };
    const self = { namespace: opts.pod.namespace, labels: opts.labels };
    this.outboundProxy = new HttpProxy({
      ...common, upstreams: this.upstreams, picker: new EndpointPicker({ now: () => opts.clock.now() }),
      reporter: 'source',
      clusters: new UpstreamClusters({ clock: opts.clock, random: Math.random }),
      bind: (cfg) => ({ providers: [], policies: [], accessLog: cfg.accessLogForWorkload(self, 'CLIENT') }),
    });
    this.inboundProxy = new HttpProxy({
      ...common, upstreams: this.local, picker: new EndpointPicker({ now: () => opts.clock.now() }),
      reporter: 'destination',
      bind: (cfg, ctx) => ({
        policies: ctx.workload ? sidecarInboundPolicies(cfg.policies, ctx.workload) : [],
        // JWTs are validated where they are received, as Istio's sidecars do.
        providers: cfg.providersForWorkload(self),
        accessLog: cfg.accessLogForWorkload(self, 'SERVER'),
      }),
    });
    this.tcpTelemetry = new TcpTelemetry({ registry: opts.metrics, logger: opts.logger.child({ scope: 'access' }), clock: opts.clock });
    this.l4 = { telemetry: this.tcpTelemetry, now: () => opts.clock.now() };
    this.dataPath = new DataPath({
      state: () => this.state, pool: this.pool, certificates: opts.certificates,
      telemetry: this.tcpTelemetry,
      connections: this.connections, pick: this.pick, logger: opts.logger,
      nextId: () => `${opts.pod.name}-tcp-${++this.seq}`, clock: opts.clock, upstreamConnectTimeoutMs: timeoutMs,
    });
  }

  /** This pod as the control plane describes it (undefined until the first config names it). */
  self(): Workload | undefined {
    return this.state.workloadByIp(this.opts.podIp);
  }

  current(): { state: MeshView; config: WaypointConfig } {
    return { state: this.state, config: this.config };
  }

  ready(): { ready: boolean; reason?: string } {
    if (!this.configured) return { ready: false, reason: 'no config from the control plane yet' };
    if (!this.self()) return { ready: false, reason: `the control plane does not know a workload at ${this.opts.podIp}` };
    if (this.servers.length < 3) return { ready: false, reason: 'listeners not open yet' };
    return { ready: true };
  }

  setConfig(state: MeshView, objects: ConfigObject[], version: string): void {
    this.state = state;
    this.config = this.compile(state, objects, version);
    this.upstreams.prune((uid) => state.workloads.has(uid));
    this.configured = true;
    const recheck = this.connections.recheck(state);
    if (recheck.closed > 0) this.opts.logger.info('closed connections that the new policy denies', { count: recheck.closed });
    for (const w of this.warnings.fresh(this.config.warnings)) this.opts.logger.warn('L7 config warning', { version, warning: w });
    const self = this.self();
    this.opts.logger.info('config applied', { version, services: state.services.size, self: self ? `${self.namespace}/${self.name}` : null, nativeTunnel: self?.nativeTunnel ?? false });
  }

  async start(): Promise<void> {
    await this.opts.certificates.get(this.opts.identity);
    this.hbone = podHboneServer(this.opts, (req) => this.onHbone(req));
    const { network, bindAddress } = this.opts;
    const hbone = await network.listen(bindAddress, SIDECAR_HBONE_PORT);
    guardListener(hbone, this.opts.logger, this.opts.clock, `sidecar:${SIDECAR_HBONE_PORT}`);
    this.hbone.attach(hbone);
    this.servers.push(hbone);
    const outbound = await network.listen(bindAddress, SIDECAR_OUTBOUND_PORT);
    guardListener(outbound, this.opts.logger, this.opts.clock, `sidecar:${SIDECAR_OUTBOUND_PORT}`);
    outbound.on('connection', (s: net.Socket) => this.onOutbound(s));
    this.servers.push(outbound);
    const plaintext = await network.listen(bindAddress, SIDECAR_INBOUND_PLAINTEXT_PORT);
    guardListener(plaintext, this.opts.logger, this.opts.clock, `sidecar:${SIDECAR_INBOUND_PLAINTEXT_PORT}`);
    plaintext.on('connection', (s: net.Socket) => this.onPlaintext(s));
    this.servers.push(plaintext);
    this.opts.logger.info('sidecar listening', { pod: `${this.opts.pod.namespace}/${this.opts.pod.name}`, address: this.opts.podIp, identity: this.opts.identity });
  }

  async close(deadlineMs = 5_000): Promise<void> {
    for (const s of this.servers) s.close();
    await this.hbone?.close(deadlineMs);
    await this.connections.drain(Math.min(deadlineMs, 1_000));
    this.upstreams.close();
    this.local.close();
    await this.pool.close(1_000);
    this.opts.certificates.close();
  }

  private compile(state: MeshView, objects: ConfigObject[], version: string): WaypointConfig {
    return compileWaypointConfig({ version, state, objects, rootNamespace: this.opts.rootNamespace, trustDomain: this.opts.trustDomain, readFile: this.opts.readFile });
  }

  // ---- inbound ----

  private onHbone(req: HboneRequest): void {
    const self = this.self();
    if (!self) { req.reject(503, 'the sidecar has no config for its pod yet'); return; }
    if (normalizeIp(req.target.ip) !== this.opts.podIp) { req.reject(400, `${req.target.ip} is not this pod (${self.namespace}/${self.name})`); return; }
    if (CAPTURE_PORTS.has(req.target.port)) { req.reject(400, `port ${req.target.port} is a mesh capture port; refusing a loop`); return; }
    const stream = req.accept({ baggage: baggageOf(self) });
    stream.on('error', () => {});
    this.serveInbound(stream, { peerIdentity: req.peerIdentity, peerAddress: req.peerAddress, target: req.target, workload: self });
  }

  /** The pod and the original destination of a captured connection; resets it when either is unknown, or when it is a self-call. */
  private captured(socket: net.Socket, direction: 'inbound' | 'outbound'): { self: Workload; dst: Endpoint } | undefined {
    socket.on('error', () => {});
    const self = this.self();
    let dst: Endpoint | undefined;
    try {
      dst = this.opts.network.originalDestination(socket);
    } catch (e: unknown) {
      this.opts.logger.warn('no original destination for a captured connection', { error: describeError(e).message });
    }
    if (!self || !dst) {
      socket.resetAndDestroy();
      return undefined;
    }
    if (this.selfCalls.refuse(socket, direction, dst, self)) return undefined;
    return { self, dst };
  }

  private onPlaintext(socket: net.Socket): void {
    const captured = this.captured(socket, 'inbound');
    if (!captured) return;
    const { self, dst } = captured;
    const sourceIp = normalizeIp(socket.remoteAddress ?? '');
    const decision = decidePlaintext(this.state, self, sourceIp, dst);
    if (decision.decision === 'DENY') {
      this.opts.logger.info('plaintext connection refused', { src: sourceIp, dst: `${dst.ip}:${dst.port}`, policy: decision.policy, reason: decision.reason });
      socket.resetAndDestroy();
      return;
    }
    this.serveInbound(socket, { peerIdentity: '', peerAddress: { ip: sourceIp, port: socket.remotePort ?? 0 }, target: dst, workload: self });
  }

  /** HTTP through the inbound L7 pipeline to the application; anything else relayed after L4 policy. */
  private serveInbound(stream: Duplex, ctx: TunnelContext): void {
    void sniff(stream, SNIFF_TIMEOUT_MS, this.opts.clock).then((kind) => {
      if (kind === 'http1' || kind === 'h2') serveHttp(stream, kind, this.inboundProxy, ctx, this.serving);
      else this.inboundTcp(stream, ctx);
    }, () => stream.destroy());
  }

  /** Non-HTTP to the pod: L4 policy, then a relay to the application; one TCP record. */
  private inboundTcp(stream: Duplex, ctx: TunnelContext): void {
    const self = ctx.workload!;
    const srcIp = normalizeIp(ctx.peerAddress.ip);
    const record = newConnectionRecord({
      id: `${this.opts.pod.name}-tcp-${++this.seq}`, reporter: 'destination', startMs: this.opts.clock.now(),
      source: { ip: srcIp, port: ctx.peerAddress.port, workload: peerInfo(this.state.workloadByIp(srcIp)), identity: ctx.peerIdentity || undefined },
      destination: { ip: ctx.target.ip, port: ctx.target.port, workload: peerInfo(self), identity: this.opts.identity },
      via: ctx.peerIdentity ? 'hbone' : 'plaintext', securityPolicy: ctx.peerIdentity ? 'mutual_tls' : 'unknown',
    });
    this.tcpTelemetry.opened(record);
    const down = streamDownstream(stream);
    const policies = sidecarInboundPolicies(this.config.policies, self);
    const verdict = authorizeConnection(policies, { sourceIp: srcIp, peerIdentity: ctx.peerIdentity || undefined, destination: ctx.target }, 'waypoint');
    if (verdict.decision === 'DENY') {
      denyL4(this.l4, record, down, verdict);
      return;
    }
    const app = { uid: self.uid, ip: this.opts.podIp, port: ctx.target.port, identity: '' };
    forwardL4(this.l4, { record, down, upstreamName: `the application on port ${ctx.target.port}`, dial: () => this.local.tunnel(app) });
  }

  // ---- outbound ----

  private onOutbound(socket: net.Socket): void {
    const captured = this.captured(socket, 'outbound');
    if (!captured) return;
    const { self, dst } = captured;
    const target = dst;
    const route = decideOutbound(this.state, self, target, this.pick);
    // Waypoints, passthrough and refusals are L4 decisions, carried out as the ztunnel does.
    if (route.kind !== 'hbone' || route.via !== 'direct') {
      this.dataPath.outbound(socket, self, this.opts.network, target);
      return;
    }
    void sniff(socket, SNIFF_TIMEOUT_MS, this.opts.clock).then((kind) => {
      if (kind === 'http1' || kind === 'h2') {
        const service = this.state.serviceByVip(target.ip);
        serveHttp(socket, kind, this.outboundProxy, {
          peerIdentity: this.opts.identity, peerAddress: { ip: normalizeIp(socket.remoteAddress ?? this.opts.podIp), port: socket.remotePort ?? 0 },
          target, service, workload: service ? undefined : route.workload,
        }, this.serving);
      } else {
        this.dataPath.outbound(socket, self, this.opts.network, target);
      }
    }, () => socket.destroy());
  }

}
