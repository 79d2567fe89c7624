import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { yaml } from '../helpers/config.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ambit-authz-'));
  cpSync('examples/demo', dir, { recursive: true });
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => { out += t; }, err: (t) => { err += t; }, env: {}, cwd: process.cwd() });
  return { code, out, err };
}

async function check(args: string[]) {
  const r = await run(['authz', 'check', '-f', dir, '-o', 'json', ...args]);
  assert.ok(r.code === 0 || r.code === 3, r.err);
  return { code: r.code, json: JSON.parse(r.out) as Record<string, unknown> & { steps: Record<string, unknown>[]; warnings: string[] } };
}

test('authz check: the demo client is allowed by the demo policy, at the ztunnel', async () => {
  const { code, json } = await check(['--from', 'demo/client-0', '--to', 'demo/echo:80']);
  assert.equal(code, 0);
  assert.equal(json.decision, 'ALLOW');
  assert.equal(json.enforcedBy, 'ztunnel');
  assert.equal(json.policy, 'demo/echo-allow-client');
  assert.equal(json.rule, 0);
  assert.deepEqual(json.warnings, []);
});

test('authz check: a pod outside the mesh is a plaintext source and no ALLOW matches it', async () => {
  const { code, json } = await check(['--from', 'legacy/outsider', '--to', 'demo/echo:80']);
  assert.equal(code, 3);
  assert.equal(json.decision, 'DENY');
  assert.equal(json.policy, null);
  assert.match(String(json.reason), /no ALLOW policy matched/);
  assert.equal((json.source as { identity: unknown }).identity, null);
});

test('authz check: text output names the enforcing proxy and the reason', async () => {
  const r = await run(['authz', 'check', '-f', dir, '--from', 'legacy/outsider', '--to', 'demo/echo:80']);
  assert.equal(r.code, 3);
  assert.match(r.out, /^DENY {2}enforced by ztunnel on node-2 \(demo\/echo-v1-0\)/);
  assert.match(r.out, /plaintext, no identity/);
});

test('authz check: STRICT vs PERMISSIVE for a plaintext --from-ip', async () => {
  writeFileSync(join(dir, '30-open.yaml'), yaml`
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: echo-open, namespace: demo}
    spec: {selector: {matchLabels: {app: echo}}, rules: [{}]}`);
  const permissive = await check(['--from-ip', '192.0.2.9', '--to', 'demo/echo:80']);
  assert.equal(permissive.json.decision, 'ALLOW');
  writeFileSync(join(dir, '31-strict.yaml'), yaml`
    apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata: {name: default, namespace: demo}
    spec: {mtls: {mode: STRICT}}`);
  const strict = await check(['--from-ip', '192.0.2.9', '--to', 'demo/echo:80']);
  assert.equal(strict.json.decision, 'DENY');
  assert.equal(strict.json.policy, 'istio-system/istio_converted_static_strict');
  const meshed = await check(['--from', 'demo/client-0', '--to', 'demo/echo:80']);
  assert.equal(meshed.json.decision, 'ALLOW');
  rmSync(join(dir, '30-open.yaml'));
  rmSync(join(dir, '31-strict.yaml'));
});

test('authz check: an L7 DENY at the ztunnel is widened to L4 and the warning says so', async () => {
  writeFileSync(join(dir, '40-deny-delete.yaml'), yaml`
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: no-delete, namespace: demo}
    spec:
      selector: {matchLabels: {app: echo}}
      action: DENY
      rules:
      - from: [{source: {namespaces: [demo]}}]
        to: [{operation: {methods: [DELETE]}}]`);
  const { json } = await check(['--from', 'demo/client-0', '--to', 'demo/echo:80']);
  rmSync(join(dir, '40-deny-delete.yaml'));
  assert.equal(json.decision, 'DENY');
  assert.equal(json.policy, 'demo/no-delete');
  assert.equal(json.rule, 0);
  assert.equal(json.warnings.length, 1);
  assert.match(json.warnings[0]!, /no-delete/);
});

test('authz check: through a waypoint, L7 policy decides per method and the ztunnel sees the waypoint identity', async () => {
  writeFileSync(join(dir, '50-waypoint.yaml'), yaml`
    apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {name: waypoint, namespace: demo}
    spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: echo-l7, namespace: demo, labels: {istio.io/use-waypoint: waypoint}}
    spec: {selector: {app: echo}, ports: [{name: http, port: 80, targetPort: http}]}
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: l7-no-delete, namespace: demo}
    spec:
      targetRefs: [{kind: Service, group: "", name: echo-l7}]
      action: DENY
      rules: [{to: [{operation: {methods: [DELETE]}}]}]
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: echo-allow-waypoint, namespace: demo}
    spec:
      selector: {matchLabels: {app: echo}}
      rules: [{from: [{source: {principals: [cluster.local/ns/demo/sa/waypoint]}}]}]`);
  const get = await check(['--from', 'demo/client-0', '--to', 'demo/echo-l7:80', '--method', 'GET', '--path', '/']);
  const del = await check(['--from', 'demo/client-0', '--to', 'demo/echo-l7:80', '--method', 'DELETE', '--path', '/x']);
  rmSync(join(dir, '50-waypoint.yaml'));
  assert.equal(get.json.decision, 'ALLOW');
  assert.equal(get.json.path, 'waypoint');
  assert.equal(get.json.steps.length, 2);
  assert.equal(get.json.steps[1]!.sourceIdentity, 'spiffe://cluster.local/ns/demo/sa/waypoint');
  assert.equal(del.json.decision, 'DENY');
  assert.equal(del.json.enforcedBy, 'waypoint');
  assert.equal(del.json.policy, 'demo/l7-no-delete');
});

test('authz check: unknown names get a hint listing what exists', async () => {
  const r = await run(['authz', 'check', '-f', dir, '--from', 'demo/nobody', '--to', 'demo/echo:80']);
  assert.equal(r.code, 1);
  assert.match(r.err, /no pod demo\/nobody/);
  assert.match(r.err, /client-0/);
});

test('validate: the bundled demo is valid; -o json lists errors and warnings', async () => {
  const r = await run(['validate', '-f', 'examples/demo', '-o', 'json']);
  assert.equal(r.code, 0, r.out + r.err);
  const json = JSON.parse(r.out) as { valid: boolean; errors: unknown[] };
  assert.equal(json.valid, true);
  assert.deepEqual(json.errors, []);
});

test('validate: exits 1 with file:line diagnostics on an invalid file', async () => {
  const bad = join(dir, '..', `bad-${process.pid}.yaml`);
  writeFileSync(bad, 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 0}]\n');
  const r = await run(['validate', '-f', bad]);
  rmSync(bad);
  assert.equal(r.code, 1);
  assert.match(r.out, /bad-\d+\.yaml:5:\d+: error \[out-of-range\] Service default\/s spec\.ports\[0\]\.port: 0 is out of range/);
});

test('authz check: the ingress gateway reaches echo with its own identity (HBONE), straight to the endpoints', async () => {
  const { code, json } = await check(['--from', 'ingress/public-istio-0', '--to', 'demo/echo:80']);
  assert.equal(code, 0);
  assert.equal(json.decision, 'ALLOW');
  assert.equal(json.path, 'direct');
  assert.equal((json.source as { identity: string }).identity, 'spiffe://cluster.local/ns/ingress/sa/public-istio');
});
