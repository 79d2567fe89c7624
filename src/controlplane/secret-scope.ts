// Which proxies may receive which Secret, and how Secrets appear anywhere else (pure).
//
// Invariants:
// - A Secret reaches a proxy only when that proxy needs it: a waypoint replica (ADS node id
//   `<node>~<pod>.<namespace>`, the pod running on that very node) of a waypoint that
//   originates TLS with it — a DestinationRule with tls SIMPLE/MUTUAL whose credentialName
//   names it, for a ServiceEntry host bound to that waypoint; the Secret is looked up in the
//   waypoint's namespace (Istio: the namespace of the proxy using it). Nothing else gets it:
//   not ztunnels, not sidecars, not other waypoints. `<name>-cacert` goes with `<name>`.
// - Outside the xDS push, a Secret is shown redacted: its keys, with the values replaced, so
//   `ambit get`, status and logs never carry key material.
import type { ConfigSet } from '../config/config-set.js';
import type { SecretResource } from '../config/egress-resources.js';
import { hostCovers } from '../config/validate-egress-set.js';
import type { MeshModel } from '../model/mesh-model.js';
import { addIngressSecretConsumers } from './ingress-secrets.js';

export const REDACTED = '<redacted>';

/** "secretNs/name" -> the waypoints ("ns/name") that need it. */
export function secretConsumers(set: ConfigSet, model: MeshModel): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const dr of set.ofKind('DestinationRule')) {
    const policies = [dr.spec.trafficPolicy?.tls, ...(dr.spec.trafficPolicy?.portLevelSettings ?? []).map((p) => p.tls)];
    const names = policies.filter((t) => t && (t.mode === 'SIMPLE' || t.mode === 'MUTUAL') && t.credentialName).map((t) => t!.credentialName!);
    if (names.length === 0) continue;
    for (const e of model.serviceEntries) {
      if (!e.waypoint || !hostCovers(dr.spec.host, e.host)) continue;
      for (const n of names) {
        for (const name of [n, `${n}-cacert`]) {
          const key = `${e.waypoint.namespace}/${name}`;
          const set = out.get(key) ?? new Set<string>();
          set.add(`${e.waypoint.namespace}/${e.waypoint.name}`);
          out.set(key, set);
        }
      }
    }
  }
  // An ingress gateway's listener certificates go to its replicas.
  addIngressSecretConsumers(set, out);
  return out;
}

/** The waypoint a proxy's ADS node id speaks for, if it is a replica running on that node. */
export function waypointOfNode(model: MeshModel, nodeId: string): string | undefined {
  const tilde = nodeId.indexOf('~');
  if (tilde <= 0) return undefined;
  const node = nodeId.slice(0, tilde);
  const rest = nodeId.slice(tilde + 1);
  const dot = rest.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const pod = model.workloadByName(rest.slice(dot + 1), rest.slice(0, dot));
  const of = pod?.waypointOf ?? pod?.gatewayOf;
  if (!of || pod!.node !== node) return undefined;
  return `${of.namespace}/${of.name}`;
}

/**
 * The ADS filter's rule for Secrets: whether the client with this (authenticated) node id may
 * receive config resource `name`. Anything that is not a Secret passes.
 */
export function secretVisible(model: MeshModel, users: ReadonlyMap<string, ReadonlySet<string>>, nodeId: string, name: string): boolean {
  if (!name.startsWith('Secret/')) return true;
  const wp = waypointOfNode(model, nodeId);
  return wp !== undefined && (users.get(name.slice('Secret/'.length))?.has(wp) ?? false);
}

/** A Secret with every value replaced: what operators and logs may see. */
export function redactSecret<T extends { kind: string }>(r: T): T {
  if (r.kind !== 'Secret') return r;
  const s = r as unknown as SecretResource;
  const hide = (m: Record<string, string> | undefined) => (m ? Object.fromEntries(Object.keys(m).map((k) => [k, REDACTED])) : undefined);
  return { ...s, ...(s.data ? { data: hide(s.data) } : {}), ...(s.stringData ? { stringData: hide(s.stringData) } : {}) } as unknown as T;
}
