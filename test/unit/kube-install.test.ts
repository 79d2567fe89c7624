// `ambit install` manifests: deterministic (golden files), every object valid against the
// Kubernetes OpenAPI schema of its kind and version (kubernetes-models, offline), no field the
// client library's models do not know, CRD schemas structural and agreeing with `ambit
// validate` on every Istio example and fixture in the repository.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, writeFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseAllDocuments } from 'yaml';
import { installManifests, installObjects, cniCleanup } from '../../src/kubernetes/install/manifests.js';
import { renderYaml, renderJson } from '../../src/kubernetes/install/render.js';
import { DEFAULT_VALUES, parseSet, resolveValues } from '../../src/kubernetes/install/values.js';
import { CRD_KINDS, objectSchema } from '../../src/kubernetes/install/crds.js';
import { modelType, roundTrip, toWire } from '../../src/kubernetes/install/wire.js';
import { cleanupNode, withoutAmbitCni } from '../../src/kubernetes/install/cni-cleanup.js';
import { validateDocuments } from '../../src/config/validate.js';
import { crdValidator, structuralProblems, validateAgainstKubernetes } from '../helpers/kube/openapi.js';
import { main } from '../../src/cli/main.js';

const root = new URL('../../..', import.meta.url).pathname;
const golden = (name: string) => join(root, 'test/golden', name);

function checkGolden(name: string, text: string): void {
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(golden(name))) writeFileSync(golden(name), text);
  assert.equal(text, readFileSync(golden(name), 'utf8'), `${name} differs; UPDATE_GOLDEN=1 rewrites it after a deliberate change`);
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => { out += t; }, err: (t) => { err += t; }, env: {}, cwd: root });
  return { code, out, err };
}

const OTHER = resolveValues('namespace: ambit-system\ncontrolPlane: {replicas: 3, waypoints: false}\n', ['image.repository=registry.example/ambit', 'image.tag=9.9.9', 'cni.binDir=/var/lib/cni/bin']);

test('ambit install --dry-run -o yaml prints the golden manifests, the same every time', async () => {
  const a = await cli(['install', '--dry-run', '-o', 'yaml']);
  assert.equal(a.code, 0, a.err);
  const b = await cli(['install', '--dry-run', '-o', 'yaml']);
  assert.equal(a.out, b.out);
  checkGolden('install-default.yaml', a.out);
  checkGolden('install-other.yaml', renderYaml(installManifests(OTHER)));
  const json = JSON.parse((await cli(['install', '--dry-run', '-o', 'json'])).out) as { kind: string; items: unknown[] };
  assert.equal(json.kind, 'List');
  assert.deepEqual(json.items, JSON.parse(renderJson(installManifests(DEFAULT_VALUES))).items);
});

test('the install is complete: namespace, CRDs, RBAC, control plane, ztunnel, node agent, waypoint class', () => {
  const kinds = installManifests(DEFAULT_VALUES).map((o) => `${o.kind}/${(o.metadata as { name: string }).name}`);
  assert.deepEqual(kinds, [
    'Namespace/istio-system',
    'CustomResourceDefinition/authorizationpolicies.security.istio.io', 'CustomResourceDefinition/peerauthentications.security.istio.io',
    'CustomResourceDefinition/requestauthentications.security.istio.io', 'CustomResourceDefinition/virtualservices.networking.istio.io',
    'CustomResourceDefinition/telemetries.telemetry.istio.io', 'CustomResourceDefinition/serviceentries.networking.istio.io',
    'CustomResourceDefinition/destinationrules.networking.istio.io',
    'ServiceAccount/ambit-control-plane', 'ServiceAccount/ztunnel', 'ServiceAccount/ambit-node-agent',
    'ClusterRole/ambit-control-plane', 'ClusterRoleBinding/ambit-control-plane', 'Role/ambit-control-plane', 'RoleBinding/ambit-control-plane',
    'ClusterRole/ambit-node-agent', 'ClusterRoleBinding/ambit-node-agent',
    'Deployment/ambit-control-plane', 'Service/ambit-control-plane', 'PodDisruptionBudget/ambit-control-plane',
    'DaemonSet/ztunnel', 'DaemonSet/ambit-node-agent', 'GatewayClass/istio-waypoint', 'GatewayClass/istio',
  ]);
});

