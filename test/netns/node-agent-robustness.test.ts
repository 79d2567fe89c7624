// Istio's CNI robustness scenarios on a real local cluster whose node agents this test runs
// itself (`ambit up --no-node-agent`, then `ambit node-agent` per node, as installing
// istio-cni into a running cluster):
//  - pods running before the agent starts are captured when it starts, without a restart;
//  - agent killed (-9): established and new connections keep flowing through the ztunnel; the
//    restarted agent recovers its state from the records and the pods' namespaces (the rules
//    are recognized, not duplicated);
//  - un-enrolling a pod removes its rules, re-enrolling puts them back, live;
//  - a pod deleted while the agent is down is cleaned up on its return; a pod created while
//    it is down does not start until it is back (fail closed), then starts captured.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readTables } from '../../src/nodeagent/iptables.js';
import { agentGet } from '../../src/nodeagent/control-api.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
const LOAD = join(ROOT, 'test', 'fixtures', 'conn-load.mjs');

const MESH = `
apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: demo, labels: {app: client}}
spec: {nodeName: node-1, containers: [{name: c, image: x, command: [sleep, infinity]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: victim, namespace: demo, labels: {app: victim}}
spec: {nodeName: node-1, containers: [{name: c, image: x, command: [sleep, infinity]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: demo, labels: {app: server}}
spec: {nodeName: node-2, containers: [{name: echo, image: ambit/echo, command: [ambit, app, echo, --port, "8080"]}]}
`;

const VICTIM_IN_MESH = `---
apiVersion: v1
kind: Pod
metadata: {name: victim, namespace: demo, labels: {app: victim}}
spec: {nodeName: node-1, containers: [{name: c, image: x, command: [sleep, infinity]}]}
`;
const LATE = `apiVersion: v1
kind: Pod
metadata: {name: late, namespace: demo, labels: {app: late}}
spec: {nodeName: node-1, containers: [{name: c, image: x, command: [sleep, infinity]}]}
`;

interface StatusPod { namespace: string; name: string; ip: string; captured: boolean; annotations?: Record<string, string>; processes: { pid?: number; state: string }[] }
interface AgentPodView { namespace: string; name: string; captured: boolean; recognized: boolean; discovered: boolean; annotations: Record<string, string> }

