import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/core/clock.js';
import { AmbitError } from '../../src/core/errors.js';
import { memoryLogger } from '../../src/core/logger.js';
import { MeshCA } from '../../src/identity/ca.js';
import {
  CertificateManager, renewalTime, type CertificateManagerEvents, type FailedEvent, type RenewedEvent,
} from '../../src/identity/cert-manager.js';
import { mustParseSpiffe, type Identity } from '../../src/identity/spiffe.js';

const alice = mustParseSpiffe('spiffe://cluster.local/ns/shop/sa/alice');
const bob = mustParseSpiffe('spiffe://cluster.local/ns/shop/sa/bob');
const HOUR = 3600 * 1000;

interface Harness {
  clock: FakeClock;
  ca: MeshCA;
  mgr: CertificateManager;
  /** Requests that reached the CA, and the (fake) time of each. */
  calls: Identity[];
  callTimes: number[];
  /** When set, the CA fails with this message. */
  failWith: { message?: string };
  lines: Record<string, unknown>[];
}

async function harness(opts: { retryInitialMs?: number; retryMaxMs?: number; ttlSeconds?: number; sign?: Identity } = {}): Promise<Harness> {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const ca = await MeshCA.create({ clock });
  const calls: Identity[] = [];
  const callTimes: number[] = [];
  const failWith: { message?: string } = {};
  const { logger, lines } = memoryLogger({ level: 'debug' });
  const mgr = new CertificateManager({
    clock,
    logger,
    rootPem: ca.rootPem,
    retryInitialMs: opts.retryInitialMs ?? 1000,
    retryMaxMs: opts.retryMaxMs ?? 60_000,
    random: () => 0.5, // no jitter
    fetch: async (csrPem, identity) => {
      calls.push(identity);
      callTimes.push(clock.now());
      if (failWith.message) throw new Error(failWith.message);
      const r = await ca.sign({ csrPem, identity: opts.sign ?? identity, ttlSeconds: opts.ttlSeconds });
      if (!r.ok) throw r.error;
      return r.value.certChainPem;
    },
  });
  return { clock, ca, mgr, calls, callTimes, failWith, lines };
}

function next<K extends keyof CertificateManagerEvents>(mgr: CertificateManager, event: K): Promise<Parameters<CertificateManagerEvents[K]>[0]> {
  return new Promise((resolve) => {
    const off = mgr.on(event, ((e: Parameters<CertificateManagerEvents[K]>[0]) => { off(); resolve(e); }) as CertificateManagerEvents[K]);
  });
}

test('get() shares one request per identity and then serves from cache', async () => {
  const h = await harness();
  const [a1, a2, b1] = await Promise.all([h.mgr.get(alice), h.mgr.get(alice), h.mgr.get(bob)]);
  assert.equal(h.calls.length, 2, 'one request per identity');
  assert.equal(a1, a2);
  assert.deepEqual(a1.identity, alice);
  assert.deepEqual(b1.identity, bob);
  assert.equal(await h.mgr.get(alice), a1, 'cached');
  assert.equal(h.mgr.current(alice), a1);
  assert.equal(h.calls.length, 2);
  assert.deepEqual(h.mgr.list().map((s) => [s.spiffe, s.state]), [
    ['spiffe://cluster.local/ns/shop/sa/alice', 'valid'],
    ['spiffe://cluster.local/ns/shop/sa/bob', 'valid'],
  ]);
  h.mgr.close();
});

