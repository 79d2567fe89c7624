// One ztunnel: serves the enrolled workloads of one node.
//
// For each local workload that speaks HBONE (and is not a waypoint) it holds the workload's
// certificate and listeners in the workload's network: 15008 (HBONE inbound), and in capture
// mode 15001 (outbound) and 15006 (plaintext inbound). A new state (static file or xDS)
// reconciles those listeners and re-checks live connections against the new policies.
//
// Lifecycle: start() -> setState()* -> close(deadlineMs) (stop accepting, drain, then reset
// what is left) or destroy().
import type net from 'node:net';
import { delay, type Clock } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { DEFAULT_HBONE_LIMITS, HboneAdmission, HbonePool, HboneServer, type HboneLimits } from '../hbone/index.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import { TcpTelemetry } from '../telemetry/connection-record.js';
import type { Workload } from '../xds/workload-api.js';
import { currentCertificate, type CertificateSource } from '../dataplane/certificates.js';
import { ConnectionManager } from '../dataplane/connection-manager.js';
import { SelfCallGuard } from '../dataplane/self-call-guard.js';
import { DataPath } from '../dataplane/data-path.js';
import { guardListener, type Endpoint, type PodNetwork } from '../dataplane/pod-network.js';
import { roundRobin } from '../dataplane/route.js';
import { identityOf, MeshView } from '../dataplane/mesh-view.js';
import { formatSpiffe } from '../identity/spiffe.js';
import { DNS_PROXY_BIND, ZtunnelDnsProxy } from './dns-proxy.js';
import { HBONE_PORT, INBOUND_PLAINTEXT_PORT, OUTBOUND_CAPTURE_PORT } from '../core/mesh-constants.js';

export const OUTBOUND_PORT = OUTBOUND_CAPTURE_PORT;
export { INBOUND_PLAINTEXT_PORT };
export const INBOUND_HBONE_PORT = HBONE_PORT;
/** How long a workload's open tunnels may live on after it stops being served. */
export const UNENROL_DRAIN_MS = 30 * 60_000;

export interface ZtunnelOptions {
  node: string;
  trustDomain: string;
  logger: Logger;
  metrics: MetricsRegistry;
  clock: Clock;
  certificates: CertificateSource;
  /** The network a local workload lives in; undefined when it cannot be served (yet). */
  network(workload: Workload): PodNetwork | undefined;
  /** Capture mode: open 15001/15006 in each workload's network (the local cluster). */
  capture: boolean;
  /** Address to bind in a workload's network: its own IP (host mode) or the wildcard (netns). */
  bindAddress(workload: Workload): string;
  /**
   * When given, only workloads it accepts are served (ZDS: the pods the node agent sent).
   * `networkVersion` then tells when a served workload's network changed: another netns (the
   * pod was re-created: its proxy restarts) or other listeners (they are swapped in place).
   */
  enrolled?(workload: Workload): boolean;
  networkVersion?(workload: Workload): { netns: string; listeners: number } | undefined;
  upstreamConnectTimeoutMs?: number;
  pool?: { idleTimeoutMs?: number; pingIntervalMs?: number; pingTimeoutMs?: number };
  /** The DNS proxy on each served workload's 15053 (capture mode); off when absent. */
  dns?: { upstreams: { ip: string; port: number }[]; clusterDomain?: string };
  /** Bounds on inbound HBONE connections (defaults: DEFAULT_HBONE_LIMITS). */
  hboneLimits?: Partial<HboneLimits>;
}

interface WorkloadProxy {
  workload: Workload;
  identity: string;
  network: PodNetwork;
  hbone: HboneServer;
  servers: net.Server[];
  version: { netns: string; listeners: number } | undefined;
}

export class Ztunnel {
  private state = MeshView.empty();
  private stateVersion: string | undefined;
  private readonly proxies = new Map<string, WorkloadProxy>();
  private readonly pending = new Map<string, Promise<void>>();
  private readonly pool: HbonePool;
  private readonly telemetry: TcpTelemetry;
  private readonly connections: ConnectionManager;
  private readonly dataPath: DataPath;
  private readonly selfCalls: SelfCallGuard;
  /** Shared by the HBONE listeners of every pod: the bounds are per ztunnel, per source. */
  private readonly admission: HboneAdmission;
  private readonly logger: Logger;
  private seq = 0;
  private closing = false;
  private readonly failures = new Map<string, string>();
  /** Captured client connections (15001/15006) being relayed, for the drain on close. */
  private readonly captured = new Set<net.Socket>();
  private retryTimer: import('../core/clock.js').TimerHandle | undefined;
  private readonly dnsProxy: ZtunnelDnsProxy | undefined;