describe('node agent robustness (Istio\'s CNI scenarios)', () => {
  let c: TestCluster;
  const agents = new Map<string, ChildProcess>();
  const status = () => (JSON.parse(c.ambit(['status', '-o', 'json']).stdout) as { status: { pods: StatusPod[] } }).status.pods;
  const pod = (name: string) => status().find((p) => p.name === name);
  const agentPods = (node: string) => agentGet<AgentPodView[]>(join(c.stateDir, 'nodes', node, 'agent.sock'), '/pods').catch(() => [] as AgentPodView[]);
  const jumps = async (podName: string) => {
    const t = await readTables(c.netns(`demo/${podName}`), ['nat']);
    return t.nat.rules.filter((r) => r === '-A OUTPUT -j AMBIT_OUTPUT').length;
  };
  const agentLog = (node: string) => readFileSync(join(c.stateDir, 'logs', `test-node-agent-${node}.log`), 'utf8');

  async function startAgent(node: string): Promise<void> {
    const dir = join(c.stateDir, 'nodes', node);
    const log = openSync(join(c.stateDir, 'logs', `test-node-agent-${node}.log`), 'a');
    const a = spawn(process.execPath, [join(ROOT, 'bin', 'ambit.js'), 'node-agent', '--node', node, '--dir', dir, '--control-plane', c.adminUrl,
      '--admin-token-file', join(c.stateDir, 'admin-token'), '--cni-conf', join(dir, 'net.d', '10-ambit.conflist'),
      '--node-netns', `/var/run/netns/${c.prefix}-${node}`], { stdio: ['ignore', log, log] });
    closeSync(log);
    agents.set(node, a);
    await waitFor(`agent ${node} up`, () => agentGet(join(dir, 'agent.sock'), '/healthz').then(() => true, () => false), 20_000);
  }

  async function killAgent(node: string): Promise<void> {
    const a = agents.get(node);
    if (!a || a.exitCode !== null || a.signalCode !== null) return;
    const gone = new Promise((r) => a.once('exit', r));
    a.kill('SIGKILL');
    await gone;
  }

  /** conn-load from the client to the server pod; resolves with its JSON. */
  function load(args: string[]): Promise<{ requests: number; ok: number; failed: number; failures: unknown[]; stream?: { ok: boolean; error?: string } }> {
    const server = pod('server')!;
    const p = c.spawnIn('demo/client', [process.execPath, LOAD, `${server.ip}:8080`, ...args]);
    let out = '';
    p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    return new Promise((resolveLoad, reject) => p.on('exit', () => {
      try { resolveLoad(JSON.parse(out)); } catch { reject(new Error(`conn-load printed: ${out}`)); }
    }));
  }

  before(() => {
    c = startCluster(MESH, { name: 'rb', upArgs: ['--no-node-agent'] });
  });

  after(async () => {
    for (const node of agents.keys()) await killAgent(node);
    c?.down();
  });

  test('without an agent the pods run uncaptured; started, the agent captures them without a restart', async () => {
    const before = pod('client')!;
    assert.equal(before.captured, false);
    assert.equal(await jumps('client'), 0, 'no capture rules yet');
    const pidBefore = before.processes[0]!.pid;
    assert.ok(pidBefore);
    await startAgent('node-1');
    await startAgent('node-2');
    await waitFor('client captured and handed over', async () => (await agentPods('node-1')).some((p) => p.name === 'client' && p.captured && !!p.annotations['ambient.istio.io/redirection']), 20_000);
    const seen = (await agentPods('node-1')).find((p) => p.name === 'client')!;
    assert.equal(seen.discovered, true, 'found by its address behind node-1\'s veths');
    assert.deepEqual(seen.annotations, { 'ambient.istio.io/redirection': 'enabled' });
    assert.equal(await jumps('client'), 1);
    await waitFor('ambit status shows it', () => pod('client')?.captured === true && pod('client')?.annotations?.['ambient.istio.io/redirection'] === 'enabled', 10_000);
    assert.equal(pod('client')!.processes[0]!.pid, pidBefore, 'the pod was not restarted');
    // Its traffic now goes through node-1's ztunnel (which got it over ZDS).
    const cfg = async () => (await (await fetch(`http://${c.ztunnelHost(1)}:15000/config_dump`)).json()) as { served: { uid: string }[] };
    await waitFor('ztunnel node-1 serves the client', async () => (await cfg()).served.some((s) => s.uid.endsWith('/demo/client')), 15_000);
    const r = await load(['--rate', '10', '--seconds', '1']);
    assert.equal(r.failed, 0, JSON.stringify(r.failures));
    await waitFor('the ztunnel logged the client\'s connections', () => readFileSync(join(c.stateDir, 'logs', 'ztunnel-node-1.log'), 'utf8').includes('"src.workload":"client"'), 5000);
  });

  test('agent killed: traffic keeps flowing; restarted: state recovered, rules recognized, not duplicated', async () => {
    const running = load(['--rate', '20', '--seconds', '6', '--stream-seconds', '5']);
    await new Promise((r) => setTimeout(r, 1000));
    await killAgent('node-1');
    await new Promise((r) => setTimeout(r, 2000));
    await startAgent('node-1');
    const r = await running;
    assert.equal(r.failed, 0, `no connection failed: ${JSON.stringify(r.failures)}`);
    assert.equal(r.stream?.ok, true, `the stream stayed intact: ${JSON.stringify(r.stream)}`);
    await waitFor('recovery logged', () => /captured pod recovered: its rules were recognized/.test(agentLog('node-1')), 10_000);
    const client = (await agentPods('node-1')).find((p) => p.name === 'client');
    assert.equal(client?.captured, true);
    assert.equal(client?.recognized, true);
    assert.equal(await jumps('client'), 1, 'recognized, not duplicated');
    const again = await load(['--rate', '10', '--seconds', '1']);
    assert.equal(again.failed, 0, 'served after the agent came back (the ztunnel took its new listeners)');
  });

  test('un-enrolling removes the rules and the annotation; re-enrolling puts them back, live', async () => {
    const pid = pod('client')!.processes[0]!.pid;
    assert.equal(c.ambit(['label', 'pod', 'client', '-n', 'demo', 'istio.io/dataplane-mode=none']).code, 0);
    await waitFor('un-enrolled: no rules, no annotation', async () => {
      const p = (await agentPods('node-1')).find((x) => x.name === 'client');
      return (await jumps('client')) === 0 && p?.captured === false && Object.keys(p.annotations).length === 0;
    }, 15_000);
    assert.equal(c.ambit(['label', 'pod', 'client', '-n', 'demo', 'istio.io/dataplane-mode-']).code, 0);
    await waitFor('re-enrolled', async () => (await jumps('client')) === 1 && !!(await agentPods('node-1')).find((p) => p.name === 'client')?.captured, 15_000);
    assert.equal(pod('client')!.processes[0]!.pid, pid, 'no restart either way');
    const r = await load(['--rate', '10', '--seconds', '1']);
    assert.equal(r.failed, 0);
  });

  test('while the agent is down: a deleted pod is cleaned on its return, a new pod waits for it', async () => {
    {
      await waitFor('victim captured', async () => (await agentPods('node-1')).some((p) => p.name === 'victim' && p.captured && !!p.annotations['ambient.istio.io/redirection']), 10_000);
      await killAgent('node-1');
      // The watched config loses the victim and gains a new pod.
      writeFileSync(join(c.configDir, 'mesh.yaml'), `${MESH.replace(VICTIM_IN_MESH, '')}\n---\n${LATE}`);
      await waitFor('the runtime deleted the victim (its DEL succeeded without the agent)', () => !existsSync(`/var/run/netns/${c.netns('demo/victim')}`), 15_000);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(pod('late'), undefined, 'no pod starts uncaptured while the agent is away (its ADD failed: try again later)');
      const records = readdirSync(join(c.stateDir, 'nodes', 'node-1', 'pods'));
      assert.ok(records.some((f) => readFileSync(join(c.stateDir, 'nodes', 'node-1', 'pods', f), 'utf8').includes('"victim"')), 'the agent still has the victim\'s record');
      await startAgent('node-1');
      await waitFor('victim forgotten on return', async () => !(await agentPods('node-1')).some((p) => p.name === 'victim'), 10_000);
      assert.ok(!readdirSync(join(c.stateDir, 'nodes', 'node-1', 'pods')).some((f) => readFileSync(join(c.stateDir, 'nodes', 'node-1', 'pods', f), 'utf8').includes('"victim"')), 'its record is gone');
      const zds = async () => ((await (await fetch(`http://${c.ztunnelHost(1)}:15000/config_dump`)).json()) as { zds: { workloads: { name: string }[] } }).zds.workloads.map((w) => w.name);
      await waitFor('the ztunnel dropped the victim (snapshot) and got the late pod', async () => !(await zds()).includes('victim') && (await zds()).includes('late'), 15_000);
      await waitFor('the late pod started, captured, once the agent was back', () => pod('late')?.captured === true && pod('late')?.processes[0]?.state === 'running', 15_000);
    }
  });
});
