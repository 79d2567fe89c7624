// The delta ADS server and client over real gRPC on loopback: initial push and ACKs,
// incremental updates, removals, NACK of one bad resource, resume from
// initial_resource_versions, keeping resources while the server is down, authentication,
// per-client filtering, flow control and response chunking.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { FakeClock } from '../../src/core/clock.js';
import type { AdsServerStatus, AdsTypeStatus } from '../../src/xds/ads-types.js';
import type { AdsStateEvent } from '../../src/xds/ads-client.js';
import {
  addressResource, addressResourceType, authorizationResource, authorizationResourceType, encodeWorkload,
} from '../../src/xds/codec.js';
import { workloadRoot } from '../../src/xds/protos.js';
import {
  ADDRESS_TYPE_URL as ADDR, AUTHORIZATION_TYPE_URL as AUTHZ, type Authorization, type Service, type Workload,
} from '../../src/xds/workload-api.js';
import { authorization, service, workload } from '../helpers/xds-fixtures.js';
import { RawStream, settle, startAds, startClient, type RunningAds, type TestClient } from '../helpers/xds.js';
import { waitFor } from '../helpers/wait.js';

const cleanup: (() => void)[] = [];
after(() => {
  for (const f of cleanup.reverse()) f();
});

function track<T extends RunningAds | TestClient | RawStream>(x: T): T {
  if (x instanceof RawStream) cleanup.push(() => x.close());
  else if ('ads' in x) cleanup.push(() => x.stop());
  else cleanup.push(() => x.client.close());
  return x;
}

interface World {
  workloads: Workload[];
  services: Service[];
  policies: Authorization[];
}

function world(nW = 3, nS = 1, nA = 2): World {
  return {
    workloads: Array.from({ length: nW }, (_, i) => workload(i)),
    services: Array.from({ length: nS }, (_, i) => service(i)),
    policies: Array.from({ length: nA }, (_, i) => authorization(i)),
  };
}

function publish(srv: RunningAds, w: World): void {
  srv.ads.setResources(ADDR, [
    ...w.workloads.map((x) => addressResource({ workload: x })),
    ...w.services.map((x) => addressResource({ service: x })),
  ]);
  srv.ads.setResources(AUTHZ, w.policies.map(authorizationResource));
}

function typeStatus(st: AdsServerStatus, typeUrl: string, nodeId = 'ztunnel~node-a'): AdsTypeStatus {
  const c = st.clients.find((x) => x.nodeId === nodeId);
  assert.ok(c, `client ${nodeId} in status`);
  const t = c.types.find((x) => x.typeUrl === typeUrl);
  assert.ok(t, `type ${typeUrl} in status`);
  return t;
}

function allAcked(srv: RunningAds, nodeId = 'ztunnel~node-a'): boolean {
  const c = srv.ads.status().clients.find((x) => x.nodeId === nodeId);
  return !!c && c.types.length === 2 && c.types.every((t) => t.pending.length === 0 && t.versionAcked !== '' && t.versionAcked === t.versionSent);
}

async function synced(srv: RunningAds, c: TestClient, nodeId = 'ztunnel~node-a'): Promise<void> {
  await c.client.waitForSync();
  await waitFor('every response ACKed', () => allAcked(srv, nodeId));
}

test('ads: initial push delivers every resource, decoded, and the server records the ACKs', async () => {
  const srv = track(await startAds());
  const w = world();
  publish(srv, w);
  const c = track(startClient(srv.address, { node: { id: 'ztunnel~node-a', cluster: 'Kubernetes', metadata: { NODE_NAME: 'node-a' } } }));
  await synced(srv, c);

  const addrs = c.client.resources(addressResourceType);
  assert.equal(addrs.size, 4);
  assert.deepEqual(addrs.get(w.workloads[0]!.uid)?.value, { workload: w.workloads[0] });
  assert.deepEqual(addrs.get('ns0/svc-0.ns0.svc.cluster.local')?.value, { service: w.services[0] });
  assert.deepEqual([...c.client.resources(authorizationResourceType).keys()].sort(), ['ns0/policy-0', 'ns1/policy-1']);

  const st = srv.ads.status();
  assert.equal(st.clients.length, 1);
  assert.equal(st.clients[0]!.nodeId, 'ztunnel~node-a');
  const a = typeStatus(st, ADDR);
  assert.equal(a.wildcard, true);
  assert.equal(a.resourcesAcked, 4);
  assert.equal(a.acks, 1);
  assert.ok(a.lastAckedNonce !== '' && a.lastAckedNonce === a.lastNonce);
  assert.equal(srv.ads.clients()[0]!.node.metadata.NODE_NAME, 'node-a');
  assert.equal(srv.ads.clients()[0]!.node.cluster, 'Kubernetes');
  assert.deepEqual(c.states.slice(0, 2), ['connecting', 'connected']);
  assert.equal(c.updates.filter((u) => u.initial).length, 2);
  const counters = srv.ads.counters();
  assert.equal(counters.resourcesSent, 6);
  assert.equal(counters.acks, 2);
  assert.equal(counters.connectedClients, 1);
});

