// Endpoints of Services without a selector, from their EndpointSlices (label
// kubernetes.io/service-name). Services with a selector get their endpoints from the model's
// own selection, as the workload API does for pods.
import type { KubeObject } from './kube-object.js';

export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';

interface Slice {
  addressType?: string;
  endpoints?: { addresses?: string[]; conditions?: { ready?: boolean } }[];
}

/** "ns/service" -> ready endpoint IPs, sorted, for the given selector-less Services only. */
export function selectorlessEndpoints(slices: readonly KubeObject[], selectorless: ReadonlySet<string>): Map<string, string[]> {
  const out = new Map<string, Set<string>>();
  for (const s of slices) {
    const svc = s.metadata.labels?.[LABEL_SERVICE_NAME];
    const key = `${s.metadata.namespace ?? 'default'}/${svc}`;
    if (!svc || !selectorless.has(key)) continue;
    const slice = s as unknown as Slice;
    if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;
    const ips = out.get(key) ?? new Set<string>();
    // A missing `ready` means ready (the EndpointSlice API's rule).
    for (const e of slice.endpoints ?? []) if (e.conditions?.ready !== false) for (const a of e.addresses ?? []) ips.add(a);
    out.set(key, ips);
  }
  return new Map([...out].map(([k, v]) => [k, [...v].sort()]));
}
