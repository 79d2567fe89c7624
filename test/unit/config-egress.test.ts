// ServiceEntry, DestinationRule and Secret: validation with file/line/field, the model's
// registry entries (auto-allocated VIPs, sticky), and the workload API they become.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { meshFromYaml, validateYaml, yaml } from '../helpers/config.js';
import type { Diagnostic } from '../../src/config/diagnostics.js';
import { b64, issueCert, makeTestCa } from '../helpers/tls-certs.js';
import { buildModel } from '../../src/model/build-model.js';
import { validateSources } from '../../src/config/validate.js';
import { translate } from '../../src/controlplane/translate.js';

function only(ds: Diagnostic[], code: string, severity: 'error' | 'warning' = 'error'): Diagnostic {
  const found = ds.filter((d) => d.code === code && d.severity === severity);
  assert.equal(found.length, 1, `expected one ${severity} ${code}, got: ${JSON.stringify(ds, null, 1)}`);
  return found[0]!;
}

const se = (body: string, api = 'networking.istio.io/v1') => yaml`
  apiVersion: ${api}
  kind: ServiceEntry
  metadata:
    name: partner
    namespace: egress
  spec:
${body.split('\n').map((l) => '    ' + l).join('\n')}
`;

const seCases: { name: string; text: string; code: string; severity?: 'error' | 'warning'; line: number; path?: string; message: RegExp }[] = [
  { name: 'unknown resolution', text: se('hosts: [api.partner.example]\nports: [{number: 443, name: https, protocol: HTTPS}]\nresolution: DNZ'),
    code: 'bad-value', line: 9, path: 'spec.resolution', message: /"DNZ" is not one of NONE, STATIC, DNS.*did you mean "DNS"/ },
  { name: 'no ports', text: se('hosts: [api.partner.example]\nresolution: DNS'),
    code: 'missing-field', line: 7, path: 'spec.ports', message: /at least one port/ },
  { name: 'DNS resolution with a wildcard host and no endpoints', text: se('hosts: ["*.partner.example"]\nports: [{number: 443, name: https, protocol: HTTPS}]\nresolution: DNS'),
    code: 'bad-host', line: 7, path: 'spec.hosts[0]', message: /wildcard host "\*\.partner\.example" cannot be resolved/ },
  { name: 'unknown protocol with suggestion', text: se('hosts: [a.example]\nports: [{number: 80, name: web, protocol: HTPP}]\nresolution: DNS'),
    code: 'bad-value', line: 8, path: 'spec.ports[0].protocol', message: /did you mean "HTTP"/ },
  { name: 'STATIC without endpoints', text: se('hosts: [a.example]\nports: [{number: 80, name: web}]\nresolution: STATIC'),
    code: 'missing-field', line: 7, path: 'spec.endpoints', message: /STATIC needs endpoints/ },
  { name: 'a name as a STATIC endpoint', text: se('hosts: [a.example]\nports: [{number: 80, name: web}]\nresolution: STATIC\nendpoints: [{address: db.example}]'),
    code: 'bad-ip', line: 10, path: 'spec.endpoints[0].address', message: /host names as endpoints need resolution DNS/ },
  { name: 'endpoints and workloadSelector', text: se('hosts: [a.example]\nports: [{number: 80, name: web}]\nresolution: STATIC\nendpoints: [{address: 192.0.2.1}]\nworkloadSelector: {labels: {app: x}}'),
    code: 'conflict', line: 11, path: 'spec.workloadSelector', message: /not both/ },
  { name: 'endpoint port naming no port', text: se('hosts: [a.example]\nports: [{number: 80, name: web}]\nresolution: STATIC\nendpoints: [{address: 192.0.2.1, ports: {http: 8080}}]'),
    code: 'dangling-reference', line: 10, path: 'spec.endpoints[0].ports.http', message: /"http" is not the name of a port/ },
  { name: 'an IP as host', text: se('hosts: [192.0.2.1]\nports: [{number: 80, name: web}]'),
    code: 'bad-host', line: 7, path: 'spec.hosts[0]', message: /is an IP address/ },
  { name: 'bad exportTo', text: se('hosts: [a.example]\nports: [{number: 80, name: web}]\nexportTo: ["*", "."]'),
    code: 'conflict', line: 9, path: 'spec.exportTo[0]', message: /"\*" must be the only exportTo value/ },
  { name: 'duplicate port number', text: se('hosts: [a.example]\nports: [{number: 80, name: web}, {number: 80, name: web2}]'),
    code: 'duplicate', line: 8, path: 'spec.ports[1].number', message: /port 80 is listed twice/ },
  { name: 'port without name (v1beta1)', text: se('hosts: [a.example]\nports: [{number: 80}]', 'networking.istio.io/v1beta1'),
    code: 'missing-field', line: 8, path: 'spec.ports[0]', message: /missing required field "name"/ },
  { name: 'CIDR address is a warning', text: se('hosts: [a.example]\naddresses: [192.0.2.0/24]\nports: [{number: 80, name: web}]'),
    code: 'cidr-address', severity: 'warning', line: 8, path: 'spec.addresses[0]', message: /is a range, not a VIP/ },
];