test('ads: an incremental update sends only the changed resource; an unchanged set sends nothing', async () => {
  const srv = track(await startAds());
  const w = world();
  publish(srv, w);
  const c = track(startClient(srv.address));
  await synced(srv, c);

  const before = srv.ads.counters();
  const seen = c.updates.length;
  w.workloads[1] = { ...w.workloads[1]!, status: 'UNHEALTHY' };
  publish(srv, w);
  await waitFor('the update', () => c.updates.length > seen);
  await waitFor('the ACK', () => allAcked(srv));

  const u = c.updates.at(-1)!;
  assert.equal(u.typeUrl, ADDR);
  assert.deepEqual(u.upserted.map((r) => r.name), [w.workloads[1].uid]);
  assert.deepEqual(u.removed, []);
  assert.equal(c.updates.length, seen + 1, 'one response, for the one type that changed');
  const after1 = srv.ads.counters();
  assert.equal(after1.resourcesSent - before.resourcesSent, 1);
  assert.equal(after1.responsesSent - before.responsesSent, 1);
  const bytes = after1.bytesSent - before.bytesSent;
  const bodyBytes = encodeWorkload(w.workloads[1]).length;
  assert.ok(bytes > bodyBytes && bytes < bodyBytes + 200, `one workload's worth of bytes (${bytes}, body ${bodyBytes})`);
  assert.equal((c.client.resources(addressResourceType).get(w.workloads[1].uid)?.value.workload as Workload).status, 'UNHEALTHY');
  assert.ok(after1.pushLatency.count >= 1 && after1.changeToAckLatency.count >= 1);

  publish(srv, w);
  await settle();
  assert.equal(srv.ads.counters().responsesSent, after1.responsesSent);
  assert.equal(c.updates.length, seen + 1);
});

test('ads: a removal reaches the client as removed_resources', async () => {
  const srv = track(await startAds());
  const w = world();
  publish(srv, w);
  const c = track(startClient(srv.address));
  await synced(srv, c);
  const gone = w.workloads[2]!.uid;
  const seen = c.updates.length;
  srv.ads.update(ADDR, [], [gone]);
  await waitFor('the removal', () => c.updates.length > seen);
  const u = c.updates.at(-1)!;
  assert.deepEqual(u.removed, [gone]);
  assert.deepEqual(u.upserted, []);
  assert.equal(c.client.resources(addressResourceType).has(gone), false);
  assert.equal(c.client.resources(addressResourceType).size, 3);
  assert.equal(srv.ads.counters().removalsSent, 1);
  await waitFor('the ACK', () => allAcked(srv));
  assert.equal(typeStatus(srv.ads.status(), ADDR).resourcesAcked, 3);
});

