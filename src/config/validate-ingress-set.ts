// Set-wide checks of ingress: routes attached to Gateways (the Gateway exists, is an ingress
// gateway, has the sectionName), cross-namespace references without a ReferenceGrant
// (backends of routes on an ingress gateway, listener certificates), certificate Secrets that
// are missing or not kubernetes.io/tls, and routes to DestinationRule subsets nobody defines.
// All warnings: the rest of the config works; the Gateway API calls these conditions
// (ResolvedRefs=False RefNotPermitted / BackendNotFound / InvalidCertificateRef).
import type { ConfigSet } from './config-set.js';
import { formatPath, type Diagnostic, type PathSegment } from './diagnostics.js';
import { resourceRef, type HTTPRouteResource, type Located } from './resources.js';
import { INGRESS_CLASS, type GRPCRouteResource, type TCPRouteResource } from './ingress-resources.js';
import { GATEWAY_GROUP, referenceAllowed } from './reference-grant.js';
import { hostCovers } from './validate-egress-set.js';
import { resolveIstioHost } from './virtual-service-hosts.js';

export function checkIngressSet(set: ConfigSet): Diagnostic[] {
  const out: Diagnostic[] = [];
  const diag = (l: Located, path: PathSegment[], code: string, message: string) => out.push({
    severity: 'warning', code, file: l.source.file, line: l.source.lineOf?.(path) ?? l.source.line,
    resource: resourceRef(l.resource), path: formatPath(path), message,
  });
  const grants = set.ofKind('ReferenceGrant');
  const gateways = new Map(set.ofKind('Gateway').map((g) => [`${g.metadata.namespace ?? 'default'}/${g.metadata.name}`, g]));
  const services = new Set(set.ofKind('Service').map((s) => `${s.metadata.namespace ?? 'default'}/${s.metadata.name}`));
  const secrets = new Map(set.ofKind('Secret').map((s) => [`${s.metadata.namespace ?? 'default'}/${s.metadata.name}`, s]));

  for (const l of set.located('Gateway')) {
    const g = l.resource;
    if (g.spec.gatewayClassName !== INGRESS_CLASS) continue;
    const ns = g.metadata.namespace ?? 'default';
    g.spec.listeners.forEach((lis, i) => (lis.tls?.certificateRefs ?? []).forEach((r, ri) => {
      const at: PathSegment[] = ['spec', 'listeners', i, 'tls', 'certificateRefs', ri];
      const sns = r.namespace ?? ns;
      if (!referenceAllowed(grants, { group: GATEWAY_GROUP, kind: 'Gateway', namespace: ns }, { group: '', kind: 'Secret', namespace: sns, name: r.name })) {
        diag(l, at, 'ref-not-permitted', `certificate Secret ${sns}/${r.name} is in another namespace and no ReferenceGrant in ${sns} allows Gateways of ${ns} to use it; the listener serves no certificate (handshakes fail)`);
        return;
      }
      const s = secrets.get(`${sns}/${r.name}`);
      if (!s) diag(l, at, 'dangling-reference', `certificate Secret ${sns}/${r.name} does not exist; the listener serves no certificate until it does`);
      else if (s.type !== undefined && s.type !== 'kubernetes.io/tls') diag(l, at, 'bad-secret', `Secret ${sns}/${r.name} is of type ${s.type}, not kubernetes.io/tls (tls.crt, tls.key)`);
    }));
  }

  const routes: Located<HTTPRouteResource | GRPCRouteResource | TCPRouteResource>[] = [...set.located('HTTPRoute'), ...set.located('GRPCRoute'), ...set.located('TCPRoute')];
  for (const l of routes) {
    const r = l.resource;
    const ns = r.metadata.namespace ?? 'default';
    let onIngress = false;
    (r.spec.parentRefs ?? []).forEach((p, i) => {
      if ((p.kind ?? 'Gateway') !== 'Gateway') return;
      const key = `${p.namespace ?? ns}/${p.name}`;
      const g = gateways.get(key);
      if (!g) { diag(l, ['spec', 'parentRefs', i], 'dangling-reference', `Gateway "${key}" does not exist; the route is attached to nothing`); return; }
      if (g.spec.gatewayClassName !== INGRESS_CLASS) {
        diag(l, ['spec', 'parentRefs', i], 'ignored', `Gateway "${key}" is of class ${g.spec.gatewayClassName}: routes attach to a waypoint through a Service parent (kind: Service, group: ""), not to the waypoint Gateway; ignored`);
        return;
      }
      onIngress = true;
      if (p.sectionName !== undefined && !g.spec.listeners.some((x) => x.name === p.sectionName)) diag(l, ['spec', 'parentRefs', i, 'sectionName'], 'dangling-reference', `Gateway "${key}" has no listener "${p.sectionName}"`);
    });
    if (!onIngress) continue;
    const rulesOf = (r.spec.rules ?? []) as { backendRefs?: { kind?: string; name: string; namespace?: string }[] }[];
    rulesOf.forEach((rule, ri) => (rule.backendRefs ?? []).forEach((b, bi) => {
      if ((b.kind ?? 'Service') !== 'Service') return;
      const bns = b.namespace ?? ns;
      if (!referenceAllowed(grants, { group: GATEWAY_GROUP, kind: r.kind, namespace: ns }, { group: '', kind: 'Service', namespace: bns, name: b.name })) {
        diag(l, ['spec', 'rules', ri, 'backendRefs', bi], 'ref-not-permitted', `backend Service ${bns}/${b.name} is in another namespace and no ReferenceGrant in ${bns} allows ${r.kind}s of ${ns} to refer to it; the ingress gateway answers 500 for it`);
      } else if (!services.has(`${bns}/${b.name}`) && r.kind !== 'HTTPRoute') {
        diag(l, ['spec', 'rules', ri, 'backendRefs', bi], 'dangling-reference', `backend Service "${bns}/${b.name}" does not exist`);
      }
    }));
  }

  // VirtualService destination.subset: some DestinationRule for the host must define it.
  const rules = set.ofKind('DestinationRule');
  for (const l of set.located('VirtualService')) {
    const vs = l.resource;
    const ns = vs.metadata.namespace ?? 'default';
    (vs.spec.http ?? []).forEach((h, hi) => (h.route ?? []).forEach((d, di) => {
      const sub = d.destination.subset;
      if (sub === undefined) return;
      const host = resolveIstioHost(d.destination.host, ns);
      const defined = rules.some((dr) => {
        const drHost = resolveIstioHost(dr.spec.host, dr.metadata.namespace ?? 'default');
        return hostCovers(drHost, host) && (dr.spec.subsets ?? []).some((s) => s.name === sub);
      });
      if (!defined) diag(l, ['spec', 'http', hi, 'route', di, 'destination', 'subset'], 'missing-subset', `subset "${sub}" of ${host} is defined by no DestinationRule; requests routed to it get 503 (no healthy upstream)`);
    }));
  }
  return out;
}
