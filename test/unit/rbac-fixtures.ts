// Shared builders for the rbac-*.test.ts tables.
import type { AuthorizationPolicyResource, AuthorizationPolicySpec, AuthorizationRule } from '../../src/config/resources.js';
import type { HttpAttributes, RequestAttributes } from '../../src/rbac/index.js';
import { compilePolicy, type CompiledPolicy } from '../../src/rbac/index.js';

export const ROOT = 'istio-system';
export const CLIENT = 'cluster.local/ns/client-ns/sa/client';
export const OTHER = 'cluster.local/ns/other-ns/sa/other';

export function ap(
  nsName: string,
  spec: AuthorizationPolicySpec,
  annotations?: Record<string, string>,
): AuthorizationPolicyResource {
  const [namespace, name] = nsName.split('/') as [string, string];
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
    spec,
  };
}

export function compiled(nsName: string, spec: AuthorizationPolicySpec, annotations?: Record<string, string>, trustDomain?: string): CompiledPolicy {
  return compilePolicy(ap(nsName, spec, annotations), { rootNamespace: ROOT, ...(trustDomain ? { trustDomain } : {}) });
}

/** An ALLOW policy in server-ns with one rule. */
export function allowRule(rule: AuthorizationRule, nsName = 'server-ns/p'): CompiledPolicy {
  return compiled(nsName, { action: 'ALLOW', rules: [rule] });
}

/** An mTLS connection from CLIENT at 10.0.1.5 to 10.0.2.7:8080. */
export function conn(over: Partial<RequestAttributes> = {}): RequestAttributes {
  return {
    sourceIp: '10.0.1.5',
    sourcePrincipal: CLIENT,
    destinationIp: '10.0.2.7',
    destinationPort: 8080,
    ...over,
  };
}

export const plaintext = (over: Partial<RequestAttributes> = {}): RequestAttributes => {
  const a = conn(over);
  delete a.sourcePrincipal;
  return a;
};

/** A request `GET /api/items` to `shop.example.com` over `conn(over)`. */
export function req(http: Partial<HttpAttributes> = {}, over: Partial<RequestAttributes> = {}): RequestAttributes {
  return {
    ...conn(over),
    http: { method: 'GET', path: '/api/items', host: 'shop.example.com', headers: {}, ...http },
  };
}
