// Where a TCP connection to a Service port goes when a TCPRoute is attached to it (a waypoint
// and an ingress gateway share this): one backend Service by weight.
import type { Service } from '../xds/workload-api.js';
import type { MeshView } from '../dataplane/mesh-view.js';
import { pickTcpBackend, type TcpRouteEntry } from './route-tcp.js';
import { serviceHostname } from '../core/mesh-constants.js';

export type TcpRouted = { kind: 'backend'; route: string; service: Service; port: number } | { kind: 'none'; route: string };

export function tcpRouteBackend(cfg: { tcpRoutes: ReadonlyMap<string, TcpRouteEntry> }, state: MeshView, service: Service, port: number, random: () => number = Math.random): TcpRouted | undefined {
  const entry = cfg.tcpRoutes.get(`${service.hostname}:${port}`);
  return entry ? resolveTcpRoute(entry, state, port, random) : undefined;
}

export function resolveTcpRoute(entry: TcpRouteEntry, state: MeshView, port: number, random: () => number = Math.random): TcpRouted {
  const b = pickTcpBackend(entry, random);
  const svc = b ? state.serviceByKey(`${b.namespace}/${serviceHostname(b.name, b.namespace)}`) : undefined;
  if (!b || !svc) return { kind: 'none', route: entry.route };
  return { kind: 'backend', route: entry.route, service: svc, port: b.port ?? port };
}