test('ads: a NACK of one bad resource keeps the rest applied; the server records it and keeps the ACKed versions', async () => {
  const srv = track(await startAds());
  const w = world();
  publish(srv, w);
  const c = track(startClient(srv.address));
  await synced(srv, c);
  const ackedBefore = typeStatus(srv.ads.status(), AUTHZ).versionAcked;
  const nacks: string[] = [];
  srv.ads.on('nack', (n) => nacks.push(`${n.client.nodeId} ${n.message}`));

  // policy-0 gets a body with a 5-byte "IP"; policy-9 is new and fine.
  const bad = workloadRoot().lookupType('istio.security.Authorization').encode({
    name: 'policy-0', namespace: 'ns0', rules: [{ clauses: [{ matches: [{ sourceIps: [{ address: Buffer.from([1, 2, 3, 4, 5]), length: 8 }] }] }] }],
  }).finish();
  const p9 = authorization(9);
  srv.ads.update(AUTHZ, [{ name: 'ns0/policy-0', body: bad }, authorizationResource(p9)]);

  await waitFor('the NACK', () => nacks.length === 1);
  assert.match(nacks[0]!, /^ztunnel~node-a rejected 1 of 2 resources: ns0\/policy-0: authorization\.rules\[0\]\.clauses\[0\]\.matches\[0\]\.source_ips\[0\]\.address: 5 bytes is not an IP address/);
  const policies = c.client.resources(authorizationResourceType);
  assert.deepEqual(policies.get('ns0/policy-0')?.value, w.policies[0], 'the bad resource keeps its previous version');
  assert.deepEqual(policies.get('ns9/policy-9')?.value, p9, 'the good one is applied');

  const t = typeStatus(srv.ads.status(), AUTHZ);
  assert.equal(t.nacks, 1);
  assert.ok(t.lastNack);
  assert.equal(t.lastNack.code, 3);
  assert.match(t.lastNack.message, /ns0\/policy-0/);
  assert.equal(t.versionAcked, ackedBefore, 'a NACK leaves the ACKed version');
  assert.notEqual(t.versionSent, ackedBefore);
  assert.equal(t.pending.length, 0);
  const logged = srv.logs.find((l) => l.msg === 'client rejected resources (NACK)');
  assert.ok(logged);
  assert.equal(logged.node, 'ztunnel~node-a');
  assert.equal(logged.level, 'warn');
  assert.equal(c.client.status().types.find((x) => x.typeUrl === AUTHZ)?.nacks, 1);

  // The fix (a new version) is sent and ACKed.
  const fixed = { ...w.policies[0]!, action: 'DENY' as const };
  srv.ads.update(AUTHZ, [authorizationResource(fixed)]);
  await waitFor('the fixed policy', () => (policies.get('ns0/policy-0')?.value as Authorization).action === 'DENY');
  await waitFor('the ACK', () => allAcked(srv));
});

test('ads: the client keeps its resources while the server is down and resumes with only the difference', async () => {
  const first = track(await startAds());
  const w = world(5, 1, 2);
  publish(first, w);
  const c = track(startClient(first.address));
  await synced(first, c);
  const port = first.port;

  first.stop();
  await waitFor('the client to notice', () => c.client.state === 'disconnected');
  await settle(150);
  assert.equal(c.client.resources(addressResourceType).size, 6, 'resources kept while down');
  assert.equal(c.client.resources(authorizationResourceType).size, 2);
  assert.ok(c.client.status().attempt >= 2, 'retrying');

  const second = track(await startAds({}, `127.0.0.1:${port}`));
  const changed = { ...w.workloads[1]!, canonicalRevision: 'v2' };
  const added = workload(5);
  const removed = w.workloads[3]!.uid;
  const w2: World = { ...w, workloads: [w.workloads[0]!, changed, w.workloads[2]!, w.workloads[4]!, added] };
  publish(second, w2);
  const seen = c.updates.length;
  await waitFor('the resumed stream ACKed', () => allAcked(second));

  const counters = second.ads.counters();
  assert.equal(counters.resourcesSent, 2, 'only the changed and the added workload');
  assert.equal(counters.removalsSent, 1, 'and the one that is gone');
  const addrUpdate = c.updates.slice(seen).find((u) => u.typeUrl === ADDR)!;
  assert.deepEqual(addrUpdate.upserted.map((r) => r.name).sort(), [changed.uid, added.uid].sort());
  assert.deepEqual(addrUpdate.removed, [removed]);
  const authzUpdate = c.updates.slice(seen).find((u) => u.typeUrl === AUTHZ)!;
  assert.deepEqual(authzUpdate.upserted, [], 'authorizations unchanged: an empty "in sync" response');
  const have = new Map([...c.client.resources(addressResourceType).values()].map((r) => [r.name, r.version]));
  assert.deepEqual(have, second.ads.versions(ADDR));
  assert.equal(c.client.state, 'connected');
});

