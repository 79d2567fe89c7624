// Gateway API GRPCRoute as an HTTPRoute (pure): gRPC is HTTP/2 with the path
// `/<package.Service>/<Method>`, so a method match is a path match, as Istio's conversion does:
//   service + method (Exact) -> path Exact "/S/M";  service only -> PathPrefix "/S/";
//   method only -> RegularExpression "/[^/]+/M";  type RegularExpression -> RegularExpression
//   "/(S|[^/]+)/(M|[^/]+)". Header matches, header filters and weighted backends carry over;
// a rule without matches matches every call. Hostnames and parentRefs are kept as they are.
import type { HTTPRouteMatch, HTTPRouteResource, HTTPRouteRule } from '../config/resources.js';
import type { GRPCMethodMatch, GRPCRouteResource } from '../config/ingress-resources.js';

export function grpcRouteAsHttpRoute(r: GRPCRouteResource): HTTPRouteResource {
  const rules: HTTPRouteRule[] = (r.spec.rules ?? []).map((rule) => ({
    ...(rule.name ? { name: rule.name } : {}),
    ...(rule.matches?.length ? { matches: rule.matches.map((m): HTTPRouteMatch => ({ ...(m.method ? { path: methodPath(m.method) } : {}), ...(m.headers?.length ? { headers: m.headers } : {}) })) } : {}),
    filters: (rule.filters ?? []).filter((f) => f.type === 'RequestHeaderModifier' || f.type === 'ResponseHeaderModifier') as HTTPRouteRule['filters'],
    backendRefs: (rule.backendRefs ?? []).map((b) => ({ ...(b.group !== undefined ? { group: b.group } : {}), ...(b.kind !== undefined ? { kind: b.kind } : {}), name: b.name, ...(b.namespace ? { namespace: b.namespace } : {}), ...(b.port ? { port: b.port } : {}), ...(b.weight !== undefined ? { weight: b.weight } : {}) })),
    // gRPC calls are not retried on HTTP statuses (a gRPC error is a 200 with grpc-status).
    retry: { attempts: 2, codes: [] },
  }));
  return {
    apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute',
    metadata: { ...r.metadata, name: r.metadata.name, annotations: { ...(r.metadata.annotations ?? {}), 'ambit.dev/converted-from': 'GRPCRoute' } },
    spec: { ...(r.spec.parentRefs ? { parentRefs: r.spec.parentRefs } : {}), ...(r.spec.hostnames ? { hostnames: r.spec.hostnames } : {}), rules },
  };
}

export function methodPath(m: GRPCMethodMatch): { type: 'Exact' | 'PathPrefix' | 'RegularExpression'; value: string } {
  if ((m.type ?? 'Exact') === 'RegularExpression') return { type: 'RegularExpression', value: `/${m.service ?? '[^/]+'}/${m.method ?? '[^/]+'}` };
  if (m.service && m.method) return { type: 'Exact', value: `/${m.service}/${m.method}` };
  if (m.service) return { type: 'PathPrefix', value: `/${m.service}/` };
  return { type: 'RegularExpression', value: `/[^/]+/${escapeRegex(m.method ?? '')}` };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