for (const c of seCases) {
  test(`ServiceEntry validation: ${c.name}`, () => {
    const { diagnostics } = validateYaml(c.text);
    const d = only(diagnostics, c.code, c.severity ?? 'error');
    assert.equal(d.file, 'test.yaml');
    assert.equal(d.line, c.line, JSON.stringify(d));
    if (c.path) assert.equal(d.path, c.path);
    assert.equal(d.resource, 'ServiceEntry egress/partner');
    assert.match(d.message, c.message);
  });
}

test('a valid ServiceEntry has no diagnostics', () => {
  const { diagnostics, set } = validateYaml(se('hosts: [api.partner.example]\nports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}]\nlocation: MESH_EXTERNAL\nresolution: DNS\nexportTo: ["."]'));
  assert.deepEqual(diagnostics, []);
  assert.equal(set.ofKind('ServiceEntry').length, 1);
});

const dr = (body: string) => yaml`
  apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata:
    name: partner
    namespace: egress
  spec:
    host: api.partner.example
${body.split('\n').map((l) => '    ' + l).join('\n')}
`;

const drCases: { name: string; text: string; code: string; severity?: 'error' | 'warning'; path: string; message: RegExp }[] = [
  { name: 'subset without labels', text: dr('subsets: [{name: v1}]'), code: 'subset-without-labels', severity: 'warning', path: 'spec.subsets[0]', message: /selects every endpoint/ },
  { name: 'duplicate subset', text: dr('subsets: [{name: v1, labels: {v: "1"}}, {name: v1, labels: {v: "2"}}]'), code: 'duplicate', path: 'spec.subsets[1].name', message: /defined twice/ },
  { name: 'simple and consistentHash', text: dr('trafficPolicy:\n  loadBalancer: {simple: ROUND_ROBIN, consistentHash: {useSourceIp: true}}'), code: 'conflict', path: 'spec.trafficPolicy.loadBalancer', message: /not both/ },
  { name: 'consistentHash without key', text: dr('trafficPolicy:\n  loadBalancer: {consistentHash: {minimumRingSize: 10}}'), code: 'missing-field', path: 'spec.trafficPolicy.loadBalancer.consistentHash', message: /exactly one key/ },
  { name: 'bad duration', text: dr('trafficPolicy:\n  outlierDetection: {interval: 10 seconds}'), code: 'bad-duration', path: 'spec.trafficPolicy.outlierDetection.interval', message: /not a duration/ },
  { name: 'MUTUAL without credentials', text: dr('trafficPolicy:\n  tls: {mode: MUTUAL}'), code: 'missing-field', path: 'spec.trafficPolicy.tls', message: /needs a client certificate/ },
  { name: 'file paths', text: dr('trafficPolicy:\n  tls: {mode: SIMPLE, caCertificates: /etc/ca.pem}'), code: 'unsupported', path: 'spec.trafficPolicy.tls.caCertificates', message: /do not read certificate files/ },
  { name: 'ISTIO_MUTUAL with a credential', text: dr('trafficPolicy:\n  tls: {mode: ISTIO_MUTUAL, credentialName: x}'), code: 'conflict', path: 'spec.trafficPolicy.tls.credentialName', message: /ISTIO_MUTUAL uses the mesh/ },
  { name: 'bad tls mode', text: dr('trafficPolicy:\n  tls: {mode: SIMPEL}'), code: 'bad-value', path: 'spec.trafficPolicy.tls.mode', message: /did you mean "SIMPLE"/ },
  { name: 'port level duplicate', text: dr('trafficPolicy:\n  portLevelSettings: [{port: {number: 80}}, {port: {number: 80}}]'), code: 'duplicate', path: 'spec.trafficPolicy.portLevelSettings[1].port.number', message: /port 80 has settings twice/ },
  { name: 'a connectionPool field not applied', text: dr('trafficPolicy:\n  connectionPool: {tcp: {maxConnections: 10, maxConnectionDuration: 30s}}'), code: 'not-applied', severity: 'warning', path: 'spec.trafficPolicy.connectionPool.tcp.maxConnectionDuration', message: /not applied by Ambit/ },
];

