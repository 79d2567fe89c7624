// What crosses from the client to the upstream at the waypoint, and W3C trace context.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyEdits, childTraceparent, upstreamHeaders } from '../../src/waypoint/http-headers.js';
import { RandomIds } from '../../src/core/random-ids.js';

const none = { set: [], add: [], remove: [] };

test('hop-by-hop and pseudo headers never cross; te: trailers does; ids and trace context are set', () => {
  const out = upstreamHeaders({
    ':authority': 'echo', connection: 'keep-alive', 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', upgrade: 'h2c',
    host: 'echo', te: 'trailers', accept: '*/*', 'x-b3': ['a', 'b'],
  }, none, 'TP', 'RID');
  assert.deepEqual(out, { te: 'trailers', accept: '*/*', 'x-b3': ['a', 'b'], traceparent: 'TP', 'x-request-id': 'RID', 'x-forwarded-proto': 'http' });
  assert.equal(upstreamHeaders({ te: 'gzip' }, none, 'TP', 'R').te, undefined);
  assert.equal(upstreamHeaders({ 'x-forwarded-proto': 'https' }, none, 'TP', 'R')['x-forwarded-proto'], 'https');
});

test('header edits apply in Envoy order (remove, set, add), case-insensitively', () => {
  const h: Record<string, string | string[]> = { 'x-a': '1', 'x-b': '2', 'x-c': '3' };
  applyEdits(h, { remove: ['X-A'], set: [['X-B', 'two'], ['x-a', 'again']], add: [['x-c', '4'], ['X-D', '5']] });
  assert.deepEqual(h, { 'x-a': 'again', 'x-b': 'two', 'x-c': ['3', '4'], 'x-d': '5' });
});

test('traceparent: the trace id and flags are kept with a new span; a malformed or all-zero one starts a new trace', () => {
  const ids = new RandomIds();
  const kept = childTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', ids);
  assert.match(kept, /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
  assert.notEqual(kept.split('-')[2], 'b7ad6b7169203331');
  for (const bad of [undefined, 'garbage', '00-00000000000000000000000000000000-b7ad6b7169203331-01', '01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331']) {
    const t = childTraceparent(bad, ids);
    assert.match(t, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.notEqual(t.split('-')[1], '00000000000000000000000000000000');
  }
  const many = new Set(Array.from({ length: 500 }, () => ids.hex(8)));
  assert.equal(many.size, 500, 'ids do not repeat across buffer refills');
});
