// CNI conformance of ambit-cni (native/build/ambit-cni, run as a runtime runs it) with a real
// node agent and control plane, and of the whole chain through Debian's plugins (ptp + static
// IPAM, then ambit-cni) run by Ambit's CNI runtime in a node namespace:
//  - each command: VERSION, ADD (prevResult passed through unchanged; capture only for enrolled
//    pods: rules, held listeners, tcp_migrate_req, the redirection annotation), CHECK (fails once
//    the rules are gone), DEL (twice, and for containers never seen);
//  - the spec's error JSON and codes: bad stdin (6), missing or bad environment (4), unsupported
//    version (1), no prevResult (7), an unknown pod or an agent away (11, but DEL succeeds).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '../../src/sys/exec.js';
import { captureInstalled, purgeCapture } from '../../src/nodeagent/capture-rules.js';
import { agentGet } from '../../src/nodeagent/control-api.js';
import { CniRuntime, parseConfList } from '../../src/cni/runtime.js';
import { ambitCniDir, SYSTEM_CNI_DIR } from '../../src/cluster/pod-cni.js';
import { createTestNetwork, runInNetns, spawnInNetns, type TestNetwork, type TestProcess } from '../helpers/netns.js';
import { startAgentHarness, type AgentHarness } from '../helpers/node-agent.js';
import { waitFor } from '../helpers/wait.js';


const MESH = `
apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: demo}
spec: {nodeName: node-1, containers: [{name: c, image: x, command: [sleep, infinity]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: c, namespace: legacy}
spec: {nodeName: node-1, containers: [{name: c, image: x, command: [sleep, infinity]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: chain, namespace: demo}
spec: {nodeName: node-1, containers: [{name: c, image: x, command: [sleep, infinity]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: chain2, namespace: legacy}
spec: {nodeName: node-1, containers: [{name: c, image: x, command: [sleep, infinity]}]}
`;

interface AgentPodView { namespace: string; name: string; containerId: string; captured: boolean; annotations: Record<string, string>; recognized: boolean }