test('ads: resume at the wire level: initial_resource_versions gets only what differs and removals', async () => {
  const srv = track(await startAds());
  const w = world(3, 0, 0);
  publish(srv, w);
  const v = srv.ads.versions(ADDR);
  const raw = track(new RawStream(srv.address));
  raw.send({
    node: { id: 'raw' },
    typeUrl: ADDR,
    resourceNamesSubscribe: ['*'],
    initialResourceVersions: { [w.workloads[0]!.uid]: v.get(w.workloads[0]!.uid)!, [w.workloads[1]!.uid]: 'stale', 'Kubernetes//Pod/x/gone': 'v1' },
  });
  const r = await raw.next(1);
  assert.equal(r.typeUrl, ADDR);
  assert.deepEqual(r.resources.map((x) => x.name).sort(), [w.workloads[1]!.uid, w.workloads[2]!.uid].sort());
  assert.deepEqual(r.removedResources, ['Kubernetes//Pod/x/gone']);
  for (const res of r.resources) {
    assert.equal(res.resource?.type_url, ADDR);
    assert.equal(res.version, v.get(res.name));
  }
  assert.ok(r.nonce);
  assert.equal(r.systemVersionInfo, '1');
});

test('ads: authentication: a bad or missing token is UNAUTHENTICATED, a node id not matching it is PERMISSION_DENIED', async () => {
  const srv = track(await startAds({
    authenticate: (ctx) => (ctx.bearerToken === 'node-a-token'
      ? { ok: true, caller: { nodeId: 'ztunnel~node-a', identity: 'spiffe://cluster.local/ns/istio-system/sa/ztunnel' } }
      : { ok: false, message: ctx.bearerToken ? 'unknown token' : 'no bearer token' }),
  }));
  publish(srv, world());

  const refused = async (opts: Parameters<typeof startClient>[1]): Promise<AdsStateEvent> => {
    const c = track(startClient(srv.address, opts));
    const ev = await new Promise<AdsStateEvent>((resolve) => c.client.on('state', (e) => { if (e.error) resolve(e); }));
    c.client.close();
    assert.equal(c.client.resources(addressResourceType).size, 0);
    return ev;
  };
  const bad = await refused({ token: 'wrong' });
  assert.equal(bad.error?.code, 'UNAUTHENTICATED');
  assert.equal(bad.error?.message, 'unknown token');
  const none = await refused({});
  assert.equal(none.error?.code, 'UNAUTHENTICATED');
  assert.equal(none.error?.message, 'no bearer token');
  const other = await refused({ token: 'node-a-token', node: { id: 'ztunnel~node-b' } });
  assert.equal(other.error?.code, 'PERMISSION_DENIED');
  assert.match(other.error?.message ?? '', /node id 'ztunnel~node-b' does not match the authenticated node 'ztunnel~node-a'/);
  assert.ok(srv.ads.counters().streamsRejected >= 3);
  assert.equal(srv.ads.clients().length, 0);

  const good = track(startClient(srv.address, { token: async () => 'node-a-token' }));
  await synced(srv, good);
  assert.equal(srv.ads.status().clients[0]?.identity, 'spiffe://cluster.local/ns/istio-system/sa/ztunnel');
  assert.equal(good.client.resources(addressResourceType).size, 4);
});

test('ads: a per-client filter decides what each client gets; refilter applies a change of mind', async () => {
  const nodeOf = new Map<string, string>();
  const srv = track(await startAds({
    filter: (client, typeUrl, name) => typeUrl !== ADDR || !nodeOf.has(name) || nodeOf.get(name) === client.node.metadata.NODE_NAME,
  }));
  const w = world(4, 1, 1);
  w.workloads.forEach((x, i) => nodeOf.set(x.uid, i % 2 === 0 ? 'node-a' : 'node-b'));
  publish(srv, w);
  const a = track(startClient(srv.address, { node: { id: 'ztunnel~node-a', metadata: { NODE_NAME: 'node-a' } } }));
  const b = track(startClient(srv.address, { node: { id: 'ztunnel~node-b', metadata: { NODE_NAME: 'node-b' } } }));
  await synced(srv, a, 'ztunnel~node-a');
  await synced(srv, b, 'ztunnel~node-b');
  const names = (c: TestClient): string[] => [...c.client.resources(addressResourceType).keys()].sort();
  assert.deepEqual(names(a), [w.workloads[0]!.uid, w.workloads[2]!.uid, 'ns0/svc-0.ns0.svc.cluster.local'].sort());
  assert.deepEqual(names(b), [w.workloads[1]!.uid, w.workloads[3]!.uid, 'ns0/svc-0.ns0.svc.cluster.local'].sort());

  // workload 0 moves to node-b.
  nodeOf.set(w.workloads[0]!.uid, 'node-b');
  srv.ads.refilter();
  await waitFor('the move', () => names(b).includes(w.workloads[0]!.uid) && !names(a).includes(w.workloads[0]!.uid));
  assert.equal(names(a).length, 2);
  assert.equal(names(b).length, 4);
});

