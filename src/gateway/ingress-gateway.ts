// One ingress gateway replica (a Gateway of class `istio`): listens on its listeners' ports in
// its pod's network namespace — HTTP (HTTP/1.1 or h2c, sniffed), HTTPS (TLS terminated with the
// listener's certificate chosen by SNI, ALPN h2 or http/1.1), TCP (TCPRoute) — and forwards into
// the mesh over HBONE with its own identity, so the destination's ztunnel and policies see the
// gateway's principal. The L7 pipeline is the waypoint's HttpProxy (normalization, policies
// bound to the Gateway, routing, DestinationRule policies, retries, telemetry with
// reporter="source"); a Service labelled istio.io/ingress-use-waypoint=true is reached through
// its waypoint (HBONE to a replica, :authority the service VIP and port).
//
// Lifecycle: start() -> setConfig()* (opens and closes listener ports to match the Gateway) ->
// close(deadlineMs): stop accepting, let requests finish, reset what is left.
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { delay } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import { HbonePool } from '../hbone/index.js';
import { RequestTelemetry } from '../telemetry/request-record.js';
import { newConnectionRecord, TcpTelemetry } from '../telemetry/connection-record.js';
import { authorizeConnection, denyL4, forwardL4, refuseL4, streamDownstream, type L4Sink } from '../dataplane/l4-forward.js';
import { peerInfo, serviceInfo } from '../dataplane/peer-info.js';
import type { ConfigObject } from '../xds/config-resource.js';
import { currentCertificate } from '../dataplane/certificates.js';
import { guardListener } from '../dataplane/pod-network.js';
import { identityOf, normalizeIp, roundRobin, targetPortOf, MeshView } from '../dataplane/mesh-view.js';
import { waypointService } from '../dataplane/route.js';
import type { Service, Workload } from '../xds/workload-api.js';
import { EndpointPicker } from '../waypoint/endpoint-picker.js';
import { HttpProxy, type TunnelContext } from '../waypoint/http-proxy.js';
import { hboneDialer, Upstreams } from '../waypoint/upstream.js';
import { HttpServing, serveHttp } from '../waypoint/serve-http.js';
import { ReplayBudget } from '../waypoint/replay-budget.js';
import type { PodProxyOptions } from '../waypoint/waypoint.js';
import { sniff } from '../waypoint/sniff.js';
import { WarningLatch } from '../waypoint/waypoint-config.js';
import { UpstreamClusters } from '../waypoint/traffic/clusters.js';
import { resolveTcpRoute } from '../waypoint/tcp-route-backend.js';
import { compileIngressConfig, type GatewayRef, type IngressConfig } from './ingress-config.js';
import { serviceHostname } from '../core/mesh-constants.js';

const SNIFF_TIMEOUT_MS = 300;
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface IngressGatewayOptions extends PodProxyOptions {
  gateway: GatewayRef;
}

export class IngressGateway {
  private state = MeshView.empty();
  private config: IngressConfig;
  private readonly pool: HbonePool;
  private readonly upstreams: Upstreams;
  private readonly proxy: HttpProxy;
  private readonly tcpTelemetry: TcpTelemetry;
  private readonly l4: L4Sink;
  /** Round robin over a backend's endpoints for TCP (one sequence per service). */
  private readonly pick = roundRobin();
  private readonly serving: HttpServing;
  private readonly clusters: UpstreamClusters;
  private readonly servers = new Map<number, { server: net.Server; protocol: string; sockets: Set<Duplex> }>();
  private readonly warnings = new WarningLatch();
  private readonly tlsServers = new Map<number, tls.Server>();
  private readonly tlsDefaults = new Map<number, { cert: string[]; key: string[] } | undefined>();
  private seq = 0;
  private started = false;
  private closing = false;
  private readonly m;

