// decideLease: client-go's rules, as a table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideLease } from '../../src/kubernetes/leader-election.js';

const D = 15_000;
const cases: [string, Parameters<typeof decideLease>[0], number, number, string][] = [
  ['no Lease: create it', undefined, 1000, 1000, 'create'],
  ['ours: renew', { holderIdentity: 'a' }, 1000, 0, 'renew'],
  ['another holder seen just now: follow', { holderIdentity: 'b', renewTime: 'x' }, 1000, 1000, 'follow'],
  ['another holder unchanged for less than a lease: follow', { holderIdentity: 'b' }, 1000 + D - 1, 1000, 'follow'],
  ['another holder unchanged for a whole lease (our clock): take over', { holderIdentity: 'b', leaseTransitions: 3 }, 1000 + D, 1000, 'takeover'],
  ['given up (empty holder): take over at once', { holderIdentity: '' }, 1000, 1000, 'takeover'],
  ['no holder field: take over at once', {}, 1000, 1000, 'takeover'],
];

for (const [name, lease, now, seen, want] of cases) {
  test(`decideLease: ${name}`, () => {
    assert.equal(decideLease(lease, 'a', now, seen, D).kind, want);
  });
}

test('decideLease: a takeover counts a transition; following says who holds it and for how long', () => {
  assert.deepEqual(decideLease({ holderIdentity: 'b', leaseTransitions: 3 }, 'a', 20_000, 0, D), { kind: 'takeover', transitions: 4 });
  assert.deepEqual(decideLease({ holderIdentity: 'b' }, 'a', 5_000, 0, D), { kind: 'follow', holder: 'b', expiresInMs: 10_000 });
});
