// Admission of inbound HBONE connections: per-source and total bounds before and after the
// handshake, every ticket released once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HboneAdmission, type AdmissionTicket } from '../../src/hbone/admission.js';

const limits = { maxPendingHandshakes: 5, maxPendingHandshakesPerSource: 2, maxSessions: 3, maxSessionsPerSource: 2 };

test('pending handshakes are bounded per source and in all; a released ticket frees its slot', () => {
  const a = new HboneAdmission(limits);
  const t1 = a.admit('10.0.0.1') as AdmissionTicket;
  a.admit('10.0.0.1');
  assert.equal(a.admit('10.0.0.1'), 'pending_handshakes_per_source');
  a.admit('10.0.0.2');
  a.admit('10.0.0.3');
  a.admit('10.0.0.4');
  assert.equal(a.admit('10.0.0.5'), 'pending_handshakes');
  t1.release();
  t1.release(); // twice is harmless
  assert.notEqual(typeof a.admit('10.0.0.5'), 'string');
  assert.deepEqual(a.stats().refused, { pending_handshakes_per_source: 1, pending_handshakes: 1 });
});

test('sessions are bounded per source and in all once established', () => {
  const a = new HboneAdmission(limits);
  const s = ['10.0.0.1', '10.0.0.1', '10.0.0.1'].map(() => {
    const t = a.admit('10.0.0.1') as AdmissionTicket | string;
    if (typeof t === 'string') return t;
    return t.established() ?? t;
  });
  // The third could not even start: two pending per source; establish frees the pending slot.
  assert.equal(s.filter((x) => typeof x !== 'string').length, 2);
  const third = a.admit('10.0.0.1') as AdmissionTicket;
  assert.equal(third.established(), 'sessions_per_source');
  const other = a.admit('10.0.0.2') as AdmissionTicket;
  assert.equal(other.established(), undefined);
  const fourth = a.admit('10.0.0.3') as AdmissionTicket;
  assert.equal(fourth.established(), 'sessions');
  assert.equal(a.stats().sessions, 3);
});

test('property: after any sequence of admits, establishes and releases, releasing everything leaves nothing held', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom('admit', 'establish', 'release'), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 20 })), { maxLength: 200 }), (ops) => {
    const a = new HboneAdmission(limits);
    const tickets: AdmissionTicket[] = [];
    for (const [op, src, i] of ops) {
      if (op === 'admit') {
        const t = a.admit(`10.0.0.${src}`);
        if (typeof t !== 'string') tickets.push(t);
      } else if (tickets.length) {
        const t = tickets[i % tickets.length]!;
        if (op === 'establish') t.established();
        else t.release();
      }
      const st = a.stats();
      assert.ok(st.pendingHandshakes <= limits.maxPendingHandshakes && st.sessions <= limits.maxSessions && st.pendingHandshakes >= 0 && st.sessions >= 0);
    }
    for (const t of tickets) t.release();
    assert.deepEqual([a.stats().pendingHandshakes, a.stats().sessions, a.stats().sources], [0, 0, 0]);
  }), { seed: 1501, numRuns: 500 });
});
