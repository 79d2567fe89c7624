// Gateway API TCPRoute (pure): connections to a parent (a Service port at a waypoint, a TCP
// listener at an ingress gateway) go to one of the route's backends, chosen by weight once per
// connection. A TCPRoute has no matches; its first rule is used (validation warns about more).
// Several routes on one parent: the oldest wins (creationTimestamp, then namespace/name).
import type { TCPRouteResource } from '../config/ingress-resources.js';
import type { ParentReference } from '../config/resources.js';
import { creationAge } from '../config/resources.js';
import { byCodeUnits } from '../core/compare.js';

export interface TcpBackend {
  namespace: string;
  name: string;
  port: number | undefined;
  weight: number;
}

export interface TcpRouteEntry {
  route: string;
  backends: TcpBackend[];
}

/**
 * Routes by parent: `parentKey(ref, routeNamespace)` names the parent (undefined: not one this
 * proxy serves); `allowBackend` refuses cross-namespace backends without a ReferenceGrant.
 */
export function compileTcpRoutes(routes: readonly TCPRouteResource[], parentKeys: (ref: ParentReference, routeNamespace: string) => string[], allowBackend: (route: TCPRouteResource, ns: string, name: string) => boolean = () => true): Map<string, TcpRouteEntry> {
  const out = new Map<string, TcpRouteEntry>();
  const sorted = [...routes].sort((a, b) => creationAge(a) - creationAge(b) || byCodeUnits(`${a.metadata.namespace}/${a.metadata.name}`, `${b.metadata.namespace}/${b.metadata.name}`));
  for (const r of sorted) {
    const ns = r.metadata.namespace ?? 'default';
    const rule = r.spec.rules?.[0];
    if (!rule) continue;
    const backends = (rule.backendRefs ?? []).filter((b) => (b.kind ?? 'Service') === 'Service' && (b.weight ?? 1) > 0)
      .map((b) => ({ namespace: b.namespace ?? ns, name: b.name, port: b.port, weight: b.weight ?? 1 }))
      .filter((b) => allowBackend(r, b.namespace, b.name));
    for (const p of r.spec.parentRefs ?? []) {
      for (const key of parentKeys(p, ns)) if (!out.has(key)) out.set(key, { route: `tcproute ${ns}/${r.metadata.name}`, backends });
    }
  }
  return out;
}

/** One backend by weight (random in [0, 1)); undefined when the route has none. */
export function pickTcpBackend(entry: TcpRouteEntry, random: () => number): TcpBackend | undefined {
  const total = entry.backends.reduce((s, b) => s + b.weight, 0);
  if (total <= 0) return undefined;
  let x = random() * total;
  for (const b of entry.backends) {
    if (x < b.weight) return b;
    x -= b.weight;
  }
  return entry.backends[entry.backends.length - 1];
}
