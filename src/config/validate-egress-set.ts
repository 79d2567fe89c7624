// Set-wide checks of the egress kinds: references between ServiceEntries, DestinationRules,
// Secrets, policies and routes. All warnings: the config is valid, part of it just does
// nothing yet (a missing Secret may be applied next).
import type { ConfigSet } from './config-set.js';
import { formatPath, type Diagnostic, type PathSegment } from './diagnostics.js';
import { LABEL_USE_WAYPOINT, LABEL_USE_WAYPOINT_NAMESPACE } from './labels.js';
import { creationAge, resourceRef, type Located } from './resources.js';
import type { DestinationRuleResource } from './egress-resources.js';
import { byCodeUnits } from '../core/compare.js';
import { serviceHostname } from '../core/mesh-constants.js';
import { resolveIstioHost } from './virtual-service-hosts.js';

export const SERVICE_ENTRY_GROUP = 'networking.istio.io';

/** Whether an Istio host (possibly "*.x") covers a concrete host name. */
export function hostCovers(pattern: string, host: string): boolean {
  if (pattern === host) return true;
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1));
  return false;
}

export function checkEgressSet(set: ConfigSet): Diagnostic[] {
  const out: Diagnostic[] = [];
  const diag = (l: Located, path: PathSegment[], code: string, message: string) => out.push({
    severity: 'warning', code, file: l.source.file, line: l.source.lineOf?.(path) ?? l.source.line,
    resource: resourceRef(l.resource), path: formatPath(path), message,
  });
  const entries = set.located('ServiceEntry');
  const entryKeys = new Set(entries.map((l) => `${l.resource.metadata.namespace}/${l.resource.metadata.name}`));
  const secrets = new Set(set.ofKind('Secret').map((s) => `${s.metadata.namespace}/${s.metadata.name}`));
  const serviceHosts = new Set(set.ofKind('Service').map((s) => serviceHostname(s.metadata.name, s.metadata.namespace ?? 'default')));
  const nsLabels = new Map(set.ofKind('Namespace').map((n) => [n.metadata.name, n.metadata.labels ?? {}]));

  // Policies and routes naming a ServiceEntry.
  for (const l of [...set.located('AuthorizationPolicy'), ...set.located('RequestAuthentication'), ...set.located('Telemetry')]) {
    const r = l.resource;
    const refs = r.spec.targetRefs ?? (r.spec.targetRef ? [r.spec.targetRef] : []);
    refs.forEach((t, i) => {
      if (t.kind !== 'ServiceEntry') return;
      const path: PathSegment[] = r.spec.targetRefs ? ['spec', 'targetRefs', i] : ['spec', 'targetRef'];
      if (!entryKeys.has(`${r.metadata.namespace}/${t.name}`)) diag(l, path, 'dangling-reference', `ServiceEntry "${r.metadata.namespace}/${t.name}" does not exist; this policy applies to nothing until it does`);
    });
  }
  for (const l of set.located('HTTPRoute')) {
    (l.resource.spec.parentRefs ?? []).forEach((p, i) => {
      if (p.kind !== 'ServiceEntry') return;
      const key = `${p.namespace ?? l.resource.metadata.namespace}/${p.name}`;
      if (p.group !== SERVICE_ENTRY_GROUP) diag(l, ['spec', 'parentRefs', i], 'parent-group', `a ServiceEntry parent needs group: ${SERVICE_ENTRY_GROUP}; without it the route attaches to nothing`);
      else if (!entryKeys.has(key)) diag(l, ['spec', 'parentRefs', i], 'dangling-reference', `ServiceEntry "${key}" does not exist; the route is attached to nothing`);
    });
  }

  // DestinationRules: what they name, duplicates, Secrets.
  const drs = set.located('DestinationRule').sort((a, b) => creationAge(a.resource) - creationAge(b.resource) || byCodeUnits(resourceRef(a.resource), resourceRef(b.resource)));
  const firstForHost = new Map<string, Located<DestinationRuleResource>>();
  for (const l of drs) {
    const dr = l.resource;
    const ns = dr.metadata.namespace ?? 'default';
    const host = resolveIstioHost(dr.spec.host, ns);
    const matchingEntries = entries.filter((e) => e.resource.spec.hosts.some((h) => hostCovers(host, h) || hostCovers(h, host)));
    const isService = [...serviceHosts].some((h) => hostCovers(host, h));
    if (!isService && matchingEntries.length === 0) diag(l, ['spec', 'host'], 'dangling-reference', `host "${dr.spec.host}" names no Service or ServiceEntry host; this rule applies to nothing`);
    const key = `${ns}/${host}`;
    const first = firstForHost.get(key);
    if (first) diag(l, ['spec', 'host'], 'conflict', `${resourceRef(first.resource)} (${first.source.file}:${first.source.line}) already sets the policy of ${host}; only the oldest applies, this one is ignored`);
    else firstForHost.set(key, l);
    const tlsAt: { tls: NonNullable<DestinationRuleResource['spec']['trafficPolicy']>['tls']; path: PathSegment[] }[] = [];
    if (dr.spec.trafficPolicy?.tls) tlsAt.push({ tls: dr.spec.trafficPolicy.tls, path: ['spec', 'trafficPolicy', 'tls'] });
    (dr.spec.trafficPolicy?.portLevelSettings ?? []).forEach((p, i) => { if (p.tls) tlsAt.push({ tls: p.tls, path: ['spec', 'trafficPolicy', 'portLevelSettings', i, 'tls'] }); });
    for (const { tls, path } of tlsAt) {
      if (!tls || (tls.mode !== 'SIMPLE' && tls.mode !== 'MUTUAL')) continue;
      if (isService && matchingEntries.length === 0) {
        diag(l, path, 'not-applied', 'TLS origination is applied at the egress waypoint of a ServiceEntry host; for a Service in the mesh, traffic is already mutual TLS (HBONE) and this is ignored');
      }
      const name = tls.credentialName;
      if (!name) continue;
      // The Secret lives with the proxy that uses it (Istio): the egress waypoint's namespace.
      const waypointNamespaces = new Set(matchingEntries.map((e) => {
        const labels = e.resource.metadata.labels ?? {};
        const eNs = e.resource.metadata.namespace ?? 'default';
        const own = labels[LABEL_USE_WAYPOINT];
        const nsl = nsLabels.get(eNs) ?? {};
        if (own && own !== 'none') return labels[LABEL_USE_WAYPOINT_NAMESPACE] ?? eNs;
        if (!own && nsl[LABEL_USE_WAYPOINT] && nsl[LABEL_USE_WAYPOINT] !== 'none') return nsl[LABEL_USE_WAYPOINT_NAMESPACE] ?? eNs;
        return undefined;
      }).filter((x): x is string => !!x));
      if (waypointNamespaces.size === 0 && matchingEntries.length > 0) {
        diag(l, path, 'not-applied', `TLS origination happens at an egress waypoint; no ServiceEntry for ${host} has one (label it ${LABEL_USE_WAYPOINT})`);
      }
      for (const wns of waypointNamespaces) {
        if (!secrets.has(`${wns}/${name}`)) diag(l, [...path, 'credentialName'], 'dangling-reference', `Secret "${wns}/${name}" does not exist (the Secret must be in the namespace of the waypoint that uses it, ${wns}); requests to ${host} fail with 503 until it does`);
      }
    }
  }

  // VirtualService destinations naming a subset no DestinationRule defines.
  for (const l of set.located('VirtualService')) {
    const vs = l.resource;
    const ns = vs.metadata.namespace ?? 'default';
    (vs.spec.http ?? []).forEach((rule, ri) => (rule.route ?? []).forEach((d, di) => {
      const subset = d.destination.subset;
      if (!subset) return;
      const host = resolveIstioHost(d.destination.host, ns);
      const defined = drs.some((r) => {
        const rns = r.resource.metadata.namespace ?? 'default';
        const rhost = resolveIstioHost(r.resource.spec.host, rns);
        return hostCovers(rhost, host) && (r.resource.spec.subsets ?? []).some((s) => s.name === subset);
      });
      if (!defined) diag(l, ['spec', 'http', ri, 'route', di, 'destination', 'subset'], 'dangling-reference', `subset "${subset}" of ${host} is defined by no DestinationRule; requests routed to it get 503`);
    }));
  }
  return out;
}
