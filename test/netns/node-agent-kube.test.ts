// `ambit node-agent --kubernetes` as a real process on a Kubernetes-like node: its pods and
// namespace labels come from the API server stand-in (no control plane, no admin token), the
// runtime's CNI ADD arrives through the real ambit-cni binary, capture happens in real
// network namespaces, and the pod's `ambient.istio.io/redirection` annotation is patched on
// the API server as Istio's node agent does it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCommand } from '../../src/sys/exec.js';
import { captureInstalled } from '../../src/nodeagent/capture-rules.js';
import { agentGet } from '../../src/nodeagent/control-api.js';
import { ambitCniDir, baseConfList } from '../../src/cluster/pod-cni.js';
import { KubeApiServer } from '../helpers/kube/apiserver.js';
import { namespace, pod } from '../helpers/kube/objects.js';
import { createTestNetwork, type TestNetwork } from '../helpers/netns.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
const ANN = 'ambient.istio.io/redirection';

let api: KubeApiServer;
let net: TestNetwork;
let dir: string;
let agent: ChildProcess | undefined;

const prev = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/x' }], ips: [{ interface: 0, address: '10.244.1.5/24', gateway: '10.244.1.1' }], routes: [{ dst: '0.0.0.0/0' }], dns: {} };
const cni = (command: string, ns: string, name: string) => runCommand(join(ambitCniDir(), 'ambit-cni'), [], {
  env: {
    CNI_COMMAND: command, CNI_CONTAINERID: `cid-${ns}-${name}`, CNI_NETNS: `/var/run/netns/${net.ns(name)}`, CNI_IFNAME: 'eth0', CNI_PATH: ambitCniDir(),
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${name}`,
  },
  input: JSON.stringify({ cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'ambit-cni', agent_socket: join(dir, 'agent', 'cni.sock'), prevResult: prev }),
  okExitCodes: [0, 1], timeoutMs: 70_000,
});
const annotation = (ns: string, name: string) => api.get('Pod', ns, name)?.metadata.annotations?.[ANN] as string | undefined;
const podPatches = (name: string) => api.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith(`/pods/${name}`));

before(async () => {
  net = await createTestNetwork('nak', { namespaces: ['a', 'c', 'node'] });
  dir = mkdtempSync(join(tmpdir(), 'ambit-nak-'));
  api = new KubeApiServer();
  await api.start();
  // As on a cluster at the moment of CNI ADD: the pods are scheduled but have no IP yet.
  api.put(
    namespace('demo', { 'istio.io/dataplane-mode': 'ambient' }), namespace('legacy'),
    pod('demo', 'a', { node: 'node-1' }), pod('legacy', 'c', { node: 'node-1' }), pod('demo', 'elsewhere', { node: 'node-2', ip: '10.244.2.5' }),
  );
  writeFileSync(join(dir, 'kubeconfig'), api.kubeconfig());
  mkdirSync(join(dir, 'net.d'));
  writeFileSync(join(dir, 'net.d', '10-k8s.conflist'), JSON.stringify(baseConfList(), null, 2));
  const log = openSync(join(dir, 'agent.log'), 'a');
  agent = spawn(process.execPath, [join(ROOT, 'bin', 'ambit.js'), 'node-agent', '--kubernetes', '--kubeconfig', join(dir, 'kubeconfig'),
    '--dir', join(dir, 'agent'), '--cni-conf', join(dir, 'net.d', '10-k8s.conflist'), '--node-netns', `/var/run/netns/${net.ns('node')}`],
  { stdio: ['ignore', log, log], env: { ...process.env, NODE_NAME: 'node-1' } });
  closeSync(log);
  await waitFor('node agent up', () => agentGet(join(dir, 'agent', 'agent.sock'), '/healthz').then(() => true, () => false), 20_000);
});

after(async () => {
  if (agent && agent.exitCode === null && agent.signalCode === null) {
    const gone = new Promise((r) => agent!.once('exit', r));
    agent.kill('SIGKILL');
    await gone;
  }
  await api?.stop();
  await net?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('it watches only its node\'s pods (NODE_NAME from the environment), with its own credentials', async () => {
  await waitFor('pods watched', () => api.watcherCount(/^\/pods$/) === 1, 10_000);
  const pods = api.requests.filter((r) => r.path === '/api/v1/pods');
  assert.ok(pods.length >= 2 && pods.every((r) => r.query.fieldSelector === 'spec.nodeName=node-1'), JSON.stringify(pods.map((r) => r.query)));
});

test('ADD of an enrolled pod with no IP in the API yet: captured, and the pod is annotated through the API', async () => {
  const r = await cni('ADD', 'demo', 'a');
  assert.equal(r.exitCode, 0, `${r.stdout} ${readFileSync(join(dir, 'agent.log'), 'utf8').slice(-2000)}`);
  assert.deepEqual(JSON.parse(r.stdout), prev);
  assert.equal(await captureInstalled(net.ns('a')), true);
  assert.equal(annotation('demo', 'a'), 'enabled');
  assert.equal(podPatches('a')[0]!.contentType, 'application/merge-patch+json');
});

test('ADD of a pod outside the mesh: passed through, not captured, not annotated', async () => {
  const r = await cni('ADD', 'legacy', 'c');
  assert.equal(r.exitCode, 0, r.stdout);
  assert.equal(await captureInstalled(net.ns('c')), false);
  assert.equal(annotation('legacy', 'c'), undefined);
  assert.equal(podPatches('c').length, 0);
});

test('ADD of a pod of another node: try again later (code 11)', async () => {
  const r = await cni('ADD', 'demo', 'elsewhere');
  assert.equal(r.exitCode, 1);
  assert.equal((JSON.parse(r.stdout) as { code: number }).code, 11);
});

test('the kubelet giving the pod its IP changes nothing', async () => {
  const before = podPatches('a').length;
  api.modify('Pod', 'demo', 'a', (o) => { o.status = { phase: 'Running', podIP: '10.244.1.5', podIPs: [{ ip: '10.244.1.5' }] }; });
  // An enrolled pod with an IP and no sandbox here: the agent looks for it and says so, which
  // shows it has reconciled the views up to (and so past) the IP change.
  api.put(pod('demo', 'marker', { node: 'node-1', ip: '10.244.1.99' }));
  await waitFor('agent reconciled past the marker', () => /enrolled pods with no sandbox on this node yet.*demo\/marker/.test(readFileSync(join(dir, 'agent.log'), 'utf8')), 10_000);
  assert.equal(await captureInstalled(net.ns('a')), true);
  assert.equal(podPatches('a').length, before);
});

test('un-enrolling the namespace removes the rules and the annotation; enrolling again puts both back', async () => {
  api.modify('Namespace', undefined, 'demo', (o) => { delete o.metadata.labels['istio.io/dataplane-mode']; });
  await waitFor('rules removed', async () => !(await captureInstalled(net.ns('a'))), 10_000);
  await waitFor('annotation removed', () => annotation('demo', 'a') === undefined, 10_000);
  api.modify('Namespace', undefined, 'demo', (o) => { o.metadata.labels['istio.io/dataplane-mode'] = 'ambient'; });
  await waitFor('rules back', () => captureInstalled(net.ns('a')), 10_000);
  await waitFor('annotation back', () => annotation('demo', 'a') === 'enabled', 10_000);
});

test('an annotation someone else removes is put back (the pod is still captured)', async () => {
  api.modify('Pod', 'demo', 'a', (o) => { delete o.metadata.annotations[ANN]; });
  await waitFor('annotation restored', () => annotation('demo', 'a') === 'enabled', 10_000);
  assert.equal(await captureInstalled(net.ns('a')), true);
});

test('DEL after the pod is deleted succeeds and patches nothing', async () => {
  const before = podPatches('a').length;
  api.remove('Pod', 'demo', 'a');
  const r = await cni('DEL', 'demo', 'a');
  assert.equal(r.exitCode, 0, r.stdout);
  assert.equal(podPatches('a').length, before);
});
