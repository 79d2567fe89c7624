import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateYaml, yaml } from '../helpers/config.js';
import type { Diagnostic } from '../../src/config/diagnostics.js';

function one(ds: Diagnostic[], code: string, severity: 'error' | 'warning' = 'error'): Diagnostic {
  const found = ds.filter((d) => d.code === code && d.severity === severity);
  assert.equal(found.length, 1, `expected one ${severity} ${code}, got: ${JSON.stringify(ds, null, 1)}`);
  return found[0]!;
}

const vs = (http: string, apiVersion = 'networking.istio.io/v1') => yaml`
  apiVersion: ${apiVersion}
  kind: VirtualService
  metadata: {name: v, namespace: shop}
  spec:
    hosts: [web]
    http:
${http.split('\n').map((l) => '    ' + l).join('\n')}
`;

const cases: { name: string; text: string; code: string; line: number; path: string; message: RegExp; severity?: 'error' | 'warning' }[] = [
  { name: 'bad timeout', text: vs('- timeout: 10 seconds\n  route: [{destination: {host: web}}]'), code: 'bad-duration', line: 7, path: 'spec.http[0].timeout', message: /not a duration/ },
  { name: 'bad regex in uri', text: vs('- match:\n  - uri: {regex: "/a(b"}\n  route: [{destination: {host: web}}]'), code: 'bad-regex', line: 8, path: 'spec.http[0].match[0].uri.regex', message: /regular expression/ },
  { name: 'lookahead is not RE2 (the proxies could not run it)', text: vs('- match:\n  - uri: {regex: "/(?=admin).*"}\n  route: [{destination: {host: web}}]'), code: 'bad-regex', line: 8, path: 'spec.http[0].match[0].uri.regex', message: /not a valid RE2 regular expression/ },
  { name: 'a backreference is not RE2', text: vs('- match:\n  - headers:\n      x-a: {regex: "(a)\\\\1"}\n  route: [{destination: {host: web}}]'), code: 'bad-regex', line: 9, path: 'spec.http[0].match[0].headers.x-a.regex', message: /RE2/ },
  { name: 'two kinds in one string match', text: vs('- match:\n  - uri: {exact: /a, prefix: /b}\n  route: [{destination: {host: web}}]'), code: 'conflict', line: 8, path: 'spec.http[0].match[0].uri', message: /not exact and prefix/ },
  { name: 'upper-case header name', text: vs('- match:\n  - headers:\n      X-User: {exact: bob}\n  route: [{destination: {host: web}}]'), code: 'bad-header', line: 9, path: 'spec.http[0].match[0].headers.X-User', message: /write "x-user"/ },
  { name: 'fault percentage out of range', text: vs('- fault:\n    abort: {httpStatus: 503, percentage: {value: 150}}\n  route: [{destination: {host: web}}]'), code: 'out-of-range', line: 8, path: 'spec.http[0].fault.abort.percentage.value', message: /not a percentage/ },
  { name: 'route and redirect together', text: vs('- redirect: {uri: /x}\n  route: [{destination: {host: web}}]'), code: 'conflict', line: 7, path: 'spec.http[0].redirect', message: /routes or redirects/ },
  { name: 'rule without route', text: vs('- timeout: 1s'), code: 'missing-field', line: 7, path: 'spec.http[0]', message: /needs route/ },
  { name: 'bad redirect code', text: vs('- redirect: {uri: /x, redirectCode: 200}'), code: 'bad-value', line: 7, path: 'spec.http[0].redirect.redirectCode', message: /not a redirect status/ },
  { name: 'unknown field', text: vs('- route: [{destination: {host: web}}]\n  retry: {attempts: 2}'), code: 'unknown-field', line: 8, path: 'spec.http[0].retry', message: /unknown field "retry"; known fields: .*retries/ },
  { name: 'query prefix unsupported', text: vs('- match:\n  - queryParams:\n      a: {prefix: x}\n  route: [{destination: {host: web}}]'), code: 'unsupported', line: 9, path: 'spec.http[0].match[0].queryParams.a.prefix', message: /exact or regex/ },
  { name: 'fault without percentage warns', text: vs('- fault:\n    delay: {fixedDelay: 5s}\n  route: [{destination: {host: web}}]'), code: 'no-percentage', line: 8, path: 'spec.http[0].fault.delay', message: /no request is delayed/, severity: 'warning' },
  { name: 'a subset no DestinationRule defines warns', text: vs('- route: [{destination: {host: web, subset: v1}}]'), code: 'missing-subset', line: 7, path: 'spec.http[0].route[0].destination.subset', message: /defined by no DestinationRule/, severity: 'warning' },
  { name: 'a bad subset name', text: vs('- route: [{destination: {host: web, subset: V_1}}]'), code: 'bad-value', line: 7, path: 'spec.http[0].route[0].destination.subset', message: /not a valid subset name/ },
];

for (const c of cases) {
  test(`VirtualService validation: ${c.name}`, () => {
    const d = one(validateYaml(c.text).diagnostics, c.code, c.severity ?? 'error');
    assert.equal(d.file, 'test.yaml');
    assert.equal(d.line, c.line, JSON.stringify(d));
    assert.equal(d.path, c.path);
    assert.equal(d.resource, 'VirtualService shop/v');
    assert.match(d.message, c.message);
  });
}

test('VirtualService is read in v1, v1beta1 and v1alpha3; other versions are refused', () => {
  for (const v of ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']) {
    const { set, diagnostics } = validateYaml(vs('- route: [{destination: {host: web}}]', v));
    assert.equal(set.size, 1, `${v}: ${JSON.stringify(diagnostics)}`);
  }
  assert.equal(one(validateYaml(vs('- route: [{destination: {host: web}}]', 'networking.istio.io/v2')).diagnostics, 'bad-api-version').line, 1);
});

const service = (name: string) => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: shop}\nspec: {ports: [{port: 80}]}\n---\n`;

test('set-wide: dangling destination, HTTPRoute + VirtualService conflict, two VirtualServices', () => {
  const text = service('web') + yaml`
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: r, namespace: shop}
    spec:
      parentRefs: [{group: "", kind: Service, name: web}]
      rules: [{backendRefs: [{name: web, port: 80}]}]
    ---
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: v, namespace: shop}
    spec:
      hosts: [web, api]
      http:
      - route:
        - destination: {host: ghost}
  `;
  const ds = validateYaml(text).diagnostics;
  const conflict = one(ds, 'route-conflict', 'warning');
  assert.equal(conflict.path, 'spec.hosts[0]');
  assert.equal(conflict.line, 17);
  assert.match(conflict.message, /HTTPRoute shop\/r/);
  const dangling = ds.filter((d) => d.code === 'dangling-reference' && d.resource === 'VirtualService shop/v');
  assert.deepEqual(dangling.map((d) => [d.path, d.line]), [['spec.hosts[1]', 17], ['spec.http[0].route[0].destination.host', 20]]);
});

test('HTTPRoute: Service parent without group "" warns; ReplacePrefixMatch with an Exact match is an error', () => {
  const ds = validateYaml(yaml`
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: r, namespace: shop}
    spec:
      parentRefs: [{kind: Service, name: web}]
      rules:
      - matches: [{path: {type: Exact, value: /a}}]
        filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]
        backendRefs: [{name: web, port: 80}]
  `).diagnostics;
  assert.equal(one(ds, 'parent-group', 'warning').line, 5);
  const c = one(ds, 'conflict');
  assert.equal(c.path, 'spec.rules[0].filters[0]');
  assert.equal(c.line, 8);
});