test('DestinationRule validation: what Ambit applies draws no warning', () => {
  const { diagnostics } = validateYaml(dr('trafficPolicy:\n  loadBalancer: {consistentHash: {httpHeaderName: x-user}}\n  connectionPool: {tcp: {maxConnections: 10, connectTimeout: 1s}, http: {http1MaxPendingRequests: 1, http2MaxRequests: 5, maxRequestsPerConnection: 3, idleTimeout: 2s, maxRetries: 1}}\n  outlierDetection: {consecutive5xxErrors: 3, consecutiveGatewayErrors: 2, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50}\nsubsets: [{name: v1, labels: {version: v1}}]'));
  assert.deepEqual(diagnostics.filter((d) => d.resource?.startsWith('DestinationRule') && d.code !== 'dangling-reference'), []);
});

for (const c of drCases) {
  test(`DestinationRule validation: ${c.name}`, () => {
    const { diagnostics } = validateYaml(c.text);
    const d = only(diagnostics, c.code, c.severity ?? 'error');
    assert.equal(d.path, c.path);
    assert.equal(d.resource, 'DestinationRule egress/partner');
    assert.ok(d.line > 7, `line ${d.line}`);
    assert.match(d.message, c.message);
  });
}

test('Secret validation: key matches certificate, expiry warned, nothing of the material in any message', async () => {
  const ca = await makeTestCa();
  const good = await issueCert(ca, { commonName: 'client', usage: 'client' });
  const other = await issueCert(ca, { commonName: 'other', usage: 'client' });
  const soon = await issueCert(ca, { commonName: 'soon', usage: 'client', notAfterDays: 3 });
  const expired = await issueCert(ca, { commonName: 'old', usage: 'client', notAfterDays: -2, notBeforeDays: -10 });
  const secret = (name: string, data: string) =>
    `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: egress}\ntype: kubernetes.io/tls\ndata:\n${data}\n`;
  const text = [
    secret('ok', `  tls.crt: ${b64(good.certPem)}\n  tls.key: ${b64(good.keyPem)}\n  ca.crt: ${b64(ca.certPem)}`),
    secret('mismatch', `  tls.crt: ${b64(good.certPem)}\n  tls.key: ${b64(other.keyPem)}`),
    secret('soon', `  tls.crt: ${b64(soon.certPem)}\n  tls.key: ${b64(soon.keyPem)}`),
    secret('expired', `  tls.crt: ${b64(expired.certPem)}\n  tls.key: ${b64(expired.keyPem)}`),
    secret('nokey', `  tls.crt: ${b64(good.certPem)}`),
    secret('notb64', `  tls.crt: "not base64!"\n  tls.key: ${b64(good.keyPem)}`),
  ].join('---\n');
  const { diagnostics, set } = validateYaml(text);
  const by = (name: string) => diagnostics.filter((d) => d.resource === `Secret egress/${name}`);
  assert.deepEqual(by('ok'), []);
  assert.equal(only(by('mismatch'), 'key-mismatch').path, 'data["tls.key"]');
  assert.match(only(by('soon'), 'expires-soon', 'warning').message, /expires in [23] days/);
  assert.match(only(by('expired'), 'expired', 'warning').message, /expired on/);
  assert.equal(only(by('nokey'), 'missing-field').path, 'data["tls.key"]');
  assert.equal(only(by('notb64'), 'bad-base64').path, 'data["tls.crt"]');
  for (const d of diagnostics) {
    for (const secretText of [good.keyPem, other.keyPem, good.certPem]) {
      const body = secretText.split('\n')[1]!;
      assert.ok(!d.message.includes(body.slice(0, 20)) && !d.message.includes(b64(secretText).slice(0, 20)), `material leaked in ${d.message}`);
    }
  }
  assert.deepEqual(set.ofKind('Secret').map((s) => s.metadata.name).sort(), ['expired', 'ok', 'soon']);
});