test('ads: one response in flight per client and type; changes meanwhile are coalesced; a silent client is pipelined after ackTimeoutMs', async () => {
  const srv = track(await startAds({ ackTimeoutMs: 60_000 }));
  const w = world(3, 0, 0);
  publish(srv, w);
  const raw = track(new RawStream(srv.address));
  raw.send({ node: { id: 'raw' }, typeUrl: ADDR, resourceNamesSubscribe: ['*'] });
  const r1 = await raw.next(1);
  assert.equal(r1.resources.length, 3);

  srv.ads.update(ADDR, [addressResource({ workload: { ...w.workloads[0]!, node: 'n2' } })]);
  srv.ads.update(ADDR, [addressResource({ workload: { ...w.workloads[1]!, node: 'n2' } })]);
  srv.ads.update(ADDR, [], [w.workloads[2]!.uid]);
  await settle(100);
  assert.equal(raw.responses.length, 1, 'nothing more until the ACK');
  assert.equal(typeStatus(srv.ads.status(), ADDR, 'raw').pending.length, 1);

  raw.send({ typeUrl: ADDR, responseNonce: r1.nonce });
  const r2 = await raw.next(2);
  assert.deepEqual(r2.resources.map((x) => x.name).sort(), [w.workloads[0]!.uid, w.workloads[1]!.uid].sort());
  assert.deepEqual(r2.removedResources, [w.workloads[2]!.uid]);
  raw.send({ typeUrl: ADDR, responseNonce: r2.nonce });
  await waitFor('ACK', () => typeStatus(srv.ads.status(), ADDR, 'raw').pending.length === 0);
  assert.equal(typeStatus(srv.ads.status(), ADDR, 'raw').resourcesAcked, 2);

  // A client that never answers still gets changes, after ackTimeoutMs (on a fake clock).
  const clock = new FakeClock();
  const slow = track(await startAds({ ackTimeoutMs: 150, clock }));
  publish(slow, w);
  const silent = track(new RawStream(slow.address));
  silent.send({ node: { id: 'silent' }, typeUrl: ADDR, resourceNamesSubscribe: ['*'] });
  await silent.next(1);
  slow.ads.update(ADDR, [], [w.workloads[0]!.uid]);
  await clock.advance(149);
  await settle(100);
  assert.equal(silent.responses.length, 1, 'held back until the ACK timeout');
  await clock.advance(1);
  const late = await silent.next(2);
  assert.deepEqual(late.removedResources, [w.workloads[0]!.uid]);
  assert.ok(slow.logs.some((l) => l.msg === 'client has not answered a response; sending further changes anyway'));
});

test('ads: a large push is split into several responses, each ACKed; nothing is sent for a type before it is set', async () => {
  const srv = track(await startAds({ maxResponseBytes: 2000 }));
  const raw = track(new RawStream(srv.address));
  raw.send({ node: { id: 'raw' }, typeUrl: ADDR, resourceNamesSubscribe: ['*'] });
  await settle(100);
  assert.equal(raw.responses.length, 0, 'the control plane has not set the type yet');
  srv.ads.setResources(ADDR, []);
  const empty = await raw.next(1);
  assert.deepEqual(empty.resources, [], 'the first response says "in sync" even when empty');
  raw.close();

  srv.ads.setResources(ADDR, Array.from({ length: 40 }, (_, i) => addressResource({ workload: workload(i) })));
  srv.ads.setResources(AUTHZ, []);
  const c = track(startClient(srv.address));
  await synced(srv, c);
  assert.equal(c.client.resources(addressResourceType).size, 40);
  const addrResponses = c.updates.filter((u) => u.typeUrl === ADDR);
  assert.ok(addrResponses.length >= 5, `split into ${addrResponses.length} responses`);
  assert.equal(typeStatus(srv.ads.status(), ADDR).acks, addrResponses.length);
});

