// `ambit control-plane --kubernetes --kubeconfig FILE` as a real process against the API
// server stand-in: it syncs, becomes ready, serves the workload API, and makes a waypoint's
// Deployment.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeApiServer } from '../helpers/kube/apiserver.js';
import { namespace, pod, waypointGateway } from '../helpers/kube/objects.js';
import { waitFor } from '../helpers/wait.js';


const root = new URL('../../..', import.meta.url).pathname;
let api: KubeApiServer;
let dir: string;
let child: ChildProcess;
let stderr = '';

before(async () => {
  api = new KubeApiServer();
  await api.start();
  api.put(namespace('istio-system'), namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }), pod('shop', 'client', { node: 'node-1', ip: '10.244.1.5' }), waypointGateway('shop', 'waypoint'));
  dir = await mkdtemp(join(tmpdir(), 'ambit-kube-cli-'));
  await writeFile(join(dir, 'kubeconfig'), api.kubeconfig());
  const init = spawn(process.execPath, [join(root, 'bin/ambit.js'), 'ca', 'init', '--out', join(dir, 'ca')], { stdio: 'ignore' });
  await new Promise((r) => init.on('exit', r));
  child = spawn(process.execPath, [join(root, 'bin/ambit.js'), 'control-plane', '--kubernetes', '--kubeconfig', join(dir, 'kubeconfig'), '--ca', join(dir, 'ca'),
    '--xds', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--waypoint-image', 'registry.example/ambit:1', '--admin-token-file', join(dir, 'admin-token')], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
});

after(async () => {
  child?.kill('SIGTERM');
  if (child && child.exitCode === null) await new Promise((r) => child.on('exit', r));
  await api?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('the control plane reads the cluster, becomes ready and makes the waypoint Deployment', async () => {
  await waitFor('started', () => /admin http:\/\/127\.0\.0\.1:(\d+)/.test(stderr), 15_000);
  const port = /admin http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr)![1];
  let ready = false;
  await waitFor('ready', () => {
    void fetch(`http://127.0.0.1:${port}/ready`).then((r) => { ready = r.status === 200; }, () => {});
    return ready;
  }, 15_000);
  await waitFor('waypoint Deployment', () => api.get('Deployment', 'shop', 'waypoint') !== undefined, 15_000);
  await waitFor('root cert published', () => api.get('ConfigMap', 'shop', 'istio-ca-root-cert') !== undefined, 15_000);
  assert.match(api.get('ConfigMap', 'shop', 'istio-ca-root-cert')!.data['root-cert.pem'], /BEGIN CERTIFICATE/);
  await waitFor('root cert in the root namespace', () => api.get('ConfigMap', 'istio-system', 'istio-ca-root-cert') !== undefined, 15_000);
  const token = (await readFile(join(dir, 'admin-token'), 'utf8')).trim();
  const status = await (await fetch(`http://127.0.0.1:${port}/api/status`, { headers: { authorization: `Bearer ${token}` } })).json() as { pods?: { name: string }[] };
  assert.ok(JSON.stringify(status).includes('client'), JSON.stringify(status).slice(0, 300));
  assert.ok(api.requests.some((r) => r.path === '/api/v1/pods' && r.query.watch === 'true' && r.query.allowWatchBookmarks === 'true'));
});