const mesh = yaml`
  apiVersion: v1
  kind: Namespace
  metadata: {name: egress, labels: {istio.io/dataplane-mode: ambient}}
  ---
  apiVersion: gateway.networking.k8s.io/v1
  kind: Gateway
  metadata: {name: egress-waypoint, namespace: egress}
  spec:
    gatewayClassName: istio-waypoint
    listeners: [{name: mesh, port: 15008, protocol: HBONE}]
  ---
  apiVersion: networking.istio.io/v1
  kind: ServiceEntry
  metadata: {name: partner, namespace: egress, labels: {istio.io/use-waypoint: egress-waypoint}}
  spec:
    hosts: [api.partner.example, www.partner.example]
    ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}]
    resolution: DNS
  ---
  apiVersion: networking.istio.io/v1
  kind: ServiceEntry
  metadata: {name: db, namespace: egress}
  spec:
    hosts: [db.partner.example]
    addresses: [192.0.2.10]
    ports: [{number: 5432, name: pg, protocol: TCP}]
    resolution: STATIC
    endpoints: [{address: 198.51.100.7, ports: {pg: 6432}}, {address: 198.51.100.8}]
  ---
  apiVersion: networking.istio.io/v1
  kind: ServiceEntry
  metadata: {name: wild, namespace: egress}
  spec:
    hosts: ["*.cdn.example"]
    ports: [{number: 443, name: tls, protocol: TLS}]
    resolution: NONE
`;

test('ServiceEntries become registry entries: VIPs auto-allocated from 240.240.0.0/16, explicit ones kept, wildcards without', () => {
  const m = meshFromYaml(mesh);
  assert.deepEqual(m.diagnostics.filter((d) => d.severity === 'error'), []);
  const e = (host: string) => m.model!.serviceEntry('egress', host)!;
  assert.equal(e('api.partner.example').vip, '240.240.0.1');
  assert.equal(e('www.partner.example').vip, '240.240.0.2');
  assert.equal(e('db.partner.example').vip, '192.0.2.10');
  assert.equal(e('*.cdn.example').vip, undefined);
  assert.deepEqual(e('api.partner.example').waypoint, { namespace: 'egress', name: 'egress-waypoint' });
  assert.equal(e('db.partner.example').waypoint, undefined);
});

test('auto-allocated VIPs are sticky: a new ServiceEntry sorting first does not renumber the others', () => {
  const first = validateSources([{ file: 'a.yaml', text: mesh }]);
  const m1 = buildModel(first.set).model;
  const more = validateSources([{ file: 'a.yaml', text: mesh + '---\n' + yaml`
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: aaa, namespace: aaa}
    spec: {hosts: [first.example], ports: [{number: 80, name: http}], resolution: DNS}
  ` }]);
  const m2 = buildModel(more.set, { previous: m1 }).model;
  assert.equal(m2.serviceEntry('egress', 'api.partner.example')!.vip, '240.240.0.1');
  assert.equal(m2.serviceEntry('egress', 'www.partner.example')!.vip, '240.240.0.2');
  assert.equal(m2.serviceEntry('aaa', 'first.example')!.vip, '240.240.0.3');
  const fresh = buildModel(more.set).model;
  assert.equal(fresh.serviceEntry('aaa', 'first.example')!.vip, '240.240.0.1', 'without history, allocation is in namespace/name/host order');
});