test('every object is valid against the Kubernetes OpenAPI schema of its kind and version', () => {
  for (const values of [DEFAULT_VALUES, OTHER]) {
    for (const o of [...installManifests(values), toWire(cniCleanup(values))]) {
      assert.doesNotThrow(() => validateAgainstKubernetes(o), `${String(o.kind)} ${JSON.stringify(o.metadata)}`);
    }
  }
  // The check can fail: a wrong type and a missing required field are caught.
  const d = structuredClone(installManifests(DEFAULT_VALUES).find((o) => o.kind === 'Deployment')!) as { spec: { replicas: unknown; selector?: unknown } };
  d.spec.replicas = 'two';
  assert.throws(() => validateAgainstKubernetes(d as unknown as Record<string, unknown>), /replicas/);
  delete d.spec.selector;
  d.spec.replicas = 1;
  assert.throws(() => validateAgainstKubernetes(d as unknown as Record<string, unknown>), /selector/);
});

test('no object carries a field the client library\'s models do not know', () => {
  for (const o of installObjects(DEFAULT_VALUES)) {
    const type = modelType(o as never);
    if (!type || o.kind === 'CustomResourceDefinition') continue;
    const wire = toWire(o as never);
    assert.deepEqual(roundTrip(wire, type), wire, `${String(o.kind)}`);
  }
  // And the round trip does drop an unknown field.
  const svc = toWire(installObjects(DEFAULT_VALUES).find((o) => o.kind === 'Service') as never) as { spec: Record<string, unknown> };
  svc.spec.sesionAffinity = 'None';
  assert.notDeepEqual(roundTrip(svc, 'V1Service'), svc);
});

test('least privilege: the control plane writes only status, events, token reviews and waypoint objects', () => {
  const role = installManifests(DEFAULT_VALUES).find((o) => o.kind === 'ClusterRole' && (o.metadata as { name: string }).name === 'ambit-control-plane') as { rules: { resources: string[]; verbs: string[] }[] };
  const writes = role.rules.filter((r) => r.verbs.some((v) => !['get', 'list', 'watch'].includes(v))).flatMap((r) => r.resources).sort();
  assert.deepEqual(writes, ['authorizationpolicies/status', 'configmaps', 'deployments', 'events', 'gateways/status', 'httproutes/status', 'peerauthentications/status', 'requestauthentications/status', 'serviceaccounts', 'services', 'telemetries/status', 'tokenreviews', 'virtualservices/status']);
  assert.ok(!role.rules.some((r) => r.verbs.includes('delete') || r.verbs.includes('*') || r.resources.includes('*')));
  // Secrets are read (gateway certificates, egress TLS, as istiod reads them), never written.
  assert.ok(role.rules.filter((r) => r.resources.includes('secrets')).every((r) => r.verbs.every((v) => ['get', 'list', 'watch'].includes(v))));
  const without = installManifests(OTHER).find((o) => o.kind === 'ClusterRole' && (o.metadata as { name: string }).name === 'ambit-control-plane') as { rules: { resources: string[] }[] };
  assert.ok(!without.rules.some((r) => r.resources.includes('deployments')), 'no waypoint rights when waypoints are off');
});

