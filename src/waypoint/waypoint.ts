// One waypoint replica: terminates HBONE on its pod's 15008 with the waypoint's identity,
// reads the original destination from `:authority`, sniffs the protocol, and hands HTTP/1.1
// and HTTP/2 (h2c, gRPC) to the L7 pipeline (http-proxy.ts); anything else is relayed as TCP
// to an endpoint, with the waypoint's L4 policy applied.
//
// Lifecycle: start() -> setConfig()* -> close(deadlineMs): stop accepting, let in-flight
// requests finish, then reset what is left. A new config applies to new requests; requests in
// flight keep the config they started with.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { delay, type Clock } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { HbonePool, HboneServer, type HboneRefusal, type HboneRequest } from '../hbone/index.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import { RequestTelemetry } from '../telemetry/request-record.js';
import { newConnectionRecord, TcpTelemetry, type ConnectionRecord, type Refusal } from '../telemetry/connection-record.js';
import { authorizeConnection, denyL4, forwardL4, refuseL4, streamDownstream, type Downstream, type L4Sink } from '../dataplane/l4-forward.js';
import { peerInfo, serviceInfo } from '../dataplane/peer-info.js';
import type { ConfigObject } from '../xds/config-resource.js';
import { currentCertificate, type CertificateSource } from '../dataplane/certificates.js';
import { guardListener, type PodNetwork } from '../dataplane/pod-network.js';
import { identityOf, normalizeIp, roundRobin, targetPortOf, MeshView } from '../dataplane/mesh-view.js';
import { EndpointPicker } from './endpoint-picker.js';
import { HttpProxy, type TunnelContext } from './http-proxy.js';
import { waypointService } from '../dataplane/route.js';
import { sniff } from './sniff.js';
import { hboneDialer, Upstreams } from './upstream.js';
import { HttpServing, serveHttp } from './serve-http.js';
import { ReplayBudget } from './replay-budget.js';
import { compileWaypointConfig, WarningLatch, type WaypointConfig, type WaypointIdentity } from './waypoint-config.js';
import { describeAccessLog } from './access-log-config.js';
import { DnsForwarder, type UpstreamAddress } from '../dns/forwarder.js';
import { HostResolver } from '../dns/host-resolver.js';
import { connectExternal, type ExternalTarget } from './egress-connect.js';
import { UpstreamClusters } from './traffic/clusters.js';
import { tcpRouteBackend } from './tcp-route-backend.js';
import { HBONE_PORT } from '../core/mesh-constants.js';

export const WAYPOINT_HBONE_PORT = HBONE_PORT;
/** A client that sends nothing for this long is taken to speak a server-first TCP protocol. */
const SNIFF_TIMEOUT_MS = 300;

/** What a proxy serving one pod (a waypoint replica, a sidecar) is given. */
export interface PodProxyOptions {
  /** spiffe://<td>/ns/<ns>/sa/<service account> */
  identity: string;
  trustDomain: string;
  rootNamespace: string;
  podIp: string;
  network: PodNetwork;
  bindAddress: string;
  certificates: CertificateSource;
  logger: Logger;
  metrics: MetricsRegistry;
  clock: Clock;
  readFile: (path: string) => string;
  connectTimeoutMs?: number;
}

/**
 * The HBONE server of a proxy serving one pod (waypoint replica, sidecar): terminates with the
 * pod's own identity; a refused connection is logged (and passed to `refused`).
 */
export function podHboneServer(opts: PodProxyOptions, onRequest: (req: HboneRequest) => void, refused?: (e: HboneRefusal) => void): HboneServer {
  return new HboneServer({
    certificate: () => currentCertificate(opts.certificates, opts.identity),
    trustDomain: opts.trustDomain,
    logger: opts.logger,
    onRequest,
    // The server logs refusals itself, rate-limited per source.
    onRefused: (e) => refused?.(e),
  });
}

export interface WaypointOptions extends PodProxyOptions {
  waypoint: WaypointIdentity;
  /** The cluster's DNS resolver(s), for ServiceEntry hosts with resolution DNS (egress). */
  dnsUpstreams?: UpstreamAddress[];
}

