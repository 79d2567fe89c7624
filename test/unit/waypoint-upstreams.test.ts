// The waypoint's per-endpoint upstream clients are forgotten when their endpoint leaves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HbonePool } from '../../src/hbone/index.js';
import { Logger } from '../../src/core/logger.js';
import { systemClock } from '../../src/core/clock.js';
import { hboneDialer, Upstreams } from '../../src/waypoint/upstream.js';

test('prune() drops the clients of endpoints that left and keeps the others', () => {
  const logger = new Logger({ level: 'error', sink: () => {} });
  const pool = new HbonePool({ logger, clock: systemClock, createSocket: () => { throw new Error('no connections in this test'); } });
  const u = new Upstreams({ dial: hboneDialer({ pool, sourceIdentity: 'spiffe://cluster.local/ns/a/sa/w', certificate: () => { throw new Error('unused'); }, connectTimeoutMs: 1000 }), clock: systemClock });
  const target = (uid: string, ip: string) => ({ uid, ip, port: 8080, identity: 'spiffe://cluster.local/ns/a/sa/app' });
  const a = u.http1(target('Kubernetes//Pod/a/app-0', '10.0.0.1'));
  u.http1(target('Kubernetes//Pod/a/app-1', '10.0.0.2'));
  assert.equal(u.endpointCount, 2);
  u.prune((uid) => uid === 'Kubernetes//Pod/a/app-0');
  assert.equal(u.endpointCount, 1);
  assert.equal(u.http1(target('Kubernetes//Pod/a/app-0', '10.0.0.1')), a, 'the kept endpoint keeps its client');
  u.close();
});