test('least privilege: the node agent reads its pods and namespaces from the API server, patches only pods, and holds no admin token', () => {
  const objs = installManifests(DEFAULT_VALUES);
  const role = objs.find((o) => o.kind === 'ClusterRole' && (o.metadata as { name: string }).name === 'ambit-node-agent') as { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] };
  const grants = role.rules.flatMap((r) => r.resources.flatMap((res) => r.verbs.map((v) => `${r.apiGroups.join(',') || 'core'}/${res}:${v}`))).sort();
  assert.deepEqual(grants, ['core/namespaces:get', 'core/namespaces:list', 'core/namespaces:watch', 'core/pods:get', 'core/pods:list', 'core/pods:patch', 'core/pods:watch']);
  const ds = objs.find((o) => o.kind === 'DaemonSet' && (o.metadata as { name: string }).name === 'ambit-node-agent') as {
    spec: { template: { spec: { serviceAccountName: string; containers: { command: string[]; env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[] }[] } } };
  };
  const pod = ds.spec.template.spec;
  assert.equal(pod.serviceAccountName, 'ambit-node-agent');
  const script = pod.containers[0]!.command.join(' ');
  assert.match(script, /ambit node-agent --kubernetes /);
  assert.doesNotMatch(script, /--control-plane|admin-token|--node /, 'no admin API, no admin token; the node comes from NODE_NAME');
  assert.equal(pod.containers[0]!.env.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName');
});

test('CRD schemas are structural', () => {
  for (const k of CRD_KINDS) assert.deepEqual(structuralProblems(objectSchema(k)), [], k);
});

/** Every Istio-kind document in the repository: examples and the YAML fixtures of the tests. */
function corpus(): { where: string; value: unknown }[] {
  const out: { where: string; value: unknown }[] = [];
  const add = (where: string, text: string) => {
    for (const d of parseAllDocuments(text)) {
      if (d.errors.length) continue;
      const v = d.toJS() as { kind?: string } | null;
      if (v && typeof v === 'object' && (CRD_KINDS as readonly string[]).includes(String(v.kind))) out.push({ where, value: v });
    }
  };
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) { walk(p); continue; }
      if (/\.ya?ml$/.test(f)) add(p, readFileSync(p, 'utf8'));
      if (f.endsWith('.ts')) {
        for (const m of readFileSync(p, 'utf8').matchAll(/yaml`([\s\S]*?)`/g)) {
          if (m[1]!.includes('${')) continue;
          const lines = m[1]!.replace(/^\n/, '').split('\n');
          const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.match(/^ */)![0].length));
          add(p, lines.map((l) => l.slice(indent)).join('\n'));
        }
      }
    }
  };
  walk(join(root, 'examples'));
  walk(join(root, 'test'));
  return out;
}

const SHAPE_CODES = new Set(['unknown-field', 'wrong-type', 'missing-field', 'out-of-range', 'too-few']);

test('CRD schemas accept every example and fixture ambit validate accepts, and reject the shape errors it rejects', () => {
  const validators = new Map(CRD_KINDS.map((k) => [k, crdValidator(objectSchema(k))]));
  let accepted = 0;
  let rejected = 0;
  let semanticOnly = 0;
  for (const { where, value } of corpus()) {
    const kind = (value as { kind: (typeof CRD_KINDS)[number] }).kind;
    const r = validateDocuments([{ file: where, line: 1, value, locate: () => ({ line: 1, column: 1 }) }]);
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    const crd = validators.get(kind)!(value);
    if (errors.length === 0) {
      assert.ok(crd.ok, `${where}: ambit validate accepts ${kind} ${JSON.stringify((value as { metadata?: unknown }).metadata)} but the CRD refuses it: ${crd.errors}`);
      accepted++;
    } else if (errors.every((d) => SHAPE_CODES.has(d.code) || (d.code === 'bad-value' && /is not one of|must not be empty|is not a valid/.test(d.message)))) {
      assert.ok(!crd.ok, `${where}: ambit validate rejects ${kind} (${errors.map((d) => d.message).join('; ')}) but the CRD accepts it`);
      rejected++;
    } else {
      semanticOnly++; // CIDRs, principals, regexes...: beyond what an OpenAPI schema says
    }
  }
  assert.ok(accepted >= 40, `only ${accepted} accepted documents found`);
  if (process.env.AMBIT_TEST_VERBOSE) console.log(`corpus: ${accepted} accepted, ${rejected} rejected by shape, ${semanticOnly} rejected by meaning only`);
});

