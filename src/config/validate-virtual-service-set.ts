// Set-wide checks of VirtualServices: hosts and destinations that name no Service, several
// VirtualServices for one host (for mesh traffic Istio applies only one), and a Service
// routed by both an HTTPRoute and a VirtualService (Istio: "not supported and leads to
// undefined behavior"; Ambit's waypoint lets the HTTPRoute win). All are warnings: the
// config is valid, part of it just does nothing.
import type { ConfigSet } from './config-set.js';
import { formatPath, type Diagnostic, type PathSegment } from './diagnostics.js';
import { creationAge, resourceRef, type Located, type VirtualServiceResource } from './resources.js';
import { istioHostMatches, resolveIstioHost } from './virtual-service-hosts.js';
import { byCodeUnits } from '../core/compare.js';
import { serviceHostname } from '../core/mesh-constants.js';

interface Svc { key: string; hostname: string; vips: string[] }

export function checkVirtualServiceSet(set: ConfigSet): Diagnostic[] {
  const out: Diagnostic[] = [];
  const diag = (l: Located, path: PathSegment[], code: string, message: string) => out.push({
    severity: 'warning', code, file: l.source.file, line: l.source.lineOf?.(path) ?? l.source.line,
    resource: resourceRef(l.resource), path: formatPath(path), message,
  });
  const services: Svc[] = set.ofKind('Service').map((s) => ({
    key: `${s.metadata.namespace}/${s.metadata.name}`,
    hostname: serviceHostname(s.metadata.name, s.metadata.namespace ?? 'default'),
    vips: [s.spec.clusterIP, ...(s.spec.clusterIPs ?? [])].filter((v): v is string => !!v && v !== 'None'),
  }));
  const byHost = (host: string) => services.find((s) => s.hostname === host || s.vips.includes(host));
  const routedByHTTPRoute = new Map<string, string>();
  for (const r of set.ofKind('HTTPRoute')) {
    for (const p of r.spec.parentRefs ?? []) {
      if (p.kind === 'Service' && (p.group === '' || p.group === 'core')) routedByHTTPRoute.set(`${p.namespace ?? r.metadata.namespace}/${p.name}`, resourceRef(r));
    }
  }
  const owners = new Map<string, Located<VirtualServiceResource>>();
  const located = set.located('VirtualService').sort((a, b) => creationAge(a.resource) - creationAge(b.resource)
    || byCodeUnits(resourceRef(a.resource), resourceRef(b.resource)));
  for (const l of located) {
    const vs = l.resource;
    const ns = vs.metadata.namespace ?? 'default';
    if (vs.spec.gateways?.length && !vs.spec.gateways.includes('mesh')) continue;
    vs.spec.hosts.forEach((h, i) => {
      const host = resolveIstioHost(h, ns);
      const matched = services.filter((s) => istioHostMatches(host, s.hostname) || s.vips.includes(host));
      if (matched.length === 0) diag(l, ['spec', 'hosts', i], 'dangling-reference', `host "${h}" (${host}) names no Service; this VirtualService applies to nothing there`);
      for (const s of matched) {
        const route = routedByHTTPRoute.get(s.key);
        if (route) {
          diag(l, ['spec', 'hosts', i], 'route-conflict', `Service ${s.key} is also routed by ${route}; mixing HTTPRoute and VirtualService for one Service is unsupported in Istio; Ambit's waypoint uses the HTTPRoute and ignores this VirtualService there`);
          continue;
        }
        const first = owners.get(s.key);
        if (first && first !== l) {
          diag(l, ['spec', 'hosts', i], 'route-conflict', `Service ${s.key} is already routed by ${resourceRef(first.resource)} (${first.source.file}:${first.source.line}); only one VirtualService applies per host, the oldest; this one is ignored there`);
        } else owners.set(s.key, l);
      }
    });
    (vs.spec.http ?? []).forEach((rule, ri) => {
      const dests: [IstioHost, PathSegment[]][] = [
        ...(rule.route ?? []).map((d, di): [IstioHost, PathSegment[]] => [d.destination, ['spec', 'http', ri, 'route', di, 'destination', 'host']]),
        ...(rule.mirror ? [[rule.mirror, ['spec', 'http', ri, 'mirror', 'host']] as [IstioHost, PathSegment[]]] : []),
        ...(rule.mirrors ?? []).map((m, mi): [IstioHost, PathSegment[]] => [m.destination, ['spec', 'http', ri, 'mirrors', mi, 'destination', 'host']]),
      ];
      for (const [d, path] of dests) {
        const host = resolveIstioHost(d.host, ns);
        if (!byHost(host)) diag(l, path, 'dangling-reference', `destination "${d.host}" (${host}) is not a Service; requests routed there fail (mirrors to it are dropped)`);
      }
    });
  }
  return out;
}

type IstioHost = { host: string };

