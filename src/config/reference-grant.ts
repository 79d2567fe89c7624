// Gateway API ReferenceGrant: whether an object may refer to an object of another namespace
// (pure). A reference within one namespace needs no grant; across namespaces it needs a
// ReferenceGrant in the *target's* namespace whose `from` names the referrer's group, kind and
// namespace and whose `to` names the target's group and kind (and name, when given).
import type { ReferenceGrantResource } from './ingress-resources.js';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';

export interface RefFrom { group: string; kind: string; namespace: string }
export interface RefTo { group: string; kind: string; namespace: string; name: string }

export function referenceAllowed(grants: readonly ReferenceGrantResource[], from: RefFrom, to: RefTo): boolean {
  if (from.namespace === to.namespace) return true;
  const core = (g: string) => (g === 'core' ? '' : g);
  return grants.some((g) => (g.metadata.namespace ?? 'default') === to.namespace
    && g.spec.from.some((f) => core(f.group) === core(from.group) && f.kind === from.kind && f.namespace === from.namespace)
    && g.spec.to.some((t) => core(t.group) === core(to.group) && t.kind === to.kind && (t.name === undefined || t.name === '' || t.name === to.name)));
}
