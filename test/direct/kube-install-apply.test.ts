// `ambit install` and `ambit uninstall` against the API server stand-in: server-side apply of
// every object (CRD schemas arrive intact), the Gateway API prerequisite, the cacerts Secret,
// idempotent re-install, and uninstall's CNI restore step before everything is deleted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeApiServer } from '../helpers/kube/apiserver.js';
import { DEFAULT_RESOURCES } from '../helpers/kube/resources.js';
import { main } from '../../src/cli/main.js';
import { installManifests } from '../../src/kubernetes/install/manifests.js';
import { DEFAULT_VALUES } from '../../src/kubernetes/install/values.js';

let api: KubeApiServer;
let dir: string;

before(async () => {
  api = new KubeApiServer();
  await api.start();
  dir = await mkdtemp(join(tmpdir(), 'ambit-install-'));
  await writeFile(join(dir, 'kubeconfig'), api.kubeconfig());
});

after(async () => {
  await api?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main([...args, '--kubeconfig', join(dir, 'kubeconfig')], { out: (t) => { out += t; }, err: (t) => { err += t; }, env: {}, cwd: dir });
  return { code, out, err };
}

test('without the Gateway API CRDs, install refuses and says what to do', async () => {
  const bare = new KubeApiServer(DEFAULT_RESOURCES.filter((r) => r.group !== 'gateway.networking.k8s.io'));
  await bare.start();
  try {
    let err = '';
    const code = await main(['install', '--kubeconfig', join(dir, 'bare')], { out: () => {}, err: (t) => { err += t; }, env: {}, cwd: dir }).catch(() => -1);
    void code;
    await writeFile(join(dir, 'bare'), bare.kubeconfig());
    err = '';
    const c2 = await main(['install', '--kubeconfig', join(dir, 'bare')], { out: () => {}, err: (t) => { err += t; }, env: {}, cwd: dir });
    assert.equal(c2, 1);
    assert.match(err, /the Gateway API \(gateway\.networking\.k8s\.io\/v1\) is not installed/);
    assert.match(err, /install the Gateway API CRDs first/);
    assert.equal(bare.requests.filter((r) => r.method === 'PATCH').length, 0, 'nothing applied');
  } finally {
    await bare.stop();
  }
});

test('install server-side-applies every object, CRD schemas intact, and makes the CA Secret', async () => {
  const r = await cli(['install']);
  assert.equal(r.code, 0, r.err);
  const want = installManifests(DEFAULT_VALUES);
  for (const o of want) {
    const m = o.metadata as { name: string; namespace?: string };
    assert.ok(api.get(String(o.kind), m.namespace, m.name), `${String(o.kind)} ${m.name} exists`);
  }
  const applies = api.requests.filter((x) => x.method === 'PATCH');
  assert.equal(applies.length, want.length);
  assert.ok(applies.every((x) => x.contentType === 'application/apply-patch+yaml' && x.query.fieldManager === 'ambit-install' && x.query.force === 'true'));
  const crd = api.get('CustomResourceDefinition', undefined, 'authorizationpolicies.security.istio.io')!;
  const wanted = want.find((o) => (o.metadata as { name: string }).name === 'authorizationpolicies.security.istio.io') as { spec: { versions: { schema: unknown }[] } };
  assert.deepEqual(crd.spec.versions[0].schema, wanted.spec.versions[0]!.schema, 'the schema arrives as generated (enum, x-kubernetes-*)');
  assert.deepEqual(crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.action.enum, ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']);
  const secret = api.get('Secret', 'istio-system', 'cacerts')!;
  assert.deepEqual(Object.keys(secret.data).sort(), ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem']);
  assert.match(Buffer.from(secret.data['root-cert.pem'], 'base64').toString(), /BEGIN CERTIFICATE/);
});

test('install again changes nothing it does not own and keeps the CA', async () => {
  const before = api.get('Secret', 'istio-system', 'cacerts')!;
  api.modify('Deployment', 'istio-system', 'ambit-control-plane', (o) => { o.spec.replicas = 4; });
  const r = await cli(['install', '--set', 'controlPlane.replicas=2']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /cacerts exists; the mesh keeps its CA/);
  assert.deepEqual(api.get('Secret', 'istio-system', 'cacerts')!.data, before.data);
  assert.equal(api.get('Deployment', 'istio-system', 'ambit-control-plane')!.spec.replicas, 2);
  assert.equal(api.get('PodDisruptionBudget', 'istio-system', 'ambit-control-plane')!.spec.minAvailable, 1);
});

test('uninstall stops the node agents, restores the nodes\' CNI config, then deletes everything else', async () => {
  // The stand-in has no kubelet: play the DaemonSet controller for the cleanup DaemonSet.
  const timer = setInterval(() => {
    const ds = api.get('DaemonSet', 'istio-system', 'ambit-cni-cleanup');
    if (ds && !ds.status?.numberReady) api.modify('DaemonSet', 'istio-system', 'ambit-cni-cleanup', (o) => { o.status = { desiredNumberScheduled: 2, numberReady: 2, observedGeneration: o.metadata.generation }; });
  }, 20);
  try {
    const r = await cli(['uninstall']);
    assert.equal(r.code, 0, r.err);
    const lines = r.err.split('\n');
    const at = (s: string) => lines.findIndex((l) => l.startsWith(s));
    assert.ok(at('DaemonSet istio-system/ambit-node-agent deleted') < at('DaemonSet istio-system/ambit-cni-cleanup applied'));
    assert.ok(at('DaemonSet istio-system/ambit-cni-cleanup deleted') < at('Deployment istio-system/ambit-control-plane deleted'));
    for (const o of installManifests(DEFAULT_VALUES)) {
      const m = o.metadata as { name: string; namespace?: string };
      assert.equal(api.get(String(o.kind), m.namespace, m.name), undefined, `${String(o.kind)} ${m.name} deleted`);
    }
  } finally {
    clearInterval(timer);
  }
});

test('a CLI exits quietly when its reader goes away (ambit ... | head)', async () => {
  const root = new URL('../../..', import.meta.url).pathname;
  // About 100 KB into a pipe that head closes after one line: the write fails with EPIPE.
  const script = `"${process.execPath}" "${join(root, 'bin/ambit.js')}" install --dry-run -o yaml | head -n 1 >/dev/null; echo "status=\${PIPESTATUS[0]}" >&2`;
  const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  await new Promise((r) => child.on('exit', r));
  assert.doesNotMatch(stderr, /EPIPE|Unhandled|Error/);
  assert.match(stderr, /^status=(0|141)\n$/);
});
