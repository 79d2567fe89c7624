// The ZDS messages (src/xds/zds.ts): Istio's field numbers on the wire, round trips, the
// refusal of malformed messages with a reason, and property tests (the decoders take bytes
// from another process and must never throw). Also the enrolment rule the agent shares with
// the control plane, and the parsing the agent uses to find pods it was not told about.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeAck, decodeHello, decodeRequest, encodeAck, encodeHello, encodeRequest, type WorkloadRequest } from '../../src/xds/zds.js';
import { dataplaneMode } from '../../src/model/enrolment.js';
import { parseAllNetnsAddresses, parsePeerNamespaces } from '../../src/nodeagent/netns-discovery.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('ZDS wire facts: Istio field numbers', () => {
  assert.equal(hex(encodeHello({ version: 1, features: [] })), '0801', 'ZdsHello.version = 1');
  assert.equal(hex(encodeAck('')), '0a00', 'WorkloadResponse.ack = 1, empty Ack');
  assert.equal(hex(encodeAck('no')), '0a040a026e6f', 'Ack.error = 1');
  assert.equal(hex(encodeRequest({ kind: 'snapshot_sent' })), '1a00', 'WorkloadRequest.snapshot_sent = 3');
  assert.equal(hex(encodeRequest({ kind: 'del', uid: 'u' })), '12031201' + '75', 'WorkloadRequest.del = 2, DelWorkload.uid = 2');
  assert.equal(hex(encodeRequest({ kind: 'keep', uid: 'u' })), '2a030a0175', 'WorkloadRequest.keep = 5, KeepWorkload.uid = 1');
  const add = encodeRequest({ kind: 'add', uid: 'u', info: { name: 'n', namespace: 's', serviceAccount: 'a' }, listenerPorts: [] });
  // add = 1 { uid = 1 "u", workload_info = 2 { name = 1 "n", namespace = 2 "s", service_account = 3 "a" } }
  assert.equal(hex(add), '0a0e' + '0a0175' + '1209' + '0a016e' + '120173' + '1a0161');
});

test('round trips', () => {
  const reqs: WorkloadRequest[] = [
    { kind: 'add', uid: 'Kubernetes//Pod/demo/a', info: { name: 'a', namespace: 'demo', serviceAccount: 'sa' }, listenerPorts: [15001, 15006, 15008] },
    { kind: 'add', uid: 'x', info: undefined, listenerPorts: [] },
    { kind: 'keep', uid: 'k' },
    { kind: 'del', uid: 'd' },
    { kind: 'snapshot_sent' },
  ];
  for (const r of reqs) assert.deepEqual(decodeRequest(encodeRequest(r)), { ok: true, value: r });
  assert.deepEqual(decodeHello(encodeHello({ version: 1, features: ['listener-handoff'] })), { ok: true, value: { version: 1, features: ['listener-handoff'] } });
  assert.deepEqual(decodeAck(encodeAck('boom')), { ok: true, value: { error: 'boom' } });
});

test('malformed requests are refused with a reason', () => {
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['not protobuf', Buffer.from([0xff, 0xff, 0xff]), /not a valid/],
    ['no payload', Buffer.alloc(0), /no payload/],
    ['add without uid', encodeRequest({ kind: 'add', uid: '', info: undefined, listenerPorts: [] }), /uid is empty/],
    ['del without uid', Buffer.from('1200', 'hex'), /uid is empty/],
    ['port 0', encodeRequest({ kind: 'add', uid: 'u', info: undefined, listenerPorts: [0] }), /1\.\.65535/],
    ['port twice', encodeRequest({ kind: 'add', uid: 'u', info: undefined, listenerPorts: [15001, 15001] }), /twice/],
    ['too many ports', encodeRequest({ kind: 'add', uid: 'u', info: undefined, listenerPorts: [1, 2, 3, 4, 5, 6, 7, 8, 9] }), /more than 8/],
    ['uid too long', encodeRequest({ kind: 'del', uid: 'x'.repeat(2000) }), /longer than/],
  ];
  for (const [name, bytes, why] of cases) {
    const r = decodeRequest(bytes);
    assert.equal(r.ok, false, name);
    if (!r.ok) assert.match(r.error, why, name);
  }
  assert.equal(decodeAck(Buffer.alloc(0)).ok, false, 'a response without ack');
  assert.equal(decodeHello(Buffer.from([0x08])).ok, false, 'a truncated hello');
});