test('ads: a stream without a node id is refused with INVALID_ARGUMENT; named subscriptions get only those names', async () => {
  const srv = track(await startAds());
  publish(srv, world(3, 0, 3));
  const anon = track(new RawStream(srv.address));
  anon.send({ typeUrl: ADDR, resourceNamesSubscribe: ['*'] });
  await waitFor('the refusal', () => anon.status !== undefined);
  assert.equal(anon.status?.code, grpc.status.INVALID_ARGUMENT);

  const named = track(new RawStream(srv.address));
  named.send({ node: { id: 'named' }, typeUrl: AUTHZ, resourceNamesSubscribe: ['ns1/policy-1'] });
  const r = await named.next(1);
  assert.deepEqual(r.resources.map((x) => x.name), ['ns1/policy-1']);
});

test('ads client: reconnect delays grow exponentially with jitter, capped, and reset after a healthy stream', async () => {
  // A port with nothing behind it: every attempt fails at once.
  const probe = track(await startAds());
  const port = probe.port;
  probe.stop();
  const clock = new FakeClock();
  const c = track(startClient(`127.0.0.1:${port}`, { clock, random: () => 0.5, backoff: { initialMs: 100, maxMs: 800 } }));
  const delays: number[] = [];
  c.client.on('state', (e) => { if (e.retryInMs !== undefined) delays.push(e.retryInMs); });
  for (let i = 0; i < 6; i++) {
    await waitFor(`failure ${i + 1}`, () => delays.length > i);
    await clock.advance(delays[i]!);
  }
  // d = min(800, 100 * 2^(n-1)); waited d/2 + 0.5 * d/2.
  assert.deepEqual(delays.slice(0, 6), [75, 150, 300, 600, 600, 600]);

  // The server comes back: the stream delivers a response, so the next failure starts over.
  const back = track(await startAds({}, `127.0.0.1:${port}`));
  publish(back, world(1, 0, 0));
  await waitFor('an attempt', () => c.client.state === 'connected' || delays.length > 6);
  if (c.client.state !== 'connected') await clock.advance(delays.at(-1)!);
  await c.client.waitForSync();
  const seen = delays.length;
  back.stop();
  await waitFor('the next failure', () => delays.length > seen);
  assert.equal(delays.at(-1), 75);
});

test('ads push: one push reaches every subscribed type under its id, even a type that did not change; non-final chunks say so', async () => {
  const srv = track(await startAds({ maxResponseBytes: 2000 }));
  const w = world(3, 0, 2);
  srv.ads.publish('push:1', [
    { typeUrl: ADDR, resources: w.workloads.map((x) => addressResource({ workload: x })) },
    { typeUrl: AUTHZ, resources: w.policies.map(authorizationResource) },
  ]);
  const raw = track(new RawStream(srv.address));
  raw.send({ node: { id: 'raw' }, typeUrl: ADDR, resourceNamesSubscribe: ['*'] });
  raw.send({ node: { id: 'raw' }, typeUrl: AUTHZ, resourceNamesSubscribe: ['*'] });
  const first = await raw.next(2);
  assert.deepEqual([first.systemVersionInfo, raw.responses[1]!.systemVersionInfo], ['push:1', 'push:1']);
  for (const r of raw.responses) raw.send({ typeUrl: r.typeUrl, responseNonce: r.nonce });
  // Only the Address of one workload changes: the Authorization type still gets an (empty) response of push 2.
  w.workloads[0] = { ...w.workloads[0]!, status: 'UNHEALTHY' };
  srv.ads.publish('push:2', [
    { typeUrl: ADDR, resources: w.workloads.map((x) => addressResource({ workload: x })) },
    { typeUrl: AUTHZ, resources: w.policies.map(authorizationResource) },
  ]);
  await raw.next(4);
  const second = raw.responses.slice(2);
  assert.deepEqual(second.map((r) => [r.typeUrl, r.systemVersionInfo, r.resources.length]).sort(), [[ADDR, 'push:2', 1], [AUTHZ, 'push:2', 0]].sort());
  for (const r of second) raw.send({ typeUrl: r.typeUrl, responseNonce: r.nonce });
  // A push too big for one response: every response but the last of its type is marked partial.
  srv.ads.publish('push:3', [
    { typeUrl: ADDR, resources: Array.from({ length: 40 }, (_, i) => addressResource({ workload: workload(i) })) },
    { typeUrl: AUTHZ, resources: w.policies.map(authorizationResource) },
  ]);
  await waitFor('the last Address chunk of push 3', () => raw.responses.filter((r) => r.typeUrl === ADDR && r.systemVersionInfo === 'push:3').length === 1);
  const chunks = raw.responses.filter((r) => r.typeUrl === ADDR && r.systemVersionInfo.startsWith('push:3'));
  assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
  assert.ok(chunks.slice(0, -1).every((r) => r.systemVersionInfo === 'push:3#partial'));
});