test('renews at half of the certificate life, not before, with a new key', async () => {
  const h = await harness();
  const first = await h.mgr.get(alice);
  const renewAt = renewalTime(first);
  assert.equal(renewAt, first.notBefore.getTime() + (first.notAfter.getTime() - first.notBefore.getTime()) / 2);
  assert.equal(h.mgr.list()[0]?.nextAttemptAt?.getTime(), renewAt);

  await h.clock.advance(renewAt - h.clock.now() - 1);
  assert.equal(h.calls.length, 1, 'no renewal before half life');
  assert.equal(h.mgr.list()[0]?.state, 'valid');

  const renewed = next(h.mgr, 'renewed');
  await h.clock.advance(1);
  const ev = (await renewed) as RenewedEvent;
  assert.equal(ev.initial, false);
  assert.equal(h.calls.length, 2);
  assert.equal(h.callTimes[1], renewAt, 'renewed exactly at half life');
  const second = await h.mgr.get(alice);
  assert.equal(second, ev.certificate);
  assert.notEqual(second.keyPem, first.keyPem, 'keys rotate');
  assert.ok(second.notAfter.getTime() > first.notAfter.getTime());
  assert.equal(h.mgr.list()[0]?.nextAttemptAt?.getTime(), renewalTime(second), 'the next renewal is scheduled from the new certificate');
  assert.equal(h.clock.pending(), 1, 'exactly one timer');
  h.mgr.close();
});

test('a failed renewal retries with exponential backoff and keeps serving the valid old certificate', async () => {
  const h = await harness({ retryInitialMs: 1000, retryMaxMs: 4000 });
  const first = await h.mgr.get(alice);
  h.failWith.message = 'CA unavailable';

  const delays: number[] = [];
  let failed = next(h.mgr, 'failed');
  await h.clock.advance(renewalTime(first) - h.clock.now());
  let ev = (await failed) as FailedEvent;
  assert.equal(ev.error.code, 'AMBIT_ERR_CERT');
  assert.match(ev.error.message, /CA unavailable/);
  assert.equal(ev.servingPrevious, true);
  delays.push(ev.retryInMs);
  assert.equal(await h.mgr.get(alice), first, 'the old certificate is still served');
  assert.equal(h.mgr.list()[0]?.state, 'retrying');
  assert.equal(h.mgr.list()[0]?.failures, 1);

  for (let i = 0; i < 3; i++) {
    const callsBefore = h.calls.length;
    await h.clock.advance(ev.retryInMs - 1);
    assert.equal(h.calls.length, callsBefore, `retry ${i + 1} not before its backoff`);
    failed = next(h.mgr, 'failed');
    await h.clock.advance(1);
    ev = (await failed) as FailedEvent;
    assert.equal(h.calls.length, callsBefore + 1);
    delays.push(ev.retryInMs);
    assert.equal(await h.mgr.get(alice), first);
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 4000], 'doubles up to retryMaxMs');
  assert.ok(h.lines.some((l) => l.msg === 'certificate request failed' && l.level === 'warn'));

  delete h.failWith.message;
  const renewed = next(h.mgr, 'renewed');
  await h.clock.advance(ev.retryInMs);
  const ok = (await renewed) as RenewedEvent;
  assert.notEqual(ok.certificate, first);
  assert.equal(await h.mgr.get(alice), ok.certificate);
  assert.equal(h.mgr.list()[0]?.state, 'valid');
  assert.equal(h.mgr.list()[0]?.failures, 0);
  h.mgr.close();
});

test('an expired certificate is never served; get() fails fast during backoff', async () => {
  // Backoff longer than the rest of the certificate's life: no retry happens before it expires.
  const h = await harness({ retryInitialMs: 24 * HOUR, retryMaxMs: 24 * HOUR });
  const first = await h.mgr.get(alice);
  h.failWith.message = 'CA down';
  const failed = next(h.mgr, 'failed');
  await h.clock.advance(renewalTime(first) - h.clock.now());
  assert.equal(((await failed) as FailedEvent).servingPrevious, true);
  await h.clock.advance(first.notAfter.getTime() - h.clock.now() - 1);
  assert.equal(await h.mgr.get(alice), first, 'valid until the last millisecond');
  await h.clock.advance(1);
  const calls = h.calls.length;
  await assert.rejects(h.mgr.get(alice), (e: unknown) => {
    assert.ok(e instanceof AmbitError);
    assert.equal(e.code, 'AMBIT_ERR_CERT');
    assert.match(e.message, /no valid certificate for spiffe:\/\/cluster\.local\/ns\/shop\/sa\/alice: .*CA down/);
    return true;
  });
  assert.equal(h.calls.length, calls, 'get() during backoff does not hit the CA');
  assert.equal(h.mgr.current(alice), undefined);
  assert.equal(h.mgr.list()[0]?.state, 'unavailable');
  h.mgr.close();
});