  constructor(private readonly opts: IngressGatewayOptions) {
    this.config = this.compile(MeshView.empty(), [], '0');
    this.serving = new HttpServing(opts.clock, opts.logger, opts.metrics);
    this.pool = new HbonePool({ logger: opts.logger, clock: opts.clock, createSocket: (dst) => opts.network.connect(dst, { allowHalfOpen: false }) });
    const certificate = () => currentCertificate(opts.certificates, opts.identity);
    this.upstreams = new Upstreams({
      dial: hboneDialer({ pool: this.pool, sourceIdentity: opts.identity, certificate, sourceIp: opts.podIp, connectTimeoutMs: opts.connectTimeoutMs ?? 5_000 }),
      clock: opts.clock,
    });
    this.clusters = new UpstreamClusters({ clock: opts.clock, random: Math.random });
    this.proxy = new IngressHttpProxy({
      waypoint: opts.gateway,
      config: () => this.config.l7, state: () => this.state,
      upstreams: this.upstreams, picker: new EndpointPicker({ now: () => opts.clock.now() }),
      telemetry: new RequestTelemetry({ registry: opts.metrics, logger: opts.logger.child({ scope: 'access' }) }),
      logger: opts.logger, clock: opts.clock, random: Math.random,
      nextId: () => `${opts.gateway.name}-${++this.seq}`,
      replayBudget: new ReplayBudget(),
      reporter: 'source',
      clusters: this.clusters,
      // Policies bound to the Gateway (targetRefs kind Gateway), as Istio's ingress applies them.
      bind: (cfg) => cfg.forRequest({ waypoint: opts.gateway }),
      routeTarget: (ctx, authority) => {
        const vh = this.config.vhostFor(ctx.target.port, hostOf(authority));
        return vh ? { hostname: vh, port: ctx.target.port } : undefined;
      },
      viaWaypoint: (svc) => this.viaWaypoint(svc),
    }, (port) => (this.config.ports.get(port)?.protocol === 'HTTPS' ? 'https' : 'http'));
    this.tcpTelemetry = new TcpTelemetry({ registry: opts.metrics, logger: opts.logger.child({ scope: 'access' }), clock: opts.clock });
    this.l4 = { telemetry: this.tcpTelemetry, now: () => opts.clock.now() };
    this.m = {
      connections: opts.metrics.counter({ name: 'ambit_gateway_connections_total', help: 'Downstream connections accepted by the ingress gateway, by listener protocol.', labelNames: ['protocol'] }),
      tls: opts.metrics.counter({ name: 'ambit_gateway_tls_handshake_failures_total', help: 'TLS handshakes the ingress gateway could not complete (no certificate for the name, bad client hello, timeout).' }),
      warnings: opts.metrics.gauge({ name: 'ambit_gateway_config_warnings', help: 'Warnings from compiling the current ingress config.' }),
    };
  }

  current(): { state: MeshView; config: IngressConfig } {
    return { state: this.state, config: this.config };
  }

  clusterState(): Record<string, unknown>[] {
    return this.clusters.describe();
  }

  /** Ports served now (for readiness: serving once every listener port is open). */
  get listening(): number[] {
    return [...this.servers.keys()].sort((a, b) => a - b);
  }

  setConfig(state: MeshView, objects: ConfigObject[], version: string): void {
    this.state = state;
    this.config = this.compile(state, objects, version);
    this.upstreams.prune((uid) => state.workloads.has(uid));
    this.m.warnings.labels({}).set(this.config.warnings.length);
    for (const w of this.warnings.fresh(this.config.warnings)) this.opts.logger.warn('ingress config warning', { version, warning: w });
    this.opts.logger.info('config applied', { version, ports: [...this.config.ports.keys()], vhosts: [...this.config.ports.values()].flatMap((p) => p.vhosts.map((v) => `${p.port}/${v}`)) });
    if (this.started) void this.syncListeners();
  }

  async start(): Promise<void> {
    await this.opts.certificates.get(this.opts.identity);
    this.started = true;
    await this.syncListeners();
    this.opts.logger.info('ingress gateway started', { address: this.opts.podIp, identity: this.opts.identity });
  }

