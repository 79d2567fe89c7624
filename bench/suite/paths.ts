// The paths the suite measures: a pluggable list. Each path prepares itself against the
// running cluster and either yields a target (where the client tools point, from which
// namespace, and which proxy processes to account) or says why it is not available; the
// suite measures every available path with the same client and server programs.
//
// Topology (pods are network namespaces; node-1 and node-2 are joined by the cluster's bridge):
//   plain/client (node-1) --- plain/server (node-2)   not enrolled: direct, stunnel, HAProxy
//   mesh/client  (node-1) --- mesh/server  (node-2)   ambient: ambit L4 (pod IP, no waypoint)
//   l7/client    (node-1) --- l7/server    (node-2)   ambient + istio.io/use-waypoint: ambit L7
//   plain/client (node-1) --- ingress gateway pod --- mesh/server (node-2)   ambit ingress
//                             (Gateway bench/ingress, class istio; HBONE from the gateway)
// Every path crosses the same pod veth -> node -> bridge -> node -> pod veth link.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchCluster } from './bench-cluster.js';
import { waitFor } from './bench-cluster.js';
import {
  checkHaproxyConfig, haproxyClientConfig, haproxyServerConfig, stunnelClientConfig, stunnelServerConfig,
  type PairService, type PeerCerts,
} from './peers.js';
import { runIn, type TrackChild } from './tools.js';

export const HTTP_PORT = 8080;
export const IPERF_PORT = 5201;

export type PathId = 'direct' | 'ambitL4' | 'ambitL7' | 'ambitIngress' | 'stunnel' | 'haproxyL4' | 'haproxyL7';

export interface PathTarget {
  clientNetns: string;
  http: { host: string; port: number };
  /** Absent for HTTP-only (L7) paths. */
  iperf?: { host: string; port: number };
  /** The proxy processes of this path, by name -> PID (resolved when asked: a ztunnel may restart). */
  proxies: () => Record<string, number>;
}

export type PathState = { available: true; target: PathTarget } | { available: false; reason: string };

export interface SuiteContext {
  cluster: BenchCluster;
  /** Registers a spawned child with the cluster (killed by PID on cleanup). */
  track: TrackChild;
  certs: PeerCerts;
  workDir: string;
  log: (line: string) => void;
}

export interface BenchPath {
  id: PathId;
  label: string;
  prepare(ctx: SuiteContext): Promise<PathState>;
}

