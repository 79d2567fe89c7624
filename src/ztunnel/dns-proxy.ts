// The ztunnel's DNS proxy (Istio's ztunnel DNS proxy, on by default since Istio 1.25): for
// each local workload it serves, UDP and TCP 15053 inside the workload's network, where the
// pod's capture rules redirect its port-53 traffic (cluster/capture-rules.ts). Queries for
// Services and ServiceEntry hosts are answered from the ztunnel's state with their VIPs; the
// rest go to the upstream resolver from the pod's own network (mark 0x539, so not captured
// again).
//
// Invariants:
// - One DnsServer and one forwarder per served workload; removing the workload closes both.
// - The registry (names -> addresses) is built once per state version (the state is updated in
//   place) and mesh settings;
//   ServiceEntry exportTo (MeshSettings.serviceVisibility) limits who resolves a host.
// - Bounded: every forwarder shares the ztunnel-wide budget of outstanding upstream queries.
import type dgram from 'node:dgram';
import type net from 'node:net';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { DnsForwarder, OutstandingBudget, type UpstreamAddress } from '../dns/forwarder.js';
import { DnsMetrics } from '../dns/metrics.js';
import { DnsRegistry } from '../dns/resolve.js';
import { DnsServer } from '../dns/server.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import type { Workload } from '../xds/workload-api.js';
import type { PodNetwork } from '../dataplane/pod-network.js';
import type { MeshView } from '../dataplane/mesh-view.js';

export const DNS_CAPTURE_PORT = 15053;
/**
 * Where the DNS proxy listens in a pod (as Istio's ztunnel: 127.0.0.1:15053). A REDIRECT in
 * OUTPUT sends the pod's query to 127.0.0.1; answering from a socket bound there makes the
 * answer's source 127.0.0.1, which conntrack turns back into the resolver's address — a
 * socket bound to 0.0.0.0 would answer from the pod's own IP, and a resolver that connect()s
 * its UDP socket (glibc) would never see the answer.
 */
export const DNS_PROXY_BIND = '127.0.0.1';

export interface DnsProxyOptions {
  upstreams: readonly UpstreamAddress[];
  clusterDomain: string;
  metrics: MetricsRegistry;
  logger: Logger;
  clock: Clock;
  state(): MeshView;
  /** Ztunnel-wide bound on queries waiting for the upstream (default 256). */
  maxOutstanding?: number;
  upstreamTimeoutMs?: number;
}

interface Served {
  server: DnsServer;
  tcp: net.Server;
  udp: dgram.Socket;
  workload: Workload;
}

export class ZtunnelDnsProxy {
  private readonly served = new Map<string, Served>();
  private cached: { version: string; mesh: unknown; registry: DnsRegistry } | undefined;
  private readonly metrics: DnsMetrics;
  private readonly budget: OutstandingBudget;

  constructor(private readonly o: DnsProxyOptions) {
    this.metrics = new DnsMetrics(o.metrics);
    this.budget = new OutstandingBudget(o.maxOutstanding ?? 256);
  }

  /** Opens 15053 (UDP and TCP) in the workload's network. */
  async add(w: Workload, network: PodNetwork, bind: string): Promise<void> {
    if (this.served.has(w.uid)) return;
    const forwarder = new DnsForwarder({
      upstreams: this.o.upstreams, clock: this.o.clock, timeoutMs: this.o.upstreamTimeoutMs, shared: this.budget,
      transport: { udp: () => network.bindUdp('0.0.0.0', 0, { mark: true }), tcp: (dst) => network.connect(dst, { allowHalfOpen: false }) },
    });
    const server = new DnsServer({
      source: () => {
        const cur = this.served.get(w.uid)?.workload ?? w;
        return { name: `${cur.namespace}/${cur.name}`, namespace: cur.namespace, canonicalName: cur.canonicalName, canonicalRevision: cur.canonicalRevision };
      },
      registry: () => this.registry(this.o.state()),
      resolve: { clusterDomain: this.o.clusterDomain },
      forwarder, metrics: this.metrics, logger: this.o.logger.child({ scope: 'dns' }), clock: this.o.clock,
    });
    const tcp = await network.listen(bind, DNS_CAPTURE_PORT);
    let udp: dgram.Socket;
    try {
      udp = await network.bindUdp(bind, DNS_CAPTURE_PORT);
    } catch (e: unknown) {
      tcp.close();
      throw e;
    }
    server.attachTcp(tcp);
    server.attachUdp(udp);
    this.served.set(w.uid, { server, tcp, udp, workload: w });
  }

  /** Keeps the served workload object current (labels for metrics). */
  update(w: Workload): void {
    const s = this.served.get(w.uid);
    if (s) s.workload = w;
  }

  remove(uid: string): void {
    const s = this.served.get(uid);
    if (!s) return;
    this.served.delete(uid);
    s.tcp.close();
    s.server.close();
  }

  close(): void {
    for (const uid of [...this.served.keys()]) this.remove(uid);
  }

  get size(): number {
    return this.served.size;
  }

  /** Names answered for the state (for /config_dump). Rebuilt when the state's version or mesh settings change. */
  registry(state: MeshView): DnsRegistry {
    const c = this.cached;
    if (c && c.version === state.version && c.mesh === state.mesh) return c.registry;
    const vis = state.mesh.serviceVisibility;
    const registry = new DnsRegistry([...state.services.values()].map((s) => ({
      hostname: s.hostname, namespace: s.namespace, addresses: s.addresses.map((a) => a.address),
      visibleTo: vis[`${s.namespace}/${s.hostname}`],
    })));
    this.cached = { version: state.version, mesh: state.mesh, registry };
    return registry;
  }
}
