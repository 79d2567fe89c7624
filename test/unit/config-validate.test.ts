import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateYaml, yaml } from '../helpers/config.js';
import type { Diagnostic } from '../../src/config/diagnostics.js';

function one(ds: Diagnostic[], code: string): Diagnostic {
  const found = ds.filter((d) => d.code === code);
  assert.equal(found.length, 1, `expected one ${code}, got: ${JSON.stringify(ds, null, 1)}`);
  return found[0]!;
}

const policy = (body: string) => yaml`
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata:
    name: p
    namespace: shop
  spec:
${body.split('\n').map((l) => '    ' + l).join('\n')}
`;

// Each case: YAML, expected code, expected line, path, and a fragment of the message.
const cases: { name: string; text: string; code: string; line: number; path?: string; message: RegExp }[] = [
  {
    name: 'bad CIDR in ipBlocks',
    text: policy('rules:\n- from:\n  - source:\n      ipBlocks: ["10.0.0.0/8", "10.1.2.300/24"]'),
    code: 'bad-cidr', line: 10, path: 'spec.rules[0].from[0].source.ipBlocks[1]', message: /"10\.1\.2\.300\/24" is not an IP address or CIDR/,
  },
  {
    name: 'port out of range in operation',
    text: policy('rules:\n- to:\n  - operation:\n      ports: ["70000"]'),
    code: 'bad-port', line: 10, path: 'spec.rules[0].to[0].operation.ports[0]', message: /not a port number/,
  },
  {
    name: 'unknown field with suggestion',
    text: policy('rules:\n- from:\n  - source:\n      principles: ["cluster.local/ns/a/sa/b"]'),
    code: 'unknown-field', line: 10, path: 'spec.rules[0].from[0].source.principles', message: /did you mean "principals"/,
  },
  {
    name: 'malformed principal',
    text: policy('rules:\n- from:\n  - source:\n      principals: ["cluster.local/sa/b"]'),
    code: 'bad-principal', line: 10, path: 'spec.rules[0].from[0].source.principals[0]', message: /<trust-domain>\/ns\/<namespace>\/sa\/<service-account>/,
  },
  {
    name: 'selector of the wrong type',
    text: policy('selector:\n  - app: x'),
    code: 'wrong-type', line: 8, path: 'spec.selector', message: /expected a workload selector with matchLabels, got a list/,
  },
  {
    name: 'matchLabels value not a string',
    text: policy('selector:\n  matchLabels:\n    version: 2'),
    code: 'wrong-type', line: 9, path: 'spec.selector.matchLabels.version', message: /quote it: "2"/,
  },
  {
    name: 'action not in the enum',
    text: policy('action: ALLOWED'),
    code: 'bad-value', line: 7, path: 'spec.action', message: /did you mean "ALLOW"/,
  },
  {
    name: 'lower-case method never matches',
    text: policy('rules:\n- to:\n  - operation:\n      methods: ["get"]'),
    code: 'bad-method', line: 10, path: 'spec.rules[0].to[0].operation.methods[0]', message: /write "GET"/,
  },
  {
    name: 'selector and targetRefs together',
    text: policy('selector: {matchLabels: {app: a}}\ntargetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: w}]'),
    code: 'conflict', line: 7, path: 'spec.selector', message: /not both/,
  },
  {
    name: 'unknown when key',
    text: policy('rules:\n- when:\n  - key: source.ipaddress\n    values: ["1.2.3.4"]'),
    code: 'unknown-key', line: 9, path: 'spec.rules[0].when[0].key', message: /not a condition key/,
  },
  {
    name: 'path without leading slash',
    text: policy('rules:\n- to:\n  - operation:\n      paths: ["api/v1"]'),
    code: 'bad-path', line: 10, path: 'spec.rules[0].to[0].operation.paths[0]', message: /start with "\/"/,
  },
  {
    name: 'wildcard in the middle',
    text: policy('rules:\n- from:\n  - source:\n      namespaces: ["a*b"]'),
    code: 'bad-value', line: 10, path: 'spec.rules[0].from[0].source.namespaces[0]', message: /"\*" may appear only at the start or the end/,
  },
  {
    name: 'service port out of range',
    text: yaml`
      apiVersion: v1
      kind: Service
      metadata: {name: s, namespace: shop}
      spec:
        ports:
        - port: 80
          targetPort: 99999`,
    code: 'out-of-range', line: 7, path: 'spec.ports[0].targetPort', message: /out of range/,
  },
  {
    name: 'quoted numeric targetPort',
    text: yaml`
      apiVersion: v1
      kind: Service
      metadata: {name: s, namespace: shop}
      spec:
        ports:
        - port: 80
          targetPort: "8080"`,
    code: 'wrong-type', line: 7, path: 'spec.ports[0].targetPort', message: /without quotes/,
  },
  {
    name: 'wrong apiVersion',
    text: yaml`
      apiVersion: security.istio.io/v2
      kind: PeerAuthentication
      metadata: {name: p, namespace: shop}
      spec: {mtls: {mode: STRICT}}`,
    code: 'bad-api-version', line: 1, path: 'apiVersion', message: /security\.istio\.io\/v1 or security\.istio\.io\/v1beta1/,
  },
  {
    name: 'unknown kind is reported',
    text: yaml`
      apiVersion: networking.istio.io/v1
      kind: Sidecar
      metadata: {name: s, namespace: shop}`,
    code: 'unknown-kind', line: 2, path: 'kind', message: /does not read kind "Sidecar"/,
  },
  {
    name: 'dangling use-waypoint',
    text: yaml`
      apiVersion: v1
      kind: Namespace
      metadata:
        name: shop
        labels: {istio.io/use-waypoint: wp}`,
    code: 'dangling-reference', line: 1, message: /waypoint "shop\/wp" does not exist/,
  },
  {
    name: 'bad data-plane mode label',
    text: yaml`
      apiVersion: v1
      kind: Namespace
      metadata:
        name: shop
        labels: {istio.io/dataplane-mode: ambiant}`,
    code: 'bad-label', line: 5, message: /use "ambient"/,
  },
  {
    name: 'deployment selector mismatch',
    text: yaml`
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: d, namespace: shop}
      spec:
        selector: {matchLabels: {app: a}}
        template:
          metadata: {labels: {app: b}}
          spec: {containers: [{name: c, command: [sleep, "1"]}]}`,
    code: 'selector-mismatch', line: 5, message: /does not match the template's labels/,
  },
  {
    name: 'waypoint without HBONE listener',
    text: yaml`
      apiVersion: gateway.networking.k8s.io/v1
      kind: Gateway
      metadata: {name: wp, namespace: shop}
      spec:
        gatewayClassName: istio-waypoint
        listeners: [{name: http, port: 80, protocol: HTTP}]`,
    code: 'missing-listener', line: 6, message: /protocol: HBONE/,
  },
  {
    name: 'HTTPRoute bad duration',
    text: yaml`
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: r, namespace: shop}
      spec:
        parentRefs: [{group: "", kind: Service, name: s}]
        rules:
        - timeouts: {request: 10sec}`,
    code: 'bad-duration', line: 7, path: 'spec.rules[0].timeouts.request', message: /not a duration/,
  },
  {
    name: 'HTTPRoute bad regex',
    text: yaml`
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: r, namespace: shop}
      spec:
        rules:
        - matches: [{path: {type: RegularExpression, value: "/a(b"}}]`,
    code: 'bad-regex', line: 6, message: /regular expression/,
  },
  {
    name: 'YAML syntax error',
    text: 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: [unclosed\n',
    code: 'syntax', line: 5, message: /./,
  },
  {
    name: 'remote JWKS is refused',
    text: yaml`
      apiVersion: security.istio.io/v1
      kind: RequestAuthentication
      metadata: {name: jwt, namespace: shop}
      spec:
        jwtRules:
        - issuer: https://issuer.example
          jwksUri: https://issuer.example/jwks`,
    code: 'unsupported', line: 7, path: 'spec.jwtRules[0].jwksUri', message: /local file/,
  },
];

for (const c of cases) {
  test(`validation: ${c.name}`, () => {
    const { diagnostics } = validateYaml(c.text);
    const d = one(diagnostics, c.code);
    assert.equal(d.severity, 'error');
    assert.equal(d.file, 'test.yaml');
    assert.equal(d.line, c.line, `line of ${JSON.stringify(d)}`);
    if (c.path) assert.equal(d.path, c.path);
    assert.match(d.message, c.message);
  });
}

test('validation reports every error of a file at once, with the resource named', () => {
  const text = policy('action: ALLOWED\nrules:\n- from:\n  - source:\n      ipBlocks: ["nope"]\n  to:\n  - operation:\n      ports: ["0"]');
  const { diagnostics, set } = validateYaml(text);
  assert.deepEqual(diagnostics.map((d) => d.code).sort(), ['bad-cidr', 'bad-port', 'bad-value']);
  assert.ok(diagnostics.every((d) => d.resource === 'AuthorizationPolicy shop/p'));
  assert.equal(set.size, 0, 'an invalid resource is not kept');
});

test('a duplicate resource names the first definition', () => {
  const ns = 'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: x}\n';
  const { diagnostics } = validateYaml(`${ns}---\n${ns}`);
  const d = one(diagnostics, 'duplicate');
  assert.equal(d.line, 5);
  assert.match(d.message, /defined twice \(first at test\.yaml:1\)/);
});

test('real Kubernetes manifests with fields Ambit does not use still validate', () => {
  const { diagnostics } = validateYaml(yaml`
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: shop, labels: {app: web}}
    spec:
      replicas: 2
      strategy: {type: RollingUpdate}
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          containers:
          - name: web
            image: nginx:1.27
            resources: {limits: {cpu: 100m}}
            readinessProbe: {httpGet: {path: /, port: 80}}
            ports: [{containerPort: 80, name: http}]
          volumes: [{name: x, emptyDir: {}}]`);
  assert.deepEqual(diagnostics, []);
});

test('a List is read item by item', () => {
  const { diagnostics, set } = validateYaml(yaml`
    apiVersion: v1
    kind: List
    items:
    - apiVersion: v1
      kind: Namespace
      metadata: {name: a}
    - apiVersion: v1
      kind: Namespace
      metadata: {name: b, labels: {istio.io/dataplane-mode: bogus}}`);
  assert.equal(set.size, 1);
  assert.equal(one(diagnostics, 'bad-label').line, 9);
});

test('warnings are separate from errors', () => {
  const { diagnostics, set } = validateYaml(yaml`
    apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata: {name: p, namespace: shop}
    spec: {mtls: {mode: DISABLE}}`);
  assert.equal(set.size, 1);
  const d = one(diagnostics, 'disable-is-permissive');
  assert.equal(d.severity, 'warning');
});