export class Waypoint {
  private state = MeshView.empty();
  private config: WaypointConfig;
  private readonly pool: HbonePool;
  private readonly upstreams: Upstreams;
  private readonly proxy: HttpProxy;
  private readonly tcpTelemetry: TcpTelemetry;
  private readonly l4: L4Sink;
  /** Round robin over a service's endpoints for TCP (one sequence per service). */
  private readonly pick = roundRobin();
  private hbone: HboneServer | undefined;
  private server: net.Server | undefined;
  private seq = 0;
  private readonly external: (t: ExternalTarget, signal?: AbortSignal) => Promise<Duplex>;
  private readonly warnings = new WarningLatch();
  private readonly serving: HttpServing;
  private readonly clusters: UpstreamClusters;
  private readonly m;

  constructor(private readonly opts: WaypointOptions) {
    this.config = this.compile(MeshView.empty(), [], '0');
    this.serving = new HttpServing(opts.clock, opts.logger, opts.metrics);
    this.pool = new HbonePool({
      logger: opts.logger, clock: opts.clock,
      createSocket: (dst) => opts.network.connect(dst, { allowHalfOpen: false }),
    });
    const certificate = () => currentCertificate(opts.certificates, opts.identity);
    const resolver = opts.dnsUpstreams?.length ? new HostResolver({
      clock: opts.clock,
      forwarder: new DnsForwarder({
        upstreams: opts.dnsUpstreams, clock: opts.clock,
        transport: { udp: () => opts.network.bindUdp('0.0.0.0', 0), tcp: (dst) => opts.network.connect(dst, { allowHalfOpen: false }) },
      }),
    }) : undefined;
    this.external = (t, signal) => connectExternal(t, { network: opts.network, resolver, timeoutMs: opts.connectTimeoutMs ?? 5_000, clock: opts.clock }, signal);
    this.upstreams = new Upstreams({
      dial: hboneDialer({ pool: this.pool, sourceIdentity: opts.identity, certificate, connectTimeoutMs: opts.connectTimeoutMs ?? 5_000 }), clock: opts.clock,
      external: this.external,
    });
    const picker = new EndpointPicker({ now: () => opts.clock.now() });
    this.clusters = new UpstreamClusters({ clock: opts.clock, random: Math.random });
    this.proxy = new HttpProxy({
      waypoint: opts.waypoint,
      config: () => this.config, state: () => this.state,
      upstreams: this.upstreams, picker,
      telemetry: new RequestTelemetry({ registry: opts.metrics, logger: opts.logger.child({ scope: 'access' }) }),
      logger: opts.logger, clock: opts.clock, random: Math.random,
      nextId: () => `${opts.waypoint.name}-${++this.seq}`,
      replayBudget: new ReplayBudget(),
      clusters: this.clusters,
    });
    this.tcpTelemetry = new TcpTelemetry({ registry: opts.metrics, logger: opts.logger.child({ scope: 'access' }), clock: opts.clock });
    this.l4 = { telemetry: this.tcpTelemetry, now: () => opts.clock.now() };
    this.m = {
      tunnels: opts.metrics.counter({ name: 'ambit_waypoint_tunnels_total', help: 'HBONE tunnels accepted by the waypoint, by detected protocol.', labelNames: ['protocol'] }),
      refused: opts.metrics.counter({ name: 'ambit_waypoint_tunnels_refused_total', help: 'HBONE tunnels the waypoint refused, by reason.', labelNames: ['reason'] }),
      warnings: opts.metrics.gauge({ name: 'ambit_waypoint_config_warnings', help: 'Warnings from compiling the current L7 config.' }),
    };
  }

  /** For /config_dump: the upstream clusters under DestinationRule policies and their counts. */
  clusterState(): Record<string, unknown>[] {
    return this.clusters.describe();
  }

  current(): { state: MeshView; config: WaypointConfig } {
    return { state: this.state, config: this.config };
  }

  /**
   * For /config_dump: the access-log decision for traffic to the waypoint itself, and for each
   * service whose decision differs from it (Telemetry accessLogging).
   */
  accessLogging(): { waypoint: ReturnType<typeof describeAccessLog>; services: Record<string, ReturnType<typeof describeAccessLog>> } {
    const cfg = this.config;
    const own = describeAccessLog(cfg.forRequest({ waypoint: this.opts.waypoint }).accessLog);
    const services: Record<string, ReturnType<typeof describeAccessLog>> = {};
    for (const s of this.state.services.values()) {
      const d = describeAccessLog(cfg.forRequest({ waypoint: this.opts.waypoint, service: { namespace: s.namespace, name: s.name } }).accessLog);
      if (JSON.stringify(d) !== JSON.stringify(own)) services[s.hostname] = d;
    }
    return { waypoint: own, services };
  }