test('ads push: an xDS source applies only whole pushes — never the Address of one push with the Authorization of another', async () => {
  const { XdsSource } = await import('../../src/dataplane/xds-source.js');
  const { memoryLogger } = await import('../../src/core/logger.js');
  const srv = track(await startAds());
  const states: { workloads: number; policies: string[] }[] = [];
  const src = new XdsSource({ address: srv.address, node: 'z', logger: memoryLogger({ level: 'error' }).logger, onState: (s) => states.push({ workloads: s.workloads.size, policies: [...s.authorizations.keys()].sort() }) });
  cleanup.push(() => src.close());
  src.start();
  // The Address type is set alone first (as a slow control plane could): nothing may apply yet.
  srv.ads.setResources(ADDR, [addressResource({ workload: workload(0) })]);
  srv.ads.publish('push:1', [{ typeUrl: ADDR, resources: [addressResource({ workload: workload(0) })] }]);
  await settle(300);
  assert.equal(states.length, 0, 'no state before the Authorization of the same push');
  srv.ads.publish('push:1', [
    { typeUrl: ADDR, resources: [addressResource({ workload: workload(0) })] },
    { typeUrl: AUTHZ, resources: [authorizationResource(authorization(0))] },
  ]);
  await waitFor('the first whole push', () => states.length === 1);
  assert.deepEqual(states[0], { workloads: 1, policies: ['ns0/policy-0'] });
  // Renaming a policy in a push that also adds a workload: one state, both changes, never neither.
  srv.ads.publish('push:2', [
    { typeUrl: ADDR, resources: [addressResource({ workload: workload(0) }), addressResource({ workload: workload(1) })] },
    { typeUrl: AUTHZ, resources: [authorizationResource({ ...authorization(0), name: 'policy-renamed' })] },
  ]);
  await waitFor('the second push', () => states.length >= 2 && states.at(-1)!.workloads === 2);
  for (const s of states) assert.equal(s.policies.length, 1, JSON.stringify(states));
  assert.deepEqual(states.at(-1), { workloads: 2, policies: ['ns0/policy-renamed'] });
  assert.ok(src.status().heldBackPartialPushes >= 1);
});

test('ads limits: a type the server does not serve is ignored and counted; a client that never ACKs has its stream ended', async () => {
  const srv = track(await startAds({ types: [ADDR], ackTimeoutMs: 1 }));
  srv.ads.publish('push:0', [{ typeUrl: ADDR, resources: [] }]);
  const raw = track(new RawStream(srv.address));
  for (let i = 0; i < 50; i++) raw.send({ node: { id: 'raw' }, typeUrl: `type.googleapis.com/made.up.Type${i}`, resourceNamesSubscribe: ['*'] });
  raw.send({ node: { id: 'raw' }, typeUrl: ADDR, resourceNamesSubscribe: ['*'] });
  await raw.next(1);
  assert.equal(srv.ads.counters().unknownTypes, 50);
  assert.equal(srv.ads.status().clients[0]!.types.length, 1, 'nothing is kept for unknown types');
  assert.ok(srv.logs.filter((l) => l.msg === 'ignoring a subscription to a type this control plane does not serve').length <= 16);
  for (let i = 1; i <= 80 && raw.status === undefined; i++) {
    srv.ads.publish(`push:${i}`, [{ typeUrl: ADDR, resources: [addressResource({ workload: workload(i) })] }]);
    await settle(5);
  }
  await waitFor('the stream ended', () => raw.status !== undefined);
  assert.equal(raw.status?.code, grpc.status.RESOURCE_EXHAUSTED);
});
