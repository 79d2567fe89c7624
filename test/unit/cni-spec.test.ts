// CNI facts (src/cni/spec.ts), the ambit-cni ↔ agent wire (src/cni/plugin-wire.ts), the
// runtime's per-plugin configuration (src/cni/runtime.ts) and the agent's conflist install:
// table tests, and property tests for the parser of untrusted bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CniErrorCode, kubernetesPod, parseCniArgs, parsePluginRequest, type CniEnvironment } from '../../src/cni/spec.js';
import { encodeRequest, encodeResponse, MAX_REQUEST_BYTES, parseRequest, parseResponse } from '../../src/cni/plugin-wire.js';
import { parseConfList, pluginStdin, type ConfList } from '../../src/cni/runtime.js';
import { withAmbitPlugin } from '../../src/nodeagent/cni-install.js';
import { ipamArgs, runtimeConf, baseConfList } from '../../src/cluster/pod-cni.js';

const conf = (extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'ambit', type: 'ambit-cni', prevResult: { cniVersion: '1.0.0', ips: [] }, ...extra });
const env = (over: CniEnvironment = {}): CniEnvironment => ({
  CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc123', CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni', CNI_ARGS: 'K8S_POD_NAMESPACE=demo;K8S_POD_NAME=a', ...over,
});

test('parsePluginRequest: each command, what it requires, and the code of each mistake', () => {
  const cases: Array<{ name: string; env: CniEnvironment; stdin?: string; code?: number; msg?: RegExp }> = [
    { name: 'ADD ok', env: env() },
    { name: 'CHECK ok', env: env({ CNI_COMMAND: 'CHECK' }) },
    { name: 'DEL ok without CNI_NETNS (the namespace may be gone)', env: env({ CNI_COMMAND: 'DEL', CNI_NETNS: undefined }) },
    { name: 'VERSION needs nothing else', env: { CNI_COMMAND: 'VERSION' } },
    { name: 'no CNI_COMMAND', env: env({ CNI_COMMAND: undefined }), code: CniErrorCode.INVALID_ENVIRONMENT, msg: /CNI_COMMAND is not set/ },
    { name: 'unknown command', env: env({ CNI_COMMAND: 'FROB' }), code: CniErrorCode.INVALID_ENVIRONMENT, msg: /not one of/ },
    { name: 'ADD without CNI_NETNS', env: env({ CNI_NETNS: undefined }), code: CniErrorCode.INVALID_ENVIRONMENT, msg: /CNI_NETNS is not set/ },
    { name: 'ADD without CNI_CONTAINERID', env: env({ CNI_CONTAINERID: '' }), code: CniErrorCode.INVALID_ENVIRONMENT, msg: /CNI_CONTAINERID/ },
    { name: 'ADD without CNI_IFNAME', env: env({ CNI_IFNAME: undefined }), code: CniErrorCode.INVALID_ENVIRONMENT, msg: /CNI_IFNAME/ },
    { name: 'CHECK without CNI_PATH', env: env({ CNI_COMMAND: 'CHECK', CNI_PATH: undefined }), code: CniErrorCode.INVALID_ENVIRONMENT, msg: /CNI_PATH/ },
    { name: 'container id with a slash', env: env({ CNI_CONTAINERID: 'a/b' }), code: CniErrorCode.INVALID_ENVIRONMENT },
    { name: 'interface name too long', env: env({ CNI_IFNAME: 'eth0123456789012' }), code: CniErrorCode.INVALID_ENVIRONMENT },
    { name: 'relative netns path', env: env({ CNI_NETNS: 'netns/x' }), code: CniErrorCode.INVALID_ENVIRONMENT },
    { name: 'CNI_ARGS without =', env: env({ CNI_ARGS: 'K8S_POD_NAME' }), code: CniErrorCode.INVALID_ENVIRONMENT },
    { name: 'stdin not JSON', env: env(), stdin: '{"cniVersion":', code: CniErrorCode.DECODING_FAILURE },
    { name: 'stdin a JSON array', env: env(), stdin: '[]', code: CniErrorCode.DECODING_FAILURE },
    { name: 'no type', env: env(), stdin: JSON.stringify({ cniVersion: '1.0.0', name: 'x' }), code: CniErrorCode.INVALID_NETWORK_CONFIG, msg: /"type"/ },
    { name: 'unsupported version', env: env(), stdin: JSON.stringify({ cniVersion: '9.9.9', name: 'x', type: 'ambit-cni' }), code: CniErrorCode.INCOMPATIBLE_VERSION },
    { name: 'prevResult not an object', env: env(), stdin: conf({ prevResult: [1] }), code: CniErrorCode.INVALID_NETWORK_CONFIG },
  ];
  for (const c of cases) {
    const r = parsePluginRequest(c.env, c.stdin ?? conf());
    if (c.code === undefined) {
      assert.ok(r.ok, `${c.name}: ${JSON.stringify(r)}`);
    } else {
      assert.ok(!r.ok, c.name);
      assert.equal(r.error.code, c.code, c.name);
      if (c.msg) assert.match(r.error.msg, c.msg, c.name);
      assert.equal(typeof r.error.cniVersion, 'string');
    }
  }
});