test('the workload API: a Service per host with the waypoint, endpoint Workloads for inline endpoints and DNS hosts', () => {
  const m = meshFromYaml(mesh);
  const api = translate(m.model!);
  const svc = api.services.find((s) => s.hostname === 'api.partner.example')!;
  assert.equal(svc.name, 'partner');
  assert.equal(svc.namespace, 'egress');
  assert.deepEqual(svc.addresses, [{ network: '', address: '240.240.0.1' }]);
  assert.deepEqual(svc.ports, [{ servicePort: 80, targetPort: 443 }]);
  assert.ok(svc.waypoint?.address, 'bound to the egress waypoint');
  const dnsHost = api.workloads.find((w) => w.uid === 'Kubernetes/networking.istio.io/ServiceEntry/egress/partner/api.partner.example')!;
  assert.equal(dnsHost.hostname, 'api.partner.example');
  assert.deepEqual(dnsHost.addresses, []);
  assert.equal(dnsHost.tunnelProtocol, 'NONE');
  assert.deepEqual(dnsHost.services, { 'egress/api.partner.example': { ports: [{ servicePort: 80, targetPort: 443 }] } });
  const ep = api.workloads.find((w) => w.uid === 'Kubernetes/networking.istio.io/ServiceEntry/egress/db/198.51.100.7')!;
  assert.deepEqual(ep.addresses, ['198.51.100.7']);
  assert.deepEqual(ep.services['egress/db.partner.example'], { ports: [{ servicePort: 5432, targetPort: 6432 }] });
  const ep2 = api.workloads.find((w) => w.uid === 'Kubernetes/networking.istio.io/ServiceEntry/egress/db/198.51.100.8')!;
  assert.deepEqual(ep2.services['egress/db.partner.example'], { ports: [{ servicePort: 5432, targetPort: 5432 }] });
  const wild = api.services.find((s) => s.hostname === '*.cdn.example')!;
  assert.deepEqual(wild.addresses, []);
});

test('set-wide: policy and route targets, DestinationRule hosts, Secrets in the waypoint namespace, missing subsets', () => {
  const text = mesh + '---\n' + yaml`
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: p, namespace: egress}
    spec:
      targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: nope}, {kind: ServiceEntry, name: partner}]
      rules: [{to: [{operation: {methods: [GET]}}]}]
    ---
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: r, namespace: egress}
    spec:
      parentRefs: [{kind: ServiceEntry, group: networking.istio.io, name: partner}, {kind: ServiceEntry, group: networking.istio.io, name: gone}]
    ---
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: partner-tls, namespace: egress}
    spec:
      host: api.partner.example
      trafficPolicy: {tls: {mode: MUTUAL, credentialName: partner-client, sni: api.partner.example}}
    ---
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: nothing, namespace: egress}
    spec: {host: nowhere.example}
    ---
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: vs, namespace: egress}
    spec:
      hosts: [api.partner.example]
      http: [{route: [{destination: {host: api.partner.example, subset: v9}}]}]
  `;
  const { diagnostics } = validateYaml(text);
  const warn = diagnostics.filter((d) => d.severity === 'warning');
  const has = (resource: string, code: string, re: RegExp) => assert.ok(warn.some((d) => d.resource === resource && d.code === code && re.test(d.message)), `${resource} ${code} ${re}: ${JSON.stringify(warn, null, 1)}`);
  has('AuthorizationPolicy egress/p', 'dangling-reference', /ServiceEntry "egress\/nope" does not exist/);
  has('HTTPRoute egress/r', 'dangling-reference', /ServiceEntry "egress\/gone"/);
  has('DestinationRule egress/partner-tls', 'dangling-reference', /Secret "egress\/partner-client" does not exist/);
  has('DestinationRule egress/nothing', 'dangling-reference', /names no Service or ServiceEntry/);
  has('VirtualService egress/vs', 'dangling-reference', /subset "v9" of api\.partner\.example is defined by no DestinationRule/);
  assert.ok(!warn.some((d) => d.resource === 'HTTPRoute egress/r' && /"egress\/partner"/.test(d.message)));
});
