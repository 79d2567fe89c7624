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
import type { Clock } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { HbonePool, HboneServer, relay, type HboneRefusal, type HboneRequest } from '../hbone/index.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import { RequestTelemetry } from '../telemetry/request-record.js';
import { denyConnection, failConnection, newConnectionRecord, TcpTelemetry } from '../telemetry/connection-record.js';
import { peerInfo, serviceInfo } from '../ztunnel/peer-info.js';
import type { ConfigObject } from '../xds/config-resource.js';
import { currentCertificate, type CertificateSource } from '../ztunnel/certificates.js';
import { guardListener, type PodNetwork } from '../ztunnel/pod-network.js';
import { identityOf, normalizeIp, ZtunnelState } from '../ztunnel/state.js';
import { EndpointPicker } from './endpoint-picker.js';
import { HttpProxy, type TunnelContext } from './http-proxy.js';
import { waypointService } from '../ztunnel/route.js';
import { sniffProtocol, type SniffResult } from './sniff.js';
import { hboneDialer, Upstreams } from './upstream.js';
import { HttpServing, serveHttp } from './serve-http.js';
import { ReplayBudget } from './replay-budget.js';
import { compileWaypointConfig, WarningLatch, type WaypointConfig, type WaypointIdentity } from './waypoint-config.js';
import { authorizeRequest } from './l7-authz.js';
import { describeAccessLog } from './access-log-config.js';
import { stripSpiffe } from '../rbac/index.js';
import { DnsForwarder, type UpstreamAddress } from '../dns/forwarder.js';
import { HostResolver } from '../dns/host-resolver.js';
import { connectExternal, type ExternalTarget } from './egress-connect.js';
import { UpstreamClusters } from './traffic/clusters.js';
import { tcpRouteBackend } from './tcp-route-backend.js';