  constructor(private readonly opts: ZtunnelOptions) {
    this.logger = opts.logger;
    this.connections = new ConnectionManager(opts.clock);
    this.telemetry = new TcpTelemetry({ registry: opts.metrics, logger: opts.logger.child({ scope: 'access' }), clock: opts.clock });
    this.pool = new HbonePool({
      logger: opts.logger,
      clock: opts.clock,
      createSocket: (dst, sourceIp) => this.createPoolSocket(dst, sourceIp),
      ...opts.pool,
    });
    this.dataPath = new DataPath({
      state: () => this.state,
      pool: this.pool,
      certificates: opts.certificates,
      telemetry: this.telemetry,
      connections: this.connections,
      pick: roundRobin(),
      logger: opts.logger,
      nextId: () => `${opts.node}-${++this.seq}`,
      clock: opts.clock,
      upstreamConnectTimeoutMs: opts.upstreamConnectTimeoutMs ?? 10_000,
    });
    this.selfCalls = new SelfCallGuard(opts.logger, opts.metrics, opts.clock);
    this.admission = new HboneAdmission({ ...DEFAULT_HBONE_LIMITS, ...opts.hboneLimits });
    this.registerMetrics();
    this.dnsProxy = opts.dns ? new ZtunnelDnsProxy({
      upstreams: opts.dns.upstreams, clusterDomain: opts.dns.clusterDomain ?? 'cluster.local',
      metrics: opts.metrics, logger: opts.logger, clock: opts.clock, state: () => this.state,
    }) : undefined;
  }

  current(): MeshView {
    return this.state;
  }

  /** Apply a new view of the mesh: reconcile local workloads, close what policies now deny. */
  async setState(state: MeshView): Promise<void> {
    this.state = state;
    this.stateVersion = state.version;
    const recheck = this.connections.recheck(state);
    if (recheck.closed > 0) this.logger.info('closed connections that the new policy denies', { count: recheck.closed, reasons: recheck.reasons.slice(0, 10) });
    if (this.closing) return;
    const wanted = new Map(this.localWorkloads(state).map((w) => [w.uid, w]));
    for (const [uid, proxy] of this.proxies) {
      const w = wanted.get(uid);
      const version = w && this.opts.networkVersion?.(w);
      if (!w || w.addresses[0] !== proxy.workload.addresses[0] || identityOf(w) !== proxy.identity || (version && version.netns !== proxy.version?.netns)) {
        await this.removeProxy(uid);
      } else {
        proxy.workload = w;
        this.dnsProxy?.update(w);
        if (version && version.listeners !== proxy.version?.listeners) await this.swapListeners(proxy, version);
      }
    }
    await Promise.all([...wanted.values()].filter((w) => !this.proxies.has(w.uid)).map((w) => this.addProxy(w)));
    // Identities of proxies being started count too: a reconcile that runs while another one
    // waits for a certificate must not forget it under that one's feet.
    const identities = new Set([...this.proxies.values()].map((p) => p.identity).concat([...wanted.values()].map((w) => identityOf(w))));
    for (const c of this.opts.certificates.list()) {
      const id = formatSpiffe(c.identity);
      if (!identities.has(id)) this.opts.certificates.forget(id);
    }
  }

  /**
   * Workloads on this node that this ztunnel serves (waypoints speak HBONE themselves: NONE
   * here; sidecar pods terminate their own tunnels: native_tunnel).
   */
  localWorkloads(state = this.state): Workload[] {
    return state.workloadsOnNode(this.opts.node).filter((w) => w.tunnelProtocol === 'HBONE' && !w.nativeTunnel && (this.opts.enrolled?.(w) ?? true));
  }

