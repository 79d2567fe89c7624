// Which Secrets an ingress gateway terminates TLS with (pure): the certificateRefs of its
// listeners, in its own namespace or — with a ReferenceGrant — another. Only those reach its
// replicas (secret-scope.ts gives each Secret to the proxies that need it).
import type { ConfigSet } from '../config/config-set.js';
import { INGRESS_CLASS } from '../config/ingress-resources.js';
import { GATEWAY_GROUP, referenceAllowed } from '../config/reference-grant.js';

/** Adds "secretNs/name" -> "gatewayNs/gatewayName" for every permitted certificate reference. */
export function addIngressSecretConsumers(set: ConfigSet, out: Map<string, Set<string>>): void {
  const grants = set.ofKind('ReferenceGrant');
  for (const g of set.ofKind('Gateway')) {
    if (g.spec.gatewayClassName !== INGRESS_CLASS) continue;
    const ns = g.metadata.namespace ?? 'default';
    for (const l of g.spec.listeners) {
      for (const r of l.tls?.certificateRefs ?? []) {
        const sns = r.namespace ?? ns;
        if (!referenceAllowed(grants, { group: GATEWAY_GROUP, kind: 'Gateway', namespace: ns }, { group: '', kind: 'Secret', namespace: sns, name: r.name })) continue;
        const key = `${sns}/${r.name}`;
        const users = out.get(key) ?? new Set<string>();
        users.add(`${ns}/${g.metadata.name}`);
        out.set(key, users);
      }
    }
  }
}
