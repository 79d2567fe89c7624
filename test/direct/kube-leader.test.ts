// Leader election against the API server stand-in: two replicas, one leads; a leader that
// stops gracefully hands over at once, one that crashes (its lease left behind) after a lease
// duration; the Lease is written as coordination.k8s.io/v1 says.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/core/clock.js';
import { Logger } from '../../src/core/logger.js';
import { loadKubeConfig } from '../../src/kubernetes/kube-client.js';
import { LeaderElector } from '../../src/kubernetes/leader-election.js';
import { KubeApiServer } from '../helpers/kube/apiserver.js';
import { namespace } from '../helpers/kube/objects.js';
import { waitFor } from '../helpers/wait.js';

let api: KubeApiServer;
const electors: LeaderElector[] = [];
const logger = new Logger({ level: 'error', sink: () => {} });

before(async () => {
  api = new KubeApiServer();
  await api.start();
  api.put(namespace('istio-system'));
});

after(async () => {
  for (const e of electors) await e.close(false);
  await api.stop();
});

function elector(identity: string, name: string, log: string[], leaseDurationMs = 600): LeaderElector {
  const e = new LeaderElector({
    kubeConfig: loadKubeConfig({ kubeconfigText: api.kubeconfig() }), namespace: 'istio-system', name, identity,
    clock: systemClock, logger, leaseDurationMs, renewDeadlineMs: leaseDurationMs * 2 / 3, retryPeriodMs: 50,
    onStartedLeading: () => log.push(`${identity} leads`), onStoppedLeading: () => log.push(`${identity} stops`),
  });
  electors.push(e);
  e.start();
  return e;
}

test('one of two replicas leads; a graceful stop hands over at once', async () => {
  const log: string[] = [];
  const a = elector('cp-a', 'graceful', log, 5_000);
  await waitFor('a leads', () => a.isLeader(), 5_000);
  const b = elector('cp-b', 'graceful', log, 5_000);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(b.isLeader(), false, 'b follows while a renews');
  const lease = api.get('Lease', 'istio-system', 'graceful')!;
  assert.equal(lease.spec.holderIdentity, 'cp-a');
  assert.match(String(lease.spec.renewTime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'renewTime is a MicroTime');
  const started = Date.now();
  await a.close();
  await waitFor('b leads', () => b.isLeader(), 5_000);
  assert.ok(Date.now() - started < 2_500, `handed over in ${Date.now() - started} ms, without waiting for the 5 s lease to run out`);
  assert.deepEqual(log, ['cp-a leads', 'cp-a stops', 'cp-b leads']);
  assert.equal(api.get('Lease', 'istio-system', 'graceful')!.spec.leaseTransitions, 1);
});

test('a leader that crashes (lease left behind) is replaced once its lease runs out, not before', async () => {
  const log: string[] = [];
  const a = elector('cp-a', 'crash', log);
  await waitFor('a leads', () => a.isLeader(), 5_000);
  const b = elector('cp-b', 'crash', log);
  await a.close(false);
  const crashed = Date.now();
  await waitFor('b leads', () => b.isLeader(), 5_000);
  const waited = Date.now() - crashed;
  assert.ok(waited >= 500, `b took over after ${waited} ms: not before the 600 ms lease (as b's clock saw it) ran out`);
  assert.equal(api.get('Lease', 'istio-system', 'crash')!.spec.holderIdentity, 'cp-b');
});