test('decoders never throw on arbitrary bytes (property)', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (b) => {
    for (const d of [decodeRequest, decodeAck, decodeHello]) {
      const r = d(b);
      assert.ok(r.ok === true || (r.ok === false && typeof r.error === 'string'));
    }
  }), { numRuns: 3000 });
  fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 100 }), fc.string({ maxLength: 50 }), fc.uniqueArray(fc.integer({ min: 1, max: 65535 }), { maxLength: 8 }), (uid, ns, ports) => {
    const r: WorkloadRequest = { kind: 'add', uid, info: { name: 'n', namespace: ns, serviceAccount: '' }, listenerPorts: ports };
    assert.deepEqual(decodeRequest(encodeRequest(r)), { ok: true, value: r });
  }), { numRuns: 500 });
});

test('enrolment: the rule the control plane and the node agent share', () => {
  const cases: Array<[string, Parameters<typeof dataplaneMode>[0], Record<string, string>, string]> = [
    ['namespace ambient', { namespace: 'demo', labels: {} }, { 'istio.io/dataplane-mode': 'ambient' }, 'ambient'],
    ['pod opts out', { namespace: 'demo', labels: { 'istio.io/dataplane-mode': 'none' } }, { 'istio.io/dataplane-mode': 'ambient' }, 'none'],
    ['pod opts in', { namespace: 'legacy', labels: { 'istio.io/dataplane-mode': 'ambient' } }, {}, 'ambient'],
    ['kube-system never', { namespace: 'kube-system', labels: { 'istio.io/dataplane-mode': 'ambient' } }, { 'istio.io/dataplane-mode': 'ambient' }, 'none'],
    ['waypoint pods never', { namespace: 'demo', labels: {}, waypointOf: { name: 'w' } }, { 'istio.io/dataplane-mode': 'ambient' }, 'none'],
    ['sidecar beats ambient', { namespace: 'demo', labels: { 'sidecar.istio.io/inject': 'true' } }, { 'istio.io/dataplane-mode': 'ambient' }, 'sidecar'],
    ['injection namespace', { namespace: 'demo', labels: {} }, { 'istio-injection': 'enabled' }, 'sidecar'],
    ['nothing', { namespace: 'demo', labels: {} }, {}, 'none'],
  ];
  for (const [name, pod, ns, want] of cases) assert.equal(dataplaneMode(pod, ns), want, name);
});

test('netns discovery parses `ip -all netns exec ip -4 -o addr` and refuses ambiguous addresses', () => {
  const text = [
    '', 'netns: p-a', '1: lo    inet 127.0.0.1/8 scope host lo', '2: eth0    inet 10.244.1.5/24 brd 10.244.1.255 scope global eth0',
    '', 'netns: p-b', '2: eth0    inet 10.244.1.6/24 scope global eth0',
    '', 'netns: p-c', '2: eth0    inet 10.244.1.6/24 scope global eth0',
  ].join('\n');
  const m = parseAllNetnsAddresses(text);
  assert.equal(m.get('10.244.1.5'), 'p-a');
  assert.equal(m.get('10.244.1.6'), '', 'in two namespaces: not trusted');
  assert.equal(m.has('127.0.0.1'), false);
});

test('netns discovery finds the pods behind a node\'s veths (`ip -o link` lines, alias or not)', () => {
  const text = [
    '2: ul0@if3: <BROADCAST,UP> mtu 1500 qdisc noqueue state UP\\    link/ether fa:8a:1e:1d:25:6f brd ff:ff:ff:ff:ff:ff link-netns p-underlay',
    '3: veth1@if2: <BROADCAST,UP> mtu 1500\\    link/ether 62:a1:f5:96:59:0e brd ff:ff:ff:ff:ff:ff link-netns p-demo-client\\    alias ambit-pod:demo/client:10.244.1.2',
    '4: veth2@if2: <BROADCAST,UP> mtu 1500\\    link/ether 62:a1:f5:96:59:0f brd ff:ff:ff:ff:ff:ff link-netns p-demo-b',
  ].join('\n');
  assert.deepEqual(parsePeerNamespaces(text), ['p-underlay', 'p-demo-client', 'p-demo-b']);
});
