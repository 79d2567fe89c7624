// The ADS server's pure decision of what to send a client next (ads-delta.ts), and the
// hand-written response encoding checked against proto-loader's decoding of the .proto.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { chunkBySize, commitDelta, computeDelta, Subscription } from '../../src/xds/ads-delta.js';
import type { DeltaResponse, ServerResource } from '../../src/xds/ads-types.js';
import { ADS_SERVICE, grpcDefinitions } from '../../src/xds/protos.js';
import { encodeDeltaResponse, encodeResource } from '../../src/xds/wire.js';

const T = 'type.googleapis.com/test.Thing';

function table(entries: [string, string][]): Map<string, ServerResource> {
  return new Map(entries.map(([name, version]) => [name, { name, version, wire: encodeResource(name, version, T, Buffer.from(name)) }]));
}

function names(d: { upserts: ServerResource[]; removals: string[] }): { up: string[]; rm: string[] } {
  return { up: d.upserts.map((r) => r.name).sort(), rm: [...d.removals].sort() };
}

test('delta: a new wildcard subscription gets everything; then only dirty names are examined', () => {
  const sub = new Subscription(T);
  sub.wildcard = true;
  const t = table([['a', '1'], ['b', '1'], ['c', '1']]);
  const all = computeDelta(t, sub, () => true);
  assert.deepEqual(names(all), { up: ['a', 'b', 'c'], rm: [] });
  commitDelta(sub, all);
  assert.deepEqual(names(computeDelta(t, sub, () => true)), { up: [], rm: [] });

  const t2 = table([['a', '2'], ['b', '1'], ['d', '1']]);
  sub.markDirty(['a'], 0);
  // Only 'a' is dirty: b/c/d are not examined even though c is gone and d is new.
  assert.deepEqual(names(computeDelta(t2, sub, () => true)), { up: ['a'], rm: [] });
  sub.markDirty(['c', 'd'], 0);
  const d = computeDelta(t2, sub, () => true);
  assert.deepEqual(names(d), { up: ['a', 'd'], rm: ['c'] });
  commitDelta(sub, d);
  assert.deepEqual([...sub.sent.entries()].sort(), [['a', '2'], ['b', '1'], ['d', '1']]);
  assert.equal(sub.hasWork(), true, 'the first response is still owed');
});

test('delta: resume from initial versions sends what differs and removes what is gone or filtered out', () => {
  const sub = new Subscription(T);
  sub.wildcard = true;
  for (const [n, v] of [['a', '1'], ['b', 'old'], ['gone', '1'], ['hidden', '1']] as const) sub.sent.set(n, v);
  const t = table([['a', '1'], ['b', '2'], ['c', '1'], ['hidden', '1']]);
  const d = computeDelta(t, sub, (name) => name !== 'hidden');
  assert.deepEqual(names(d), { up: ['b', 'c'], rm: ['gone', 'hidden'] });
});

test('delta: named subscriptions; a re-subscribed name is sent even at the same version', () => {
  const sub = new Subscription(T);
  sub.names.add('a');
  const t = table([['a', '1'], ['b', '1']]);
  const d = computeDelta(t, sub, () => true);
  assert.deepEqual(names(d), { up: ['a'], rm: [] });
  commitDelta(sub, d);
  sub.forced.add('a');
  assert.deepEqual(names(computeDelta(t, sub, () => true)), { up: ['a'], rm: [] });
});

test('delta: a large change switches to a full resync instead of tracking every name', () => {
  const sub = new Subscription(T);
  sub.wildcard = true;
  commitDelta(sub, { upserts: [], removals: [] });
  sub.markDirty(['a', 'b'], 5, 3);
  assert.equal(sub.fullResync, false);
  assert.equal(sub.dirty.size, 2);
  sub.markDirty(['c', 'd', 'e', 'f'], 9, 3);
  assert.equal(sub.fullResync, true);
  assert.equal(sub.dirty.size, 0);
  assert.equal(sub.dirtySince, 5, 'the oldest change is kept for the push latency');
});

test('delta: chunks respect the byte budget and keep at least one resource each', () => {
  const t = [...table([['a', '1'], ['b', '1'], ['c', '1'], ['d', '1']]).values()];
  const one = t[0]!.wire.length;
  assert.deepEqual(chunkBySize(t, 1).map((c) => c.length), [1, 1, 1, 1]);
  assert.deepEqual(chunkBySize(t, 2 * one + 20).map((c) => c.length), [2, 2]);
  assert.deepEqual(chunkBySize(t, 1e6).map((c) => c.length), [4]);
  assert.deepEqual(chunkBySize([], 10), [[]]);
});

test('wire: hand-encoded responses decode with proto-loader from the .proto files', () => {
  const method = (grpcDefinitions()[ADS_SERVICE] as unknown as grpc.ServiceDefinition)
    .DeltaAggregatedResources as grpc.MethodDefinition<unknown, DeltaResponse>;
  const body = Buffer.from([1, 2, 3, 250]);
  const bytes = encodeDeltaResponse({
    systemVersionInfo: '42', typeUrl: T, nonce: 'n-1',
    resources: [encodeResource('ns/é', 'v1', T, body), encodeResource('x', '', T, Buffer.alloc(0))],
    removedResources: ['gone', 'also-gone'],
  });
  const r = method.responseDeserialize(bytes);
  assert.equal(r.systemVersionInfo, '42');
  assert.equal(r.typeUrl, T);
  assert.equal(r.nonce, 'n-1');
  assert.deepEqual(r.removedResources, ['gone', 'also-gone']);
  assert.equal(r.resources.length, 2);
  assert.equal(r.resources[0]!.name, 'ns/é');
  assert.equal(r.resources[0]!.version, 'v1');
  assert.equal(r.resources[0]!.resource?.type_url, T);
  assert.deepEqual([...(r.resources[0]!.resource?.value ?? [])], [1, 2, 3, 250]);
  assert.equal(r.resources[1]!.resource?.value.length, 0);
  // A 300-byte name needs a two-byte length varint.
  const long = 'n'.repeat(300);
  assert.equal(method.responseDeserialize(encodeDeltaResponse({
    systemVersionInfo: '', typeUrl: T, nonce: 'n', resources: [encodeResource(long, 'v', T, Buffer.alloc(200_000, 7))], removedResources: [],
  })).resources[0]!.name, long);
});