describe('ambit-cni: CNI 1.0.0 conformance with a real node agent', () => {
  let h: AgentHarness;
  let net: TestNetwork;
  const prev = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', mac: '0a:58:0a:f4:01:05', sandbox: '/x' }], ips: [{ interface: 0, address: '10.244.1.5/24', gateway: '10.244.1.1' }], routes: [{ dst: '0.0.0.0/0' }], dns: {} };
  const stdin = (extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'ambit', type: 'ambit-cni', agent_socket: h.cniSocket, prevResult: prev, ...extra });
  const env = (pod: string, ns: string, over: Record<string, string | undefined> = {}) => ({
    CNI_COMMAND: 'ADD', CNI_CONTAINERID: `cid-${ns}-${pod}`, CNI_NETNS: `/var/run/netns/${net.ns(pod)}`, CNI_IFNAME: 'eth0', CNI_PATH: `${SYSTEM_CNI_DIR}:${ambitCniDir()}`,
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${pod}`, ...over,
  });
  const pods = () => agentGet<AgentPodView[]>(h.controlSocket, '/pods');
  const errorOf = (stdout: string) => JSON.parse(stdout) as { cniVersion: string; code: number; msg: string; details?: string };

  before(async () => {
    net = await createTestNetwork('cni', { namespaces: ['a', 'c', 'node', 'chain', 'chain2'] });
    h = await startAgentHarness(MESH, 'cni', `/var/run/netns/${net.ns('node')}`);
  });

  after(async () => {
    await h?.stop();
    await net?.cleanup();
  });

  test('the agent put ambit-cni last in the node\'s chain, pointing at its socket', () => {
    const list = parseConfList(readFileSync(h.conflist, 'utf8'));
    assert.deepEqual(list.plugins.map((p) => p.type), ['ptp', 'ambit-cni']);
    assert.equal(list.plugins[1]!.agent_socket, h.cniSocket);
  });

  test('VERSION: the supported versions, answered without the agent', async () => {
    const r = await h.plugin({ CNI_COMMAND: 'VERSION' }, JSON.stringify({ cniVersion: '0.4.0' }));
    assert.equal(r.exitCode, 0);
    assert.deepEqual(JSON.parse(r.stdout), { cniVersion: '0.4.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] });
  });

  test('ADD of a pod outside the mesh: prevResult unchanged, nothing captured', async () => {
    const r = await h.plugin(env('c', 'legacy'), stdin());
    assert.equal(r.exitCode, 0, r.stdout);
    assert.deepEqual(JSON.parse(r.stdout), prev);
    assert.equal(await captureInstalled(net.ns('c')), false);
    const c = (await pods()).find((p) => p.name === 'c');
    assert.equal(c?.captured, false);
    assert.deepEqual(c?.annotations, {});
  });

  test('ADD of an enrolled pod: prevResult unchanged; rules, held listeners, tcp_migrate_req and the annotation', async () => {
    const r = await h.plugin(env('a', 'demo'), stdin());
    assert.equal(r.exitCode, 0, r.stdout);
    assert.deepEqual(JSON.parse(r.stdout), prev, 'prevResult passes through unchanged');
    assert.equal(await captureInstalled(net.ns('a')), true);
    const ss = await runInNetns(net.ns('a'), 'ss', ['-Hltn']);
    for (const port of [15001, 15006, 15008]) assert.match(ss.stdout, new RegExp(`0\\.0\\.0\\.0:${port}\\b`), `listening on ${port}`);
    const migrate = await runInNetns(net.ns('a'), 'sysctl', ['-n', 'net.ipv4.tcp_migrate_req']);
    assert.equal(migrate.stdout.trim(), '1');
    const a = (await pods()).find((p) => p.name === 'a');
    assert.equal(a?.captured, true);
    assert.deepEqual(a?.annotations, { 'ambient.istio.io/redirection': 'enabled' });
  });

  test('a connection to a captured pod waits in the held listener instead of being refused', async () => {
    const r = await runInNetns(net.ns('a'), 'curl', ['-sS', '--max-time', '1', 'http://127.0.0.1:15001/'], { okExitCodes: [7, 28] });
    assert.equal(r.exitCode, 28, `curl timed out waiting (not refused: exit 7): ${r.stderr}`);
  });

  test('ADD again for the same container changes nothing (rules not duplicated)', async () => {
    const r = await h.plugin(env('a', 'demo'), stdin());
    assert.equal(r.exitCode, 0);
    assert.equal(await captureInstalled(net.ns('a')), true, 'exactly one jump per chain');
  });

  test('CHECK passes while captured, fails with the spec\'s error JSON once the rules are gone', async () => {
    assert.equal((await h.plugin(env('a', 'demo', { CNI_COMMAND: 'CHECK' }), stdin())).exitCode, 0);
    await purgeCapture(net.ns('a'));
    const r = await h.plugin(env('a', 'demo', { CNI_COMMAND: 'CHECK' }), stdin());
    assert.equal(r.exitCode, 1);
    assert.equal(errorOf(r.stdout).code, 11);
    assert.equal(errorOf(r.stdout).cniVersion, '1.0.0');
    assert.equal((await h.plugin(env('a', 'demo'), stdin())).exitCode, 0, 'ADD puts them back');
    assert.equal(await captureInstalled(net.ns('a')), true);
  });

  test('DEL twice succeeds with no output; DEL of a container never seen succeeds', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await h.plugin(env('a', 'demo', { CNI_COMMAND: 'DEL' }), stdin());
      assert.equal(r.exitCode, 0, r.stdout);
      assert.equal(r.stdout, '');
    }
    assert.equal((await pods()).some((p) => p.name === 'a'), false, 'forgotten');
    const ss = await runInNetns(net.ns('a'), 'ss', ['-Hltn']);
    assert.doesNotMatch(ss.stdout, /:15001\b/, 'the held listeners are closed');
    const never = await h.plugin(env('a', 'demo', { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'never-seen', CNI_NETNS: undefined }), stdin());
    assert.equal(never.exitCode, 0);
  });

  const errors: Array<[string, () => [Record<string, string | undefined>, string], number, RegExp?]> = [
    ['stdin is not JSON', () => [env('a', 'demo'), '{"cniVersion": '], 6],
    ['no CNI_COMMAND', () => [env('a', 'demo', { CNI_COMMAND: undefined }), stdin()], 4, /CNI_COMMAND/],
    ['ADD without CNI_NETNS', () => [env('a', 'demo', { CNI_NETNS: undefined }), stdin()], 4, /CNI_NETNS/],
    ['ADD without CNI_CONTAINERID', () => [env('a', 'demo', { CNI_CONTAINERID: undefined }), stdin()], 4, /CNI_CONTAINERID/],
    ['an invalid CNI_IFNAME', () => [env('a', 'demo', { CNI_IFNAME: 'a/b' }), stdin()], 4, /CNI_IFNAME/],
    ['an unknown command', () => [env('a', 'demo', { CNI_COMMAND: 'GC' }), stdin()], 4],
    ['an unsupported CNI version', () => [env('a', 'demo'), stdin({ cniVersion: '0.1.0' })], 1],
    ['ADD without prevResult (not chained)', () => [env('a', 'demo'), stdin({ prevResult: undefined })], 7, /chained/],
    ['no agent_socket in the configuration', () => [env('a', 'demo'), stdin({ agent_socket: undefined })], 7, /agent_socket/],
    ['a pod the control plane does not know', () => [env('a', 'nowhere'), stdin()], 11, /not known/],
    ['the agent is not reachable', () => [env('a', 'demo'), stdin({ agent_socket: join(h.dir, 'no-such.sock') })], 11, /not reachable/],
  ];
  for (const [name, make, code, msg] of errors) {
    test(`error JSON, code ${code}, exit 1: ${name}`, async () => {
      const [e, input] = make();
      const r = await h.plugin(e, input);
      assert.equal(r.exitCode, 1, r.stdout);
      const j = errorOf(r.stdout);
      assert.equal(j.code, code, r.stdout);
      assert.equal(typeof j.msg, 'string');
      assert.equal(typeof j.cniVersion, 'string');
      if (msg) assert.match(`${j.msg} ${j.details ?? ''}`, msg);
    });
  }

  test('DEL succeeds when the agent is not reachable (it cleans up on its return)', async () => {
    const r = await h.plugin(env('a', 'demo', { CNI_COMMAND: 'DEL' }), stdin({ agent_socket: join(h.dir, 'no-such.sock') }));
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, '');
  });

  describe('the chain through Debian\'s plugins (ptp + static IPAM, then ambit-cni)', () => {
    let runtime: CniRuntime;
    let server: TestProcess | undefined;
    const rt = (pod: string, ns: string, ip: string) => ({
      containerId: `chain-${pod}`, netns: `/var/run/netns/${net.ns(pod)}`, ifName: 'eth0',
      args: [['IgnoreUnknown', '1'], ['K8S_POD_NAMESPACE', ns], ['K8S_POD_NAME', pod], ['IP', `${ip}/24`], ['GATEWAY', '10.244.1.1']] as Array<[string, string]>,
    });

    before(() => {
      runtime = new CniRuntime({
        confList: parseConfList(readFileSync(h.conflist, 'utf8')), binDirs: [SYSTEM_CNI_DIR, ambitCniDir()],
        cacheDir: join(h.dir, 'cni-cache'), execNetns: `/var/run/netns/${net.ns('node')}`,
      });
    });

    after(async () => {
      await server?.stop(1000);
    });

    test('ADD: the pod gets its address and routes from ptp, the result passes through ambit-cni, and the enrolled pod is captured', async () => {
      const result = await runtime.add(rt('chain', 'demo', '10.244.1.20'));
      const ips = result.ips as Array<{ address: string; gateway: string }>;
      assert.deepEqual(ips.map((i) => [i.address, i.gateway]), [['10.244.1.20/24', '10.244.1.1']]);
      const ifs = result.interfaces as Array<{ name: string; sandbox?: string }>;
      assert.ok(ifs.some((i) => !i.sandbox && /^veth/.test(i.name)), 'ptp\'s host end is in the result');
      const addr = await runInNetns(net.ns('chain'), 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0']);
      assert.match(addr.stdout, /inet 10\.244\.1\.20\/24/);
      const routes = await runInNetns(net.ns('chain'), 'ip', ['route']);
      assert.match(routes.stdout, /default via 10\.244\.1\.1 dev eth0/);
      const host = await runCommand('ip', ['-n', net.ns('node'), '-4', 'addr']);
      assert.match(host.stdout, /inet 10\.244\.1\.1\/32/, 'the gateway lives on the host end, in the node namespace');
      assert.equal(await captureInstalled(net.ns('chain')), true, 'ambit-cni ran last and captured it');
      assert.equal(existsSync(join(h.dir, 'cni-cache', `ambit-chain-chain-eth0.json`)), true, 'the result is cached for CHECK and DEL');
    });

    test('a pod outside the mesh reaches its node through the ptp link (unmodified curl and python3)', async () => {
      await runtime.add(rt('chain2', 'legacy', '10.244.1.21'));
      assert.equal(await captureInstalled(net.ns('chain2')), false);
      server = spawnInNetns(net.ns('node'), 'python3', ['-u', '-m', 'http.server', '18080', '--bind', '10.244.1.1']);
      await server.waitForOutput(/Serving HTTP/);
      const r = await runInNetns(net.ns('chain2'), 'curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', 'http://10.244.1.1:18080/']);
      assert.equal(r.stdout, '200');
    });

    test('CHECK through the chain, then DEL (twice): the veth, the capture and the cache entry go', async () => {
      await runtime.check(rt('chain', 'demo', '10.244.1.20'));
      await runtime.del(rt('chain', 'demo', '10.244.1.20'));
      await runtime.del(rt('chain', 'demo', '10.244.1.20'));
      const links = await runInNetns(net.ns('chain'), 'ip', ['-o', 'link']);
      assert.doesNotMatch(links.stdout, /eth0/);
      assert.equal(existsSync(join(h.dir, 'cni-cache', `ambit-chain-chain-eth0.json`)), false);
      await waitFor('the agent forgot the pod', async () => !(await pods()).some((p) => p.name === 'chain'), 3000);
      await runtime.del(rt('chain2', 'legacy', '10.244.1.21'));
      const hostLinks = await runCommand('ip', ['-n', net.ns('node'), '-o', 'link', 'show', 'type', 'veth']);
      assert.equal(hostLinks.stdout.trim(), '', 'no host end left');
    });
  });
});