  /** A new view of the mesh and of the L7 config: applies to new requests. */
  setConfig(state: MeshView, objects: ConfigObject[], version: string): void {
    this.state = state;
    this.config = this.compile(state, objects, version);
    this.upstreams.prune((uid) => state.workloads.has(uid));
    this.m.warnings.labels({}).set(this.config.warnings.length);
    for (const w of this.warnings.fresh(this.config.warnings)) this.opts.logger.warn('L7 config warning', { version, warning: w });
    this.opts.logger.info('config applied', { version, services: state.services.size, routes: objects.filter((o) => o.kind === 'HTTPRoute' || o.kind === 'VirtualService').length, policies: this.config.policies.length, telemetries: objects.filter((o) => o.kind === 'Telemetry').length });
  }

  async start(): Promise<void> {
    await this.opts.certificates.get(this.opts.identity);
    this.hbone = podHboneServer(this.opts, (req) => this.onTunnel(req), (e) => this.m.refused.labels({ reason: e.kind }).inc());
    this.server = await this.opts.network.listen(this.opts.bindAddress, WAYPOINT_HBONE_PORT);
    guardListener(this.server, this.opts.logger, this.opts.clock, `waypoint:${WAYPOINT_HBONE_PORT}`);
    this.hbone.attach(this.server);
    this.opts.logger.info('waypoint listening', { address: `${this.opts.podIp}:${WAYPOINT_HBONE_PORT}`, identity: this.opts.identity });
  }

  private compile(state: MeshView, objects: ConfigObject[], version: string): WaypointConfig {
    return compileWaypointConfig({ version, state, objects, rootNamespace: this.opts.rootNamespace, trustDomain: this.opts.trustDomain, readFile: this.opts.readFile, waypointNamespace: this.opts.waypoint.namespace });
  }

  /** A tunnel refused before it is accepted: counted by its typed kind, answered with `status`. */
  private refuseTunnel(req: HboneRequest, refusal: Refusal, status: number, message: string): void {
    this.m.refused.labels({ reason: refusal }).inc();
    req.reject(status, message);
  }

  private onTunnel(req: HboneRequest): void {
    const service = this.state.serviceByVip(req.target.ip);
    const workload = service ? undefined : this.state.workloadByIp(req.target.ip);
    if (!service && !workload) {
      this.refuseTunnel(req, 'unknown_destination', 503, `no service or workload has address ${req.target.ip}`);
      return;
    }
    // Only what is bound to this waypoint: anything else would have the waypoint lend its
    // identity to a client asking for a destination the client cannot reach itself.
    const bound = (service ?? workload)!.waypoint;
    const boundService = bound ? waypointService(this.state, bound) : undefined;
    if (boundService?.namespace !== this.opts.waypoint.namespace || boundService.name !== this.opts.waypoint.name) {
      this.refuseTunnel(req, 'not_bound', 400, `${service ? `service ${service.hostname}` : `workload ${workload!.namespace}/${workload!.name}`} does not use waypoint ${this.opts.waypoint.namespace}/${this.opts.waypoint.name}`);
      return;
    }
    const ctx: TunnelContext = { peerIdentity: req.peerIdentity, peerAddress: req.peerAddress, target: req.target, service, workload };
    const stream = req.accept();
    stream.on('error', () => {});
    void sniff(stream, SNIFF_TIMEOUT_MS, this.opts.clock).then((kind) => {
      this.m.tunnels.labels({ protocol: kind === 'h2' ? 'http2' : kind === 'http1' ? 'http1' : 'tcp' }).inc();
      if (kind === 'http1' || kind === 'h2') {
        serveHttp(stream, kind, this.proxy, ctx, this.serving);
      } else {
        this.tcp(stream, ctx);
      }
    }, (e: unknown) => {
      this.opts.logger.debug('tunnel closed while sniffing', { error: describeError(e).message });
      stream.destroy();
    });
  }