  /**
   * Re-reconciles the served workloads against the current state (the set of enrolled pods
   * changed). Calls while one runs are folded into one more run after it.
   */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        await this.setState(this.state);
      } while (this.refreshAgain);
    })().finally(() => { this.refreshing = undefined; });
    return this.refreshing;
  }

  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;

  /** Route a connection made by a local workload (explicit forwarders use this). */
  handleOutbound(client: net.Socket, sourceUid: string, dst: Endpoint): void {
    const proxy = this.proxies.get(sourceUid);
    if (!proxy) {
      client.resetAndDestroy();
      this.logger.warn('outbound connection from a workload this ztunnel does not serve', { uid: sourceUid });
      return;
    }
    this.dataPath.outbound(client, proxy.workload, proxy.network, dst);
  }

  /** Plaintext to a local workload (explicit listeners stand in for the 15006 capture). */
  handleInboundPlaintext(client: net.Socket, uid: string, target: Endpoint): void {
    const proxy = this.proxies.get(uid);
    if (!proxy) { client.resetAndDestroy(); return; }
    this.dataPath.inboundPlaintext(client, proxy.workload, proxy.network, target);
  }

  ready(): { ready: boolean; reason?: string } {
    if (this.stateVersion === undefined) return { ready: false, reason: 'no configuration received yet' };
    const missing = this.localWorkloads().filter((w) => !this.proxies.has(w.uid)).map((w) => `${w.namespace}/${w.name}`);
    if (missing.length > 0) return { ready: false, reason: `workloads not served yet: ${missing.join(', ')}` };
    return { ready: true };
  }

  configDump(): Record<string, unknown> {
    return {
      node: this.opts.node,
      version: this.stateVersion ?? null,
      workloads: [...this.state.workloads.values()],
      services: [...this.state.services.values()],
      policies: [...this.state.authorizations.values()],
      certificates: this.opts.certificates.list().map((c) => ({ ...c, identity: formatSpiffe(c.identity) })),
      served: [...this.proxies.values()].map((p) => ({ uid: p.workload.uid, identity: p.identity, address: p.workload.addresses[0], network: p.network.kind })),
      mesh: this.state.mesh,
      dns: this.dnsProxy ? { workloads: this.dnsProxy.size, names: this.dnsProxy.registry(this.state).size, upstreams: this.opts.dns!.upstreams } : null,
      failures: Object.fromEntries(this.failures),
      pool: this.pool.stats(),
      liveInboundConnections: this.connections.size,
    };
  }

  /**
   * Stop accepting, let live connections finish until the deadline, then reset the rest.
   * Closing a listener that the node agent handed over only closes this process's copy: the
   * socket stays with the agent (and a newer ztunnel), so nothing queued on it is lost. HBONE
   * peers get a GOAWAY and open their next tunnels elsewhere; tunnels and captured connections
   * already relayed here run on until they end or the deadline.
   */
  async close(deadlineMs = 5000): Promise<void> {
    this.closing = true;
    this.retryTimer?.cancel();
    for (const p of this.proxies.values()) for (const s of p.servers) s.close();
    const goaway = [...this.proxies.values()].map((p) => p.hbone.close(deadlineMs));
    const clock = this.opts.clock;
    const until = clock.now() + deadlineMs;
    while (this.captured.size > 0 && clock.now() < until) await delay(clock, Math.min(100, Math.max(1, until - clock.now())));
    const left = (await this.connections.drain(Math.max(0, until - clock.now()))) + this.captured.size;
    for (const socket of this.captured) socket.resetAndDestroy();
    await Promise.all(goaway);
    if (left > 0) this.logger.warn('drain deadline reached; reset the connections left', { count: left });
    await Promise.all([...this.proxies.keys()].map((uid) => this.removeProxy(uid, 100)));
    await this.pool.close();
    this.opts.certificates.close();
  }

  destroy(): void {
    this.closing = true;
    for (const uid of [...this.proxies.keys()]) {
      const p = this.proxies.get(uid)!;
      p.hbone.destroy();
      this.dnsProxy?.remove(uid);
      for (const s of p.servers) s.close();
      p.network.close();
    }
    this.proxies.clear();
    void this.pool.close();
    this.opts.certificates.close();
  }

  private async addProxy(w: Workload): Promise<void> {
    const inflight = this.pending.get(w.uid);
    if (inflight) return inflight;
    const p = this.startProxy(w).finally(() => this.pending.delete(w.uid));
    this.pending.set(w.uid, p);
    return p;
  }

  private async startProxy(w: Workload): Promise<void> {
    const identity = identityOf(w);
    let network: PodNetwork | undefined;
    try {
      network = this.opts.network(w);
    } catch (e: unknown) {
      this.failures.set(w.uid, `its network is not available yet: ${describeError(e).message}`);
      this.scheduleRetry();
      return;
    }
    if (!network) {
      this.failures.set(w.uid, 'its network is not available yet');
      this.scheduleRetry();
      return;
    }
    const servers: net.Server[] = [];
    try {
      await this.opts.certificates.get(identity);
      const bind = this.opts.bindAddress(w);
      const hbone = new HboneServer({
        certificate: () => currentCertificate(this.opts.certificates, identity),
        trustDomain: w.trustDomain || this.opts.trustDomain,
        logger: this.logger,
        onRequest: (req) => {
          const proxy = this.proxies.get(w.uid);
          if (!proxy) { req.reject(503, 'workload is no longer served here'); return; }
          this.dataPath.inboundHbone(req, proxy.workload, proxy.network);
        },
        admission: this.admission,
        // Logged by the server itself, at most once per source and interval.
        onRefused: (e) => this.refused.labels({ reason: e.kind }).inc(),
      });
      const version = this.opts.networkVersion?.(w);
      for (const server of await this.openListeners(w.uid, network, bind, hbone)) servers.push(server);
      if (this.opts.capture) await this.dnsProxy?.add(w, network, DNS_PROXY_BIND);
      this.proxies.set(w.uid, { workload: w, identity, network, hbone, servers, version });
      this.failures.delete(w.uid);
      this.logger.info('serving workload', { workload: `${w.namespace}/${w.name}`, address: w.addresses[0], identity, network: network.kind });
    } catch (e: unknown) {
      for (const s of servers) s.close();
      this.dnsProxy?.remove(w.uid);
      network.close();
      const d = describeError(e);
      this.failures.set(w.uid, d.message);
      this.logger.error('cannot serve workload', { workload: `${w.namespace}/${w.name}`, code: d.code, error: d.message });
      this.scheduleRetry();
    }
  }

  /** The workload's listeners in its network: 15008 (HBONE), and 15001/15006 in capture mode. */
  private async openListeners(uid: string, network: PodNetwork, bind: string, hbone: HboneServer): Promise<net.Server[]> {
    const servers: net.Server[] = [];
    try {
      const w = this.state.workloads.get(uid);
      const name = w ? `${w.namespace}/${w.name}` : uid;
      const hboneServer = await network.listen(bind, INBOUND_HBONE_PORT);
      guardListener(hboneServer, this.logger, this.opts.clock, `${name}:${INBOUND_HBONE_PORT}`);
      hbone.attach(hboneServer);
      servers.push(hboneServer);
      if (this.opts.capture) {
        const outbound = await network.listen(bind, OUTBOUND_PORT);
        guardListener(outbound, this.logger, this.opts.clock, `${name}:${OUTBOUND_PORT}`);
        outbound.on('connection', (s: net.Socket) => this.onCaptured(s, uid, 'outbound'));
        servers.push(outbound);
        const plaintext = await network.listen(bind, INBOUND_PLAINTEXT_PORT);
        guardListener(plaintext, this.logger, this.opts.clock, `${name}:${INBOUND_PLAINTEXT_PORT}`);
        plaintext.on('connection', (s: net.Socket) => this.onCaptured(s, uid, 'inbound'));
        servers.push(plaintext);
      }
      return servers;
    } catch (e: unknown) {
      for (const server of servers) server.close();
      throw e;
    }
  }

  /**
   * New listening sockets for a served pod (the node agent made new ones, e.g. after its own
   * restart): accept on the new ones first, then close the old; with tcp_migrate_req the
   * connections queued on an old socket move to a new one of the same port.
   */
  private async swapListeners(proxy: WorkloadProxy, version: { netns: string; listeners: number }): Promise<void> {
    const w = proxy.workload;
    try {
      const fresh = await this.openListeners(w.uid, proxy.network, this.opts.bindAddress(w), proxy.hbone);
      const old = proxy.servers;
      proxy.servers = fresh;
      proxy.version = version;
      for (const server of old) server.close();
      this.logger.info('listeners handed over again; swapped', { workload: `${w.namespace}/${w.name}` });
    } catch (e: unknown) {
      this.logger.warn('cannot adopt the new listeners; keeping the old ones', { workload: `${w.namespace}/${w.name}`, error: describeError(e).message });
    }
  }

  /** Workloads that could not be served yet (network not there, no certificate) are retried. */
  private scheduleRetry(): void {
    if (this.retryTimer || this.closing) return;
    this.retryTimer = this.opts.clock.setTimeout(() => {
      this.retryTimer = undefined;
      if (this.closing) return;
      const missing = this.localWorkloads().filter((x) => !this.proxies.has(x.uid));
      void Promise.all(missing.map((x) => this.addProxy(x)));
    }, 500);
  }

  private onCaptured(socket: net.Socket, uid: string, kind: 'outbound' | 'inbound'): void {
    const proxy = this.proxies.get(uid);
    if (!proxy) { socket.resetAndDestroy(); return; }
    let dst: Endpoint | undefined;
    try {
      dst = proxy.network.originalDestination(socket);
    } catch (e: unknown) {
      this.logger.warn('no original destination for a captured connection', { error: describeError(e).message });
    }
    if (!dst) { socket.resetAndDestroy(); return; }
    if (this.selfCalls.refuse(socket, kind, dst, proxy.workload)) return;
    this.captured.add(socket);
    socket.once('close', () => this.captured.delete(socket));
    if (kind === 'outbound') this.dataPath.outbound(socket, proxy.workload, proxy.network, dst);
    else this.dataPath.inboundPlaintext(socket, proxy.workload, proxy.network, dst);
  }

  /**
   * Stop accepting for a workload that left (or was un-enrolled). Tunnels already open are
   * not cut: its HBONE server stops taking connections and lets open streams finish (up to
   * `drainMs`), as un-enrolment must not break established connections.
   */
  private async removeProxy(uid: string, drainMs = UNENROL_DRAIN_MS): Promise<void> {
    const p = this.proxies.get(uid);
    if (!p) return;
    this.proxies.delete(uid);
    this.dnsProxy?.remove(uid);
    for (const s of p.servers) s.close();
    const drained = p.hbone.close(drainMs).finally(() => p.network.close());
    if (this.closing) await drained;
    this.logger.info('stopped serving workload', { workload: `${p.workload.namespace}/${p.workload.name}` });
  }

  private createPoolSocket(dst: Endpoint, sourceIp?: string): net.Socket {
    const proxy = sourceIp ? [...this.proxies.values()].find((p) => p.workload.addresses.includes(sourceIp)) : undefined;
    if (!proxy) throw new Error(`no local workload with address ${sourceIp ?? '(none)'}`);
    return proxy.network.connect(dst, { localAddress: proxy.network.kind === 'host' ? sourceIp : undefined, allowHalfOpen: false });
  }

  private refused!: ReturnType<MetricsRegistry['counter']>;

  private registerMetrics(): void {
    const m = this.opts.metrics;
    this.refused = m.counter({ name: 'ambit_hbone_refused_total', help: 'HBONE connections or streams refused before reaching policy (TLS, identity, protocol, limits).', labelNames: ['reason'] });
    const pendingHandshakes = m.gauge({ name: 'ambit_hbone_pending_handshakes', help: 'Inbound HBONE connections not yet through TLS and the peer check.' });
    const sessions = m.gauge({ name: 'ambit_hbone_inbound_sessions', help: 'Inbound HBONE sessions (verified mTLS HTTP/2 connections).' });
    const workloads = m.gauge({ name: 'ambit_ztunnel_workloads', help: 'Local workloads this ztunnel serves.' });
    const poolConns = m.gauge({ name: 'ambit_hbone_pool_connections', help: 'Outbound HBONE connections in the pool.' });
    const poolStreams = m.gauge({ name: 'ambit_hbone_pool_streams', help: 'Outbound HBONE tunnels open.' });
    const handshakes = m.gauge({ name: 'ambit_hbone_pool_handshakes', help: 'Outbound TLS handshakes since start.' });
    m.addCollector(() => {
      const a = this.admission.stats();
      pendingHandshakes.labels({}).set(a.pendingHandshakes);
      sessions.labels({}).set(a.sessions);
      workloads.labels({}).set(this.proxies.size);
      const s = this.pool.stats();
      poolConns.labels({}).set(s.connections);
      poolStreams.labels({}).set(s.streams);
      handshakes.labels({}).set(s.handshakes);
    });
  }
}