/** A first request must answer 200 within timeoutMs (curl from the client's namespace). */
async function reachable(netns: string, url: string, timeoutMs: number, track?: TrackChild): Promise<boolean> {
  return waitFor(async () => (await runIn(netns, ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', url], 5000, track)).stdout === '200', timeoutMs, 300);
}

function unavailable(reason: string): PathState {
  return { available: false, reason };
}

const url = (h: { host: string; port: number }) => `http://${h.host}:${h.port}/`;

export const directPath: BenchPath = {
  id: 'direct', label: 'direct (no mesh)',
  async prepare({ cluster, track }) {
    const host = cluster.podIp('plain', 'server');
    const target: PathTarget = { clientNetns: cluster.netns('plain', 'client'), http: { host, port: HTTP_PORT }, iperf: { host, port: IPERF_PORT }, proxies: () => ({}) };
    return (await reachable(target.clientNetns, url(target.http), 15_000, track)) ? { available: true, target } : unavailable(`plain/server ${host}:${HTTP_PORT} did not answer`);
  },
};

function ztunnelProxies(cluster: BenchCluster): () => Record<string, number> {
  let cached: Record<string, number> | undefined;
  return () => {
    const now = cluster.ztunnelPids();
    if (Object.keys(now).length > 0) cached = now;
    return Object.fromEntries(Object.entries(cached ?? {}).map(([n, p]) => [`ztunnel-${n}`, p]));
  };
}

export const ambitL4Path: BenchPath = {
  id: 'ambitL4', label: 'ambit L4 (ztunnel HBONE ztunnel)',
  async prepare({ cluster, track }) {
    const host = cluster.podIp('mesh', 'server');
    const target: PathTarget = { clientNetns: cluster.netns('mesh', 'client'), http: { host, port: HTTP_PORT }, iperf: { host, port: IPERF_PORT }, proxies: ztunnelProxies(cluster) };
    if (Object.keys(target.proxies()).length < 2) return unavailable('fewer than two ztunnels are running');
    return (await reachable(target.clientNetns, url(target.http), 20_000, track)) ? { available: true, target } : unavailable(`mesh/server ${host}:${HTTP_PORT} did not answer through the ztunnels`);
  },
};

/** The waypoint's processes: components or pods whose name says waypoint. */
function waypointProcesses(cluster: BenchCluster): Record<string, number> {
  const s = cluster.tryStatus();
  const out: Record<string, number> = {};
  if (!s) return out;
  for (const c of s.components) if (/waypoint/.test(c.name) && c.pid !== undefined) out[c.name] = c.pid;
  for (const p of s.pods) {
    if (!/waypoint/.test(p.name)) continue;
    for (const x of p.processes) if (x.pid !== undefined) out[`${p.namespace}/${p.name}/${x.name}`] = x.pid;
  }
  return out;
}

/** What the client's ztunnel says about the l7 service: has it a waypoint? */
async function serviceWaypoint(cluster: BenchCluster): Promise<string | undefined> {
  const res = await fetch(`${cluster.ztunnelAdmin(1)}/config_dump`, { signal: AbortSignal.timeout(3000) });
  const dump = await res.json() as unknown;
  const found: unknown[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) { v.forEach(walk); return; }
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (o.hostname === L7_SERVICE_HOST && o.waypoint) found.push(o.waypoint);
      Object.values(o).forEach(walk);
    }
  };
  walk(dump);
  return found.length ? JSON.stringify(found[0]) : undefined;
}

export const L7_SERVICE_HOST = 'server.l7.svc.cluster.local';

export const ambitL7Path: BenchPath = {
  id: 'ambitL7', label: 'ambit L7 (ztunnel HBONE waypoint HBONE ztunnel)',
  async prepare({ cluster, log, track }) {
    const target: PathTarget = {
      clientNetns: cluster.netns('l7', 'client'), http: { host: L7_SERVICE_HOST, port: 80 },
      proxies: () => ({ ...ztunnelProxies(cluster)(), ...waypointProcesses(cluster) }),
    };
    let wp: string | undefined;
    await waitFor(async () => { wp = await serviceWaypoint(cluster); return wp !== undefined; }, 10_000, 500);
    if (!wp) return unavailable(`the waypoint is not ready: the ztunnel's config for ${L7_SERVICE_HOST} names no waypoint (Gateway l7/waypoint of class istio-waypoint + istio.io/use-waypoint on namespace l7 are applied; this build does not run waypoints yet)`);
    const procs = waypointProcesses(cluster);
    if (Object.keys(procs).length === 0) return unavailable(`${L7_SERVICE_HOST} names waypoint ${wp}, but no waypoint process is running`);
    log(`ambitL7: waypoint ${wp}, processes ${JSON.stringify(procs)}`);
    return (await reachable(target.clientNetns, url(target.http), 20_000, track)) ? { available: true, target } : unavailable(`the waypoint ${wp} did not carry a request to ${L7_SERVICE_HOST} within 20 s`);
  },
};

/** The ingress gateway's replica processes (pods `<gateway>-istio-<i>`). */
function gatewayProcesses(cluster: BenchCluster): Record<string, number> {
  const s = cluster.tryStatus();
  const out: Record<string, number> = {};
  for (const p of s?.pods ?? []) {
    if (!/-istio-\d+$/.test(p.name)) continue;
    for (const x of p.processes) if (x.pid !== undefined) out[`${p.namespace}/${p.name}/${x.name}`] = x.pid;
  }
  return out;
}

export const ambitIngressPath: BenchPath = {
  id: 'ambitIngress', label: 'ambit ingress (client outside the mesh, gateway HBONE ztunnel)',
  async prepare({ cluster, log, track }) {
    let ip = '';
    await waitFor(async () => {
      ip = (cluster.tryStatus()?.pods ?? []).find((p) => /-istio-\d+$/.test(p.name))?.ip ?? '';
      return ip !== '' && Object.keys(gatewayProcesses(cluster)).length > 0;
    }, 20_000, 300);
    if (!ip) return unavailable('no ingress gateway pod (Gateway bench/ingress of class istio) is running');
    const target: PathTarget = {
      clientNetns: cluster.netns('plain', 'client'), http: { host: ip, port: 80 },
      proxies: () => ({ ...ztunnelProxies(cluster)(), ...gatewayProcesses(cluster) }),
    };
    log(`ambitIngress: gateway at ${ip}, processes ${JSON.stringify(gatewayProcesses(cluster))}`);
    return (await reachable(target.clientNetns, url(target.http), 20_000, track)) ? { available: true, target } : unavailable(`the ingress gateway ${ip} did not carry a request to mesh/server within 20 s`);
  },
};

const STUNNEL_SERVICES: PairService[] = [
  { name: 'http', localPort: 10001, tlsPort: 10443, backendPort: HTTP_PORT },
  { name: 'iperf', localPort: 10002, tlsPort: 10444, backendPort: IPERF_PORT },
];
const HAPROXY_L4_SERVICES: PairService[] = [
  { name: 'http', localPort: 11001, tlsPort: 11443, backendPort: HTTP_PORT },
  { name: 'iperf', localPort: 11002, tlsPort: 11444, backendPort: IPERF_PORT },
];
const HAPROXY_L7_SERVICES: PairService[] = [{ name: 'http', localPort: 12001, tlsPort: 12443, backendPort: HTTP_PORT }];

/** Starts a client-side and a server-side proxy in the plain pods; the target is the client side on 127.0.0.1. */
async function pair(ctx: SuiteContext, id: string, files: { client: string; server: string }, argv: (cfg: string) => string[], services: PairService[], validate?: (cfg: string) => string | undefined): Promise<PathState> {
  const { cluster, workDir } = ctx;
  const cfgClient = join(workDir, `${id}-client.cfg`);
  const cfgServer = join(workDir, `${id}-server.cfg`);
  writeFileSync(cfgClient, files.client);
  writeFileSync(cfgServer, files.server);
  for (const cfg of [cfgClient, cfgServer]) {
    const bad = validate?.(cfg);
    if (bad) return unavailable(`${id}: invalid config ${cfg}: ${bad.slice(0, 300)}`);
  }
  const server = cluster.spawnIn(cluster.netns('plain', 'server'), argv(cfgServer), `${id} server`);
  const client = cluster.spawnIn(cluster.netns('plain', 'client'), argv(cfgClient), `${id} client`);
  const [http, iperf] = services;
  const target: PathTarget = {
    clientNetns: cluster.netns('plain', 'client'), http: { host: '127.0.0.1', port: http!.localPort },
    iperf: iperf ? { host: '127.0.0.1', port: iperf.localPort } : undefined,
    proxies: () => ({ [`${id}-client`]: client.pid!, [`${id}-server`]: server.pid! }),
  };
  if (!(await reachable(target.clientNetns, url(target.http), 15_000, ctx.track))) return unavailable(`${id}: no answer through the pair (client ${cfgClient}, server ${cfgServer})`);
  return { available: true, target };
}

export const stunnelPath: BenchPath = {
  id: 'stunnel', label: 'stunnel mTLS pair',
  async prepare(ctx) {
    const ip = ctx.cluster.podIp('plain', 'server');
    return pair(ctx, 'stunnel', { client: stunnelClientConfig(ctx.certs, ip, STUNNEL_SERVICES), server: stunnelServerConfig(ctx.certs, STUNNEL_SERVICES) },
      (cfg) => ['stunnel', cfg], STUNNEL_SERVICES);
  },
};

export const haproxyL4Path: BenchPath = {
  id: 'haproxyL4', label: 'HAProxy mTLS pair (mode tcp)',
  async prepare(ctx) {
    const ip = ctx.cluster.podIp('plain', 'server');
    return pair(ctx, 'haproxyL4', { client: haproxyClientConfig(ctx.certs, ip, HAPROXY_L4_SERVICES, 'tcp'), server: haproxyServerConfig(ctx.certs, HAPROXY_L4_SERVICES, 'tcp') },
      (cfg) => ['haproxy', '-db', '-f', cfg], HAPROXY_L4_SERVICES, checkHaproxyConfig);
  },
};

export const haproxyL7Path: BenchPath = {
  id: 'haproxyL7', label: 'HAProxy L7 mTLS pair (mode http)',
  async prepare(ctx) {
    const ip = ctx.cluster.podIp('plain', 'server');
    return pair(ctx, 'haproxyL7', { client: haproxyClientConfig(ctx.certs, ip, HAPROXY_L7_SERVICES, 'http'), server: haproxyServerConfig(ctx.certs, HAPROXY_L7_SERVICES, 'http') },
      (cfg) => ['haproxy', '-db', '-f', cfg], HAPROXY_L7_SERVICES, checkHaproxyConfig);
  },
};

/** Every path, in report order. Add a path here (and its pods to the mesh YAML) to measure it. */
export const ALL_PATHS: readonly BenchPath[] = [directPath, ambitL4Path, ambitL7Path, ambitIngressPath, stunnelPath, haproxyL4Path, haproxyL7Path];
