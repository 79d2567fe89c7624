// What L7 proxies need from the model that neither the workload API nor the config objects
// carry (the workload API has no labels): sent as one extra config object, `ProxyHints/<root
// namespace>/mesh`, on Ambit's ConfigResource type.
//
// - `subsets`: for each DestinationRule ("ns/name") and subset, the uids of the endpoints of
//   the hosts the rule covers whose labels carry all of the subset's labels (Istio's control
//   plane makes one EDS cluster per subset the same way).
// - `ingressUseWaypoint`: hostnames of Services labelled istio.io/ingress-use-waypoint=true
//   that have a waypoint: an ingress gateway sends their traffic through it.
import type { ConfigSet } from '../config/config-set.js';
import type { MeshModel } from '../model/mesh-model.js';
import type { ConfigObject } from '../xds/config-resource.js';
import { hostCovers } from '../config/validate-egress-set.js';

export const PROXY_HINTS_KIND = 'ProxyHints';
export const LABEL_INGRESS_USE_WAYPOINT = 'istio.io/ingress-use-waypoint';

export interface ProxyHintsSpec {
  subsets: Record<string, Record<string, string[]>>;
  ingressUseWaypoint: string[];
}

export function proxyHintObjects(set: ConfigSet, model: MeshModel): ConfigObject[] {
  const domain = model.settings.clusterDomain;
  const subsets: ProxyHintsSpec['subsets'] = {};
  const services = [...model.services.values()];
  for (const dr of set.ofKind('DestinationRule')) {
    if (!dr.spec.subsets?.length) continue;
    const ns = dr.metadata.namespace ?? 'default';
    const host = dr.spec.host.includes('.') || dr.spec.host === '*' ? dr.spec.host : `${dr.spec.host}.${ns}.svc.${domain}`;
    const endpoints = [
      ...services.filter((s) => hostCovers(host, s.hostname)).flatMap((s) => s.endpoints),
      ...model.serviceEntries.filter((e) => hostCovers(host, e.host)).flatMap((e) => e.selectedWorkloads),
    ];
    const bySubset: Record<string, string[]> = {};
    for (const sub of dr.spec.subsets) {
      const want = Object.entries(sub.labels ?? {});
      bySubset[sub.name] = [...new Set(endpoints)].filter((uid) => {
        const w = model.workloads.get(uid);
        return w !== undefined && want.every(([k, v]) => w.labels[k] === v);
      }).sort();
    }
    subsets[`${ns}/${dr.metadata.name}`] = bySubset;
  }
  const ingressUseWaypoint = services.filter((s) => s.labels[LABEL_INGRESS_USE_WAYPOINT] === 'true' && s.waypoint).map((s) => s.hostname).sort();
  const spec: ProxyHintsSpec = { subsets, ingressUseWaypoint };
  return [{ apiVersion: 'ambit.dev/v1', kind: PROXY_HINTS_KIND, metadata: { name: 'mesh', namespace: model.settings.rootNamespace }, spec }];
}