  /** Not HTTP: L4 policy, then a relay to an endpoint of the destination; one TCP record. */
  private tcp(stream: Duplex, ctx: TunnelContext): void {
    const record = newConnectionRecord({
      id: `${this.opts.waypoint.name}-${++this.seq}`, reporter: 'waypoint', startMs: this.opts.clock.now(),
      source: { ip: normalizeIp(ctx.peerAddress.ip), port: ctx.peerAddress.port, workload: peerInfo(this.state.workloadByIp(ctx.peerAddress.ip)), identity: ctx.peerIdentity },
      destination: { ip: ctx.target.ip, port: ctx.target.port, workload: peerInfo(ctx.workload) },
      service: serviceInfo(ctx.service), via: 'hbone', securityPolicy: 'mutual_tls',
    });
    this.tcpTelemetry.opened(record);
    const down = streamDownstream(stream);
    const egress = ctx.service ? this.config.egress.entryOf(ctx.service) : undefined;
    const { policies } = this.config.forRequest({ waypoint: this.opts.waypoint, service: ctx.service ? { namespace: ctx.service.namespace, name: ctx.service.name, ...(egress ? { kind: 'ServiceEntry' as const } : {}) } : undefined });
    const verdict = authorizeConnection(policies, { sourceIp: ctx.peerAddress.ip, peerIdentity: ctx.peerIdentity, destination: ctx.target }, 'waypoint');
    if (verdict.decision === 'DENY') {
      denyL4(this.l4, record, down, verdict);
      return;
    }
    if (egress && ctx.service) {
      this.tcpEgress(down, ctx, egress, record);
      return;
    }
    // A TCPRoute attached to the Service port sends the connection to one of its backends.
    const routed = ctx.service ? tcpRouteBackend(this.config, this.state, ctx.service, ctx.target.port) : undefined;
    if (routed?.kind === 'none') {
      refuseL4(this.l4, record, down, 'no_route', `${routed.route}: no usable backend for ${ctx.service!.hostname}:${ctx.target.port}`);
      return;
    }
    const svc = routed?.kind === 'backend' ? routed.service : ctx.service;
    const svcPort = routed?.kind === 'backend' ? routed.port : ctx.target.port;
    if (routed?.kind === 'backend') record.service = serviceInfo(routed.service);
    const w = svc ? this.state.pickEndpoint(svc, this.pick) : ctx.workload;
    if (!w) {
      refuseL4(this.l4, record, down, 'no_endpoint', `no healthy endpoint for ${svc?.hostname ?? ctx.target.ip}`);
      return;
    }
    const port = targetPortOf(w, svc, svcPort);
    const identity = identityOf(w);
    const ip = w.addresses[0]!;
    record.destination = { ip, port, workload: peerInfo(w), identity };
    forwardL4(this.l4, { record, down, upstreamName: `${ip}:${port}`, dial: () => this.upstreams.tunnel({ uid: w.uid, ip, port, identity }) });
  }

  /** TCP to a ServiceEntry host: to one of its endpoints (or the original destination), outside the mesh. */
  private tcpEgress(down: Downstream, ctx: TunnelContext, egress: import('./egress-config.js').EgressEntry, record: ConnectionRecord): void {
    const svc = ctx.service!;
    const endpoints = this.state.healthyEndpointsOf(svc);
    const w = endpoints.length ? endpoints[this.pick(`svc/${svc.namespace}/${svc.hostname}`, endpoints.length)] : undefined;
    const port = w ? targetPortOf(w, svc, ctx.target.port) : ctx.target.port;
    const target: ExternalTarget | undefined = w
      ? { ...(w.addresses[0] ? { ip: w.addresses[0] } : { hostname: w.hostname }), port, tls: egress.tls(ctx.target.port), host: egress.host }
      : egress.resolution === 'NONE' ? { ip: ctx.target.ip, port: ctx.target.port, tls: egress.tls(ctx.target.port), host: egress.host } : undefined;
    if (!target) {
      refuseL4(this.l4, record, down, 'no_endpoint', `no endpoint for ${svc.hostname}`);
      return;
    }
    record.destination = { ip: target.ip ?? target.hostname ?? '', port: target.port, workload: peerInfo(w) };
    forwardL4(this.l4, { record, down, upstreamName: svc.hostname, dial: () => this.external(target) });
  }

  /**
   * Keeps accepting for `lingerMs` (while the ztunnels learn this replica is gone), then stops
   * accepting, lets open tunnels finish until the deadline, and resets what is left.
   */
  async close(deadlineMs = 5_000, lingerMs = 0): Promise<void> {
    if (lingerMs > 0) await delay(this.opts.clock, lingerMs);
    this.server?.close();
    await this.hbone?.close(deadlineMs);
    this.upstreams.close();
    await this.pool.close(1_000);
    this.opts.certificates.close();
  }
}