test('a first request that fails rejects get(), then the retry succeeds', async () => {
  const h = await harness({ retryInitialMs: 500 });
  h.failWith.message = 'connection refused';
  await assert.rejects(h.mgr.get(alice), /connection refused/);
  assert.equal(h.mgr.list()[0]?.state, 'unavailable');
  assert.equal(h.mgr.list()[0]?.nextAttemptAt?.getTime(), h.clock.now() + 500);
  delete h.failWith.message;
  const renewed = next(h.mgr, 'renewed');
  await h.clock.advance(500);
  assert.equal(((await renewed) as RenewedEvent).initial, true);
  assert.deepEqual((await h.mgr.get(alice)).identity, alice);
  assert.equal(h.calls.length, 2);
  h.mgr.close();
});

test('a chain for the wrong identity is a failure, not a certificate', async () => {
  const h = await harness({ sign: bob }); // a misbehaving CA that signs only bob
  const failed = next(h.mgr, 'failed');
  // The CA itself refuses (the CSR names alice): the manager reports the CA's error.
  await assert.rejects(h.mgr.get(alice), { code: 'AMBIT_ERR_CSR_IDENTITY' });
  assert.equal(((await failed) as FailedEvent).servingPrevious, false);
  h.mgr.close();

  const clock = new FakeClock();
  const ca = await MeshCA.create({ clock });
  const bobCert = await ca.issueWorkloadCertificate(bob);
  assert.ok(bobCert.ok);
  const mgr = new CertificateManager({
    clock, logger: memoryLogger().logger, rootPem: ca.rootPem,
    fetch: async () => bobCert.value.certChainPem, // returns someone else's chain
  });
  await assert.rejects(mgr.get(alice), /names spiffe:\/\/cluster\.local\/ns\/shop\/sa\/bob, not spiffe:\/\/cluster\.local\/ns\/shop\/sa\/alice/);
  const foreign = await MeshCA.create({ clock });
  const mgr2 = new CertificateManager({
    clock, logger: memoryLogger().logger, rootPem: foreign.rootPem,
    fetch: async (csrPem, identity) => { const r = await ca.sign({ csrPem, identity }); assert.ok(r.ok); return r.value.certChainPem; },
  });
  await assert.rejects(mgr2.get(alice), /does not lead to the mesh root/);
  mgr.close();
  mgr2.close();
});

test('forget() cancels renewal and drops the certificate; close() stops everything', async () => {
  const h = await harness();
  const first = await h.mgr.get(alice);
  await h.mgr.get(bob);
  assert.equal(h.clock.pending(), 2);
  assert.equal(h.mgr.forget(alice), true);
  assert.equal(h.mgr.forget(alice), false);
  assert.equal(h.clock.pending(), 1, "alice's renewal timer is cancelled");
  assert.deepEqual(h.mgr.list().map((s) => s.spiffe), ['spiffe://cluster.local/ns/shop/sa/bob']);
  assert.equal(h.mgr.current(alice), undefined);

  const renewed = next(h.mgr, 'renewed');
  await h.clock.advance(renewalTime(first) - h.clock.now());
  const ev = (await renewed) as RenewedEvent;
  assert.deepEqual(ev.identity, bob, 'only bob renews');
  assert.deepEqual(h.calls.map((i) => i.serviceAccount), ['alice', 'bob', 'bob']);

  // Forgotten while a request is in flight: its waiters get the result, but it is not cached.
  const inflight = h.mgr.get(alice);
  h.mgr.forget(alice);
  await inflight;
  assert.equal(h.mgr.current(alice), undefined);
  assert.equal(h.mgr.list().length, 1);

  h.mgr.close();
  assert.equal(h.clock.pending(), 0);
  assert.deepEqual(h.mgr.list(), []);
  await assert.rejects(h.mgr.get(bob), /closed/);
});