test('CNI_ARGS and the Kubernetes pod they name', () => {
  assert.deepEqual(parseCniArgs(''), []);
  assert.deepEqual(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=a=b;'), [['IgnoreUnknown', '1'], ['K8S_POD_NAME', 'a=b']]);
  assert.equal(parseCniArgs('=x'), undefined);
  assert.deepEqual(kubernetesPod([['K8S_POD_NAMESPACE', 'demo'], ['K8S_POD_NAME', 'a']]), { namespace: 'demo', name: 'a' });
  assert.equal(kubernetesPod([['K8S_POD_NAME', 'a']]), undefined);
});

test('wire: a request round-trips, every prefix is partial, and garbage is refused', () => {
  const req = { env: env(), stdin: conf() };
  const bytes = encodeRequest(req);
  const r = parseRequest(bytes);
  assert.equal(r.ok, true);
  if (r.ok === true) assert.deepEqual(r.value, req);
  for (let i = 0; i < bytes.length; i++) assert.notEqual(parseRequest(bytes.subarray(0, i)).ok, true, `prefix ${i} must not parse whole`);
  const bad: Array<[string, Buffer]> = [
    ['bad magic', Buffer.from('HTTP/1.1 200\n')],
    ['unknown field', Buffer.from('AMBIT-CNI/1\nFOO 1\nx\nEND\n')],
    ['field twice', Buffer.from('AMBIT-CNI/1\nSTDIN 1\nx\nSTDIN 1\nx\nEND\n')],
    ['length lies', Buffer.from('AMBIT-CNI/1\nSTDIN 1\nxyz\nEND\n')],
    ['bytes after END', Buffer.concat([bytes, Buffer.from('x')])],
    ['no STDIN', Buffer.from('AMBIT-CNI/1\nCNI_COMMAND 3\nADD\nEND\n')],
    ['huge length', Buffer.from('AMBIT-CNI/1\nSTDIN 99999999\n')],
  ];
  for (const [name, b] of bad) assert.equal(parseRequest(b).ok, false, name);
  assert.equal(parseRequest(Buffer.alloc(MAX_REQUEST_BYTES + 1, 0x41)).ok, false);
  assert.deepEqual(parseResponse(encodeResponse(1, '{"code":11}\n')), { exitCode: 1, stdout: '{"code":11}\n' });
  assert.equal(parseResponse(Buffer.from('x\n')), undefined);
});

test('wire (property): parseRequest never throws, and encodeRequest always round-trips', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
    const r = parseRequest(Buffer.concat([Buffer.from('AMBIT-CNI/1\n'), Buffer.from(bytes)]));
    assert.ok(r.ok === true || r.ok === false || r.ok === 'partial');
  }), { numRuns: 2000 });
  const value = fc.string({ maxLength: 40 });
  fc.assert(fc.property(fc.record({ CNI_COMMAND: value, CNI_NETNS: value, CNI_ARGS: value }, { requiredKeys: [] }), fc.string({ maxLength: 200 }), (e, stdin) => {
    const r = parseRequest(encodeRequest({ env: e, stdin }));
    assert.equal(r.ok, true);
    if (r.ok === true) assert.deepEqual(r.value, { env: { ...e }, stdin });
  }), { numRuns: 500 });
});

test('runtime: each plugin gets the list name and version, its declared capabilities as runtimeConfig, and prevResult', () => {
  const list: ConfList = {
    cniVersion: '1.0.0', name: 'net',
    plugins: [{ type: 'ptp', capabilities: { ips: true, mac: false }, ipam: { type: 'static' } }, { type: 'ambit-cni', agent_socket: '/s' }],
  };
  assert.deepEqual(pluginStdin(list, 0, undefined, { ips: ['10.0.0.2/24'], mac: 'x', portMappings: [] }), {
    type: 'ptp', ipam: { type: 'static' }, name: 'net', cniVersion: '1.0.0', runtimeConfig: { ips: ['10.0.0.2/24'] },
  });
  const prev = { cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24' }] };
  assert.deepEqual(pluginStdin(list, 1, prev), { type: 'ambit-cni', agent_socket: '/s', name: 'net', cniVersion: '1.0.0', prevResult: prev });
  assert.throws(() => parseConfList('{"cniVersion":"1.0.0","name":"x","plugins":[]}'), /plugins/);
  assert.throws(() => parseConfList('{"cniVersion":"7","name":"x","plugins":[{"type":"ptp"}]}'), /cniVersion/);
});

test('the agent appends exactly one ambit-cni, last, and keeps the rest of the chain', () => {
  const base = baseConfList();
  const once = withAmbitPlugin(base, '/run/a.sock');
  assert.deepEqual(once.plugins.map((p) => p.type), ['ptp', 'ambit-cni']);
  const again = withAmbitPlugin({ ...once, plugins: [{ type: 'ambit-cni', agent_socket: '/old' }, ...once.plugins] }, '/run/b.sock');
  assert.deepEqual(again.plugins.map((p) => p.type), ['ptp', 'ambit-cni']);
  assert.equal(again.plugins[1]!.agent_socket, '/run/b.sock');
});

test('the kubelet side: static IPAM arguments and the CNI environment of a sandbox', () => {
  assert.deepEqual(ipamArgs({ podCidr: '10.244.1.0/24' }, '10.244.1.7'), [['IP', '10.244.1.7/24'], ['GATEWAY', '10.244.1.1']]);
  const rt = runtimeConf({ namespace: 'demo', name: 'a', node: 'node-1', ip: '10.244.1.7', containerId: 'c'.repeat(64), netns: '/var/run/netns/x', podCidr: '10.244.1.0/24' });
  assert.equal(rt.ifName, 'eth0');
  assert.deepEqual(Object.fromEntries(rt.args), {
    IgnoreUnknown: '1', K8S_POD_NAMESPACE: 'demo', K8S_POD_NAME: 'a', K8S_POD_INFRA_CONTAINER_ID: 'c'.repeat(64), IP: '10.244.1.7/24', GATEWAY: '10.244.1.1',
  });
});