  /** Opens the ports of the Gateway's listeners and closes the ones it no longer has. */
  private async syncListeners(): Promise<void> {
    if (this.closing) return;
    const want = this.config.ports;
    for (const [port, s] of [...this.servers]) {
      if (want.get(port)?.protocol === s.protocol) continue;
      s.server.close();
      this.servers.delete(port);
      this.opts.logger.info('listener closed', { port });
    }
    for (const g of want.values()) {
      if (this.servers.has(g.port)) continue;
      try {
        const server = await this.opts.network.listen(this.opts.bindAddress, g.port);
        guardListener(server, this.opts.logger, this.opts.clock, `gateway:${g.port}`);
        const entry = { server, protocol: g.protocol, sockets: new Set<Duplex>() };
        this.servers.set(g.port, entry);
        server.on('connection', (socket: net.Socket) => this.onConnection(socket, g.port, g.protocol, entry.sockets));
        this.opts.logger.info('listening', { address: `${this.opts.podIp}:${g.port}`, protocol: g.protocol });
      } catch (e: unknown) {
        this.opts.logger.error('cannot listen', { port: g.port, error: describeError(e).message });
      }
    }
  }

  private onConnection(socket: net.Socket, port: number, protocol: string, sockets: Set<Duplex>): void {
    socket.on('error', () => {});
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    this.m.connections.labels({ protocol }).inc();
    const ctx: TunnelContext = {
      peerIdentity: '', peerAddress: { ip: normalizeIp(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 },
      target: { ip: this.opts.podIp, port }, service: this.ownService(),
    };
    if (protocol === 'TCP') { this.tcp(socket, ctx); return; }
    if (protocol === 'HTTPS') { this.https(socket, ctx); return; }
    void sniff(socket, SNIFF_TIMEOUT_MS, this.opts.clock).then((kind) => {
      if (kind === 'http1' || kind === 'h2') serveHttp(socket, kind, this.proxy, ctx, this.serving);
      else socket.destroy();
    }, () => socket.destroy());
  }

  /**
   * TLS terminated here by a tls.Server per HTTPS port (Node's HTTP/2 wants the TLS socket a
   * tls.Server makes): the certificate of the listener whose hostname matches the SNI name; a
   * client without SNI gets the catch-all (or first) listener's.
   */
  private https(socket: net.Socket, ctx: TunnelContext): void {
    const port = ctx.target.port;
    let server = this.tlsServers.get(port);
    if (!server) {
      server = tls.createServer({
        ALPNProtocols: ['h2', 'http/1.1'],
        handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
        SNICallback: (name, cb) => {
          const c = this.config.secureContext(port, name);
          if (c) cb(null, c);
          else cb(new Error(`no certificate for ${name}`));
        },
      });
      server.on('tlsClientError', (_e, s) => { this.m.tls.labels({}).inc(); s.destroy(); });
      server.on('secureConnection', (t: tls.TLSSocket) => {
        t.on('error', () => {});
        const c: TunnelContext = { peerIdentity: '', peerAddress: { ip: normalizeIp(t.remoteAddress ?? ''), port: t.remotePort ?? 0 }, target: { ip: this.opts.podIp, port }, service: this.ownService() };
        serveHttp(t, t.alpnProtocol === 'h2' ? 'h2' : 'http1', this.proxy, c, this.serving);
      });
      this.tlsServers.set(port, server);
    }
    const fallback = this.config.defaultCertificate(port);
    if (fallback !== this.tlsDefaults.get(port)) {
      this.tlsDefaults.set(port, fallback);
      if (fallback) server.setSecureContext({ cert: fallback.cert, key: fallback.key, ALPNProtocols: ['h2', 'http/1.1'] } as tls.SecureContextOptions);
    }
    server.emit('connection', socket);
  }

  /** A TCP listener: the TCPRoute's backend by weight, HBONE to one of its endpoints, one TCP record. */
  private tcp(socket: net.Socket, ctx: TunnelContext): void {
    const record = newConnectionRecord({
      id: `${this.opts.gateway.name}-${++this.seq}`, reporter: 'source', startMs: this.opts.clock.now(),
      source: { ip: normalizeIp(ctx.peerAddress.ip), port: ctx.peerAddress.port, workload: peerInfo(undefined) },
      destination: { ip: ctx.target.ip, port: ctx.target.port, workload: peerInfo(undefined) },
      service: serviceInfo(ctx.service), via: 'hbone', securityPolicy: 'mutual_tls',
    });
    this.tcpTelemetry.opened(record);
    const down = streamDownstream(socket);
    const cfg = this.config;
    const verdict = authorizeConnection(cfg.l7.forRequest({ waypoint: this.opts.gateway }).policies, { sourceIp: ctx.peerAddress.ip, destination: ctx.target }, 'waypoint');
    if (verdict.decision === 'DENY') {
      denyL4(this.l4, record, down, verdict);
      return;
    }
    const entry = cfg.tcpRoutes.get(`tcp:${ctx.target.port}`);
    const routed = entry ? resolveTcpRoute(entry, this.state, ctx.target.port) : undefined;
    if (!routed || routed.kind === 'none') {
      refuseL4(this.l4, record, down, 'no_route', `no TCPRoute with a usable backend on port ${ctx.target.port}`);
      return;
    }
    record.service = serviceInfo(routed.service);
    const w = this.state.pickEndpoint(routed.service, this.pick);
    if (!w) {
      refuseL4(this.l4, record, down, 'no_endpoint', `no healthy endpoint for ${routed.service.hostname}`);
      return;
    }
    const port = targetPortOf(w, routed.service, routed.port);
    const identity = identityOf(w);
    const ip = w.addresses[0]!;
    record.destination = { ip, port, workload: peerInfo(w), identity };
    socket.pause();
    forwardL4(this.l4, { record, down, upstreamName: `${ip}:${port}`, dial: () => this.upstreams.tunnel({ uid: w.uid, ip, port, identity }) });
  }

  /** Istio: istio.io/ingress-use-waypoint=true on a Service with a waypoint sends ingress through it. */
  private viaWaypoint(svc: Service): { workloads: Workload[]; identity: string } | undefined {
    if (!svc.waypoint || !this.config.l7.ingressUseWaypoint.has(svc.hostname)) return undefined;
    const wsvc = waypointService(this.state, svc.waypoint);
    const replicas = wsvc ? this.state.endpointsOf(wsvc) : [];
    if (!replicas[0]) return { workloads: [], identity: '' };
    return { workloads: replicas, identity: identityOf(replicas[0]) };
  }

  /** The gateway's own Service (`<name>-istio`), or a stand-in before it is known. */
  private ownService(): Service {
    const { namespace, name } = this.opts.gateway;
    const host = serviceHostname(`${name}-istio`, namespace);
    return this.state.serviceByKey(`${namespace}/${host}`) ?? { name: `${name}-istio`, namespace, hostname: host, addresses: [], ports: [], subjectAltNames: [] } as unknown as Service;
  }

  private compile(state: MeshView, objects: ConfigObject[], version: string): IngressConfig {
    return compileIngressConfig({ version, gateway: this.opts.gateway, state, objects, rootNamespace: this.opts.rootNamespace, trustDomain: this.opts.trustDomain, readFile: this.opts.readFile });
  }

  /** Stops accepting (after `lingerMs`), lets connections finish until the deadline, then resets the rest. */
  async close(deadlineMs = 5_000, lingerMs = 0): Promise<void> {
    this.closing = true;
    if (lingerMs > 0) await delay(this.opts.clock, lingerMs);
    for (const s of this.servers.values()) s.server.close();
    const until = this.opts.clock.now() + deadlineMs;
    const open = () => [...this.servers.values()].reduce((n, s) => n + s.sockets.size, 0);
    while (open() > 0 && this.opts.clock.now() < until) await delay(this.opts.clock, 50);
    for (const s of this.servers.values()) for (const sock of s.sockets) sock.destroy();
    this.servers.clear();
    this.upstreams.close();
    await this.pool.close(1_000);
    this.opts.certificates.close();
  }
}

/** Adds what Envoy adds at an edge proxy: x-forwarded-for (the client) and x-forwarded-proto. */
class IngressHttpProxy extends HttpProxy {
  constructor(deps: ConstructorParameters<typeof HttpProxy>[0], private readonly scheme: (port: number) => 'http' | 'https') {
    super(deps);
  }

  override handle(req: Parameters<HttpProxy['handle']>[0], res: Parameters<HttpProxy['handle']>[1], ctx: TunnelContext): void {
    const h = req.headers as Record<string, string | string[] | undefined>;
    const xff = h['x-forwarded-for'];
    h['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${ctx.peerAddress.ip}` : ctx.peerAddress.ip;
    h['x-forwarded-proto'] = this.scheme(ctx.target.port);
    super.handle(req, res, ctx);
  }
}

function hostOf(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  const i = authority.lastIndexOf(':');
  return i > 0 ? authority.slice(0, i) : authority;
}