export const WAYPOINT_HBONE_PORT = 15008;
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
  private state = ZtunnelState.empty();
  private config: WaypointConfig;
  private readonly pool: HbonePool;
  private readonly upstreams: Upstreams;
  private readonly proxy: HttpProxy;
  private readonly tcpTelemetry: TcpTelemetry;
  private hbone: HboneServer | undefined;
  private server: net.Server | undefined;
  private seq = 0;
  private readonly external: (t: ExternalTarget, signal?: AbortSignal) => Promise<Duplex>;
  private readonly warnings = new WarningLatch();
  private readonly serving: HttpServing;
  private readonly clusters: UpstreamClusters;
  private readonly m;

  constructor(private readonly opts: WaypointOptions) {
    this.config = this.compile(ZtunnelState.empty(), [], '0');
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
    this.external = (t, signal) => connectExternal(t, { network: opts.network, resolver, timeoutMs: opts.connectTimeoutMs ?? 5_000 }, signal);
    this.upstreams = new Upstreams({
      dial: hboneDialer({ pool: this.pool, sourceIdentity: opts.identity, certificate, connectTimeoutMs: opts.connectTimeoutMs ?? 5_000 }), now: () => opts.clock.now(),
      external: this.external,
    });
    const picker = new EndpointPicker({ now: () => opts.clock.now() });
    this.clusters = new UpstreamClusters({ clock: opts.clock, random: Math.random });
    this.proxy = new HttpProxy({
      waypoint: opts.waypoint,
      config: () => this.config, state: () => this.state,
      upstreams: this.upstreams, picker,
      telemetry: new RequestTelemetry({ registry: opts.metrics, logger: opts.logger.child({ scope: 'access' }) }),
      logger: opts.logger, now: () => opts.clock.now(), random: Math.random,
      nextId: () => `${opts.waypoint.name}-${++this.seq}`,
      replayBudget: new ReplayBudget(),
      clusters: this.clusters,
    });
    this.tcpTelemetry = new TcpTelemetry({ registry: opts.metrics, logger: opts.logger.child({ scope: 'access' }), clock: opts.clock });
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

  current(): { state: ZtunnelState; config: WaypointConfig } {
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
  setConfig(state: ZtunnelState, objects: ConfigObject[], version: string): void {
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

  private compile(state: ZtunnelState, objects: ConfigObject[], version: string): WaypointConfig {
    return compileWaypointConfig({ version, state, objects, rootNamespace: this.opts.rootNamespace, trustDomain: this.opts.trustDomain, readFile: this.opts.readFile, waypointNamespace: this.opts.waypoint.namespace });
  }

  private onTunnel(req: HboneRequest): void {
    const service = this.state.serviceByVip(req.target.ip);
    const workload = service ? undefined : this.state.workloadByIp(req.target.ip);
    if (!service && !workload) {
      this.m.refused.labels({ reason: 'unknown_destination' }).inc();
      req.reject(503, `no service or workload has address ${req.target.ip}`);
      return;
    }
    // Only what is bound to this waypoint: anything else would have the waypoint lend its
    // identity to a client asking for a destination the client cannot reach itself.
    const bound = (service ?? workload)!.waypoint;
    const boundService = bound ? waypointService(this.state, bound) : undefined;
    if (boundService?.namespace !== this.opts.waypoint.namespace || boundService.name !== this.opts.waypoint.name) {
      this.m.refused.labels({ reason: 'not_bound' }).inc();
      req.reject(400, `${service ? `service ${service.hostname}` : `workload ${workload!.namespace}/${workload!.name}`} does not use waypoint ${this.opts.waypoint.namespace}/${this.opts.waypoint.name}`);
      return;
    }
    const ctx: TunnelContext = { peerIdentity: req.peerIdentity, peerAddress: req.peerAddress, target: req.target, service, workload };
    const stream = req.accept();
    stream.on('error', () => {});
    void sniff(stream, SNIFF_TIMEOUT_MS).then((kind) => {
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
    const now = (): number => this.opts.clock.now();
    const record = newConnectionRecord({
      id: `${this.opts.waypoint.name}-${++this.seq}`, reporter: 'waypoint', startMs: now(),
      source: { ip: normalizeIp(ctx.peerAddress.ip), port: ctx.peerAddress.port, workload: peerInfo(this.state.workloadByIp(ctx.peerAddress.ip)), identity: ctx.peerIdentity },
      destination: { ip: ctx.target.ip, port: ctx.target.port, workload: peerInfo(ctx.workload) },
      service: serviceInfo(ctx.service), via: 'hbone', securityPolicy: 'mutual_tls',
    });
    this.tcpTelemetry.opened(record);
    const fail = (): void => {
      stream.destroy();
      record.endMs = now();
      this.tcpTelemetry.closed(record);
    };
    const egress = ctx.service ? this.config.egress.entryOf(ctx.service) : undefined;
    const { policies } = this.config.forRequest({ waypoint: this.opts.waypoint, service: ctx.service ? { namespace: ctx.service.namespace, name: ctx.service.name, ...(egress ? { kind: 'ServiceEntry' as const } : {}) } : undefined });
    const verdict = authorizeRequest(policies, { sourceIp: ctx.peerAddress.ip, sourcePrincipal: stripSpiffe(ctx.peerIdentity), destinationIp: ctx.target.ip, destinationPort: ctx.target.port }, { kind: 'anonymous', tokenPresent: false });
    if (!verdict.allow) {
      denyConnection(record, { policy: verdict.decision.policy, rule: verdict.decision.ruleIndex, message: verdict.decision.reason });
      fail();
      return;
    }
    if (egress && ctx.service) {
      this.tcpEgress(stream, ctx, egress, record, fail);
      return;
    }
    // A TCPRoute attached to the Service port sends the connection to one of its backends.
    const routed = ctx.service ? tcpRouteBackend(this.config, this.state, ctx.service, ctx.target.port) : undefined;
    if (routed?.kind === 'none') {
      failConnection(record, { code: 'NO_ROUTE', message: `${routed.route}: no usable backend for ${ctx.service!.hostname}:${ctx.target.port}` });
      fail();
      return;
    }
    const svc = routed?.kind === 'backend' ? routed.service : ctx.service;
    const svcPort = routed?.kind === 'backend' ? routed.port : ctx.target.port;
    if (routed?.kind === 'backend') record.service = serviceInfo(routed.service);
    const endpoints = svc ? this.state.endpointsOf(svc).filter((w) => w.status !== 'UNHEALTHY') : ctx.workload ? [ctx.workload] : [];
    const w = endpoints[this.seq % Math.max(1, endpoints.length)];
    if (!w) {
      failConnection(record, { code: 'NO_ENDPOINT', message: `no healthy endpoint for ${svc?.hostname ?? ctx.target.ip}` });
      fail();
      return;
    }
    const port = svc ? (w.services[`${svc.namespace}/${svc.hostname}`]?.ports?.find((p) => p.servicePort === svcPort)?.targetPort || svc.ports.find((p) => p.servicePort === svcPort)?.targetPort || svcPort) : ctx.target.port;
    const identity = identityOf(w);
    record.destination = { ip: w.addresses[0]!, port, workload: peerInfo(w), identity };
    void this.upstreams.tunnel({ uid: w.uid, ip: w.addresses[0]!, port, identity }).then((up) => {
      void relay(stream, up).done.then((r) => {
        // Counted from the downstream (the client's side), as a destination reporter does.
        record.bytesSent = r.bytesInbound;
        record.bytesReceived = r.bytesOutbound;
        if (r.closedBy === 'error' && r.error) record.reason = { kind: 'error', code: describeError(r.error).code, message: r.error.message };
        record.endMs = now();
        this.tcpTelemetry.closed(record);
      });
      stream.resume(); // paused by the sniffer
    }, (e: unknown) => {
      failConnection(record, { code: describeError(e).code, message: `tunnel to ${w.addresses[0]}:${port}: ${describeError(e).message}` });
      fail();
    });
  }

  /** TCP to a ServiceEntry host: to one of its endpoints (or the original destination), outside the mesh. */
  private tcpEgress(stream: Duplex, ctx: TunnelContext, egress: import('./egress-config.js').EgressEntry, record: ReturnType<typeof newConnectionRecord>, fail: () => void): void {
    const svc = ctx.service!;
    const endpoints = this.state.endpointsOf(svc).filter((w) => w.status !== 'UNHEALTHY');
    const w = endpoints[this.seq % Math.max(1, endpoints.length)];
    const port = w?.services[`${svc.namespace}/${svc.hostname}`]?.ports.find((p) => p.servicePort === ctx.target.port)?.targetPort
      || svc.ports.find((p) => p.servicePort === ctx.target.port)?.targetPort || ctx.target.port;
    const target: ExternalTarget | undefined = w
      ? { ...(w.addresses[0] ? { ip: w.addresses[0] } : { hostname: w.hostname }), port, tls: egress.tls(ctx.target.port), host: egress.host }
      : egress.resolution === 'NONE' ? { ip: ctx.target.ip, port: ctx.target.port, tls: egress.tls(ctx.target.port), host: egress.host } : undefined;
    if (!target) {
      failConnection(record, { code: 'NO_ENDPOINT', message: `no endpoint for ${svc.hostname}` });
      fail();
      return;
    }
    record.destination = { ip: target.ip ?? target.hostname ?? '', port: target.port, workload: peerInfo(w) };
    void this.external(target).then((up) => {
      void relay(stream, up).done.then((r) => {
        record.bytesSent = r.bytesInbound;
        record.bytesReceived = r.bytesOutbound;
        if (r.closedBy === 'error' && r.error) record.reason = { kind: 'error', code: describeError(r.error).code, message: r.error.message };
        record.endMs = this.opts.clock.now();
        this.tcpTelemetry.closed(record);
      });
      stream.resume();
    }, (e: unknown) => {
      failConnection(record, { code: describeError(e).code, message: `egress to ${svc.hostname}: ${describeError(e).message}` });
      fail();
    });
  }

  /**
   * Keeps accepting for `lingerMs` (while the ztunnels learn this replica is gone), then stops
   * accepting, lets open tunnels finish until the deadline, and resets what is left.
   */
  async close(deadlineMs = 5_000, lingerMs = 0): Promise<void> {
    if (lingerMs > 0) await new Promise((r) => setTimeout(r, lingerMs));
    this.server?.close();
    await this.hbone?.close(deadlineMs);
    this.upstreams.close();
    await this.pool.close(1_000);
    this.opts.certificates.close();
  }
}

/** Reads until the protocol is known, then puts the bytes back (the sidecar uses it too). */
export function sniff(stream: Duplex, timeoutMs: number): Promise<Exclude<SniffResult, 'need-more'>> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const done = (r: Exclude<SniffResult, 'need-more'>): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.pause();
      if (head.length) stream.unshift(head);
      resolve(r);
    };
    const onData = (c: Buffer): void => {
      head = Buffer.concat([head, c]);
      const r = sniffProtocol(head);
      if (r !== 'need-more') done(r);
    };
    const onEnd = (): void => {
      if (head.length) done('tcp');
      else { clearTimeout(timer); reject(new Error('the tunnel ended before any byte')); }
    };
    const timer = setTimeout(() => done('tcp'), timeoutMs);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
  });
}