test('the CRD schema rejects the shape errors ambit validate rejects (table)', () => {
  const base = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'p', namespace: 'ns' } };
  const cases: [string, Record<string, unknown>][] = [
    ['unknown field', { ...base, spec: { actions: 'DENY' } }],
    ['bad enum', { ...base, spec: { action: 'DENYY' } }],
    ['wrong type', { ...base, spec: { rules: { from: [] } } }],
    ['nested unknown field', { ...base, spec: { rules: [{ from: [{ source: { principal: ['x'] } }] }] } }],
    ['missing required', { ...base, spec: { targetRefs: [{ kind: 'Gateway' }] } }],
    ['empty where non-empty', { ...base, spec: { targetRefs: [{ kind: 'Gateway', name: '' }] } }],
    ['list item wrong type', { ...base, spec: { rules: [{ to: [{ operation: { ports: [80] } }] }] } }],
  ];
  const v = crdValidator(objectSchema('AuthorizationPolicy'));
  for (const [what, doc] of cases) {
    const r = validateDocuments([{ file: what, line: 1, value: doc, locate: () => ({ line: 1, column: 1 }) }]);
    assert.ok(r.diagnostics.some((d) => d.severity === 'error'), `ambit validate accepts: ${what}`);
    assert.equal(v(doc).ok, false, `CRD accepts: ${what}`);
  }
  const vs = crdValidator(objectSchema('VirtualService'));
  assert.equal(vs({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'v' }, spec: { http: [] } }).ok, false, 'hosts is required');
  assert.equal(vs({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'v' }, spec: { hosts: ['a'], http: [{ route: [{ destination: { host: 'a', port: { number: 70000 } } }] }] } }).ok, false, 'port range');
});

test('values: file, --set, and errors that say what is wrong', () => {
  assert.deepEqual(parseSet('controlPlane.replicas=2'), { controlPlane: { replicas: 2 } });
  assert.deepEqual(parseSet('controlPlane.waypoints=false'), { controlPlane: { waypoints: false } });
  assert.equal(OTHER.namespace, 'ambit-system');
  assert.equal(OTHER.image.tag, '9.9.9');
  assert.equal(OTHER.controlPlane.certTtlSeconds, 86400, 'unset values keep their defaults');
  assert.throws(() => resolveValues(undefined, ['controlPlane.replica=2']), /unknown field "replica"; did you mean "replicas"\?/);
  assert.throws(() => resolveValues('image: {pullPolicy: Sometimes}'), /"Sometimes" is not one of Always, IfNotPresent, Never/);
  assert.throws(() => resolveValues(undefined, ['namespace']), /not key=value/);
});

test('uninstall\'s CNI cleanup takes ambit-cni out of a conflist and keeps the rest', () => {
  const list = { cniVersion: '1.0.0', name: 'k8s-pod-network', plugins: [{ type: 'calico' }, { type: 'portmap', capabilities: { portMappings: true } }, { type: 'ambit-cni', agent_socket: '/var/run/ambit/cni.sock' }] };
  assert.deepEqual(JSON.parse(withoutAmbitCni(JSON.stringify(list))!), { ...list, plugins: list.plugins.slice(0, 2) });
  assert.equal(withoutAmbitCni(JSON.stringify({ ...list, plugins: list.plugins.slice(0, 2) })), undefined);
  assert.equal(withoutAmbitCni('not json'), undefined);
  const dir = mkdtempSync(join(tmpdir(), 'ambit-cni-'));
  try {
    writeFileSync(join(dir, '10-calico.conflist'), JSON.stringify(list));
    writeFileSync(join(dir, 'ambit-cni'), 'binary');
    assert.deepEqual(cleanupNode(dir, dir), [join(dir, '10-calico.conflist'), join(dir, 'ambit-cni')]);
    assert.equal((JSON.parse(readFileSync(join(dir, '10-calico.conflist'), 'utf8')) as typeof list).plugins.length, 2);
    assert.deepEqual(cleanupNode(dir, dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
