// The proxies' mesh view is updated in place by deltas. A state built from scratch from the
// same objects is the oracle: after any random sequence of deltas, every query answers the
// same (lookups by IP and VIP with their tie-breaks, endpoints in order, workloads per node,
// the policies applying to each workload).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MeshView, type WorkloadApiDelta, type WorkloadApiSnapshot } from '../../src/dataplane/mesh-view.js';
import { serviceResourceName, workloadResourceName, authorizationResourceName, type Authorization, type Service, type Workload } from '../../src/xds/workload-api.js';
import { authorization, service, workload } from '../helpers/xds-fixtures.js';

const N = 12;
// Small pools so that IPs, VIPs, nodes, services and policy names collide often.
const wl = (i: number, v: number): Workload => workload(i, {
  addresses: [`10.0.0.${(i + v) % 5}`], node: `node-${v % 3}`, namespace: `ns${i % 2}`, uid: `Kubernetes//Pod/ns${i % 2}/pod-${i}`,
  authorizationPolicies: v % 2 ? [`ns${i % 2}/policy-${v % 4}`] : [],
  services: { [`ns${v % 2}/svc-${v % 3}.ns${v % 2}.svc.cluster.local`]: { ports: [{ servicePort: 80, targetPort: 8000 + v }] } },
});
const svc = (i: number, v: number): Service => service(i % 3, { namespace: `ns${i % 2}`, hostname: `svc-${i % 3}.ns${i % 2}.svc.cluster.local`, addresses: [{ network: '', address: `10.96.0.${(i + v) % 4}` }] });
const authz = (i: number, v: number): Authorization => authorization(i % 4, {
  namespace: `ns${i % 2}`, name: `policy-${i % 4}`, scope: (['GLOBAL', 'NAMESPACE', 'WORKLOAD_SELECTOR'] as const)[v % 3], action: v % 2 ? 'DENY' : 'ALLOW',
});

type Op = { kind: 'w' | 's' | 'a'; i: number; v: number; remove: boolean };
const op = fc.record({ kind: fc.constantFrom<'w' | 's' | 'a'>('w', 's', 'a'), i: fc.integer({ min: 0, max: N - 1 }), v: fc.integer({ min: 0, max: 9 }), remove: fc.boolean() });

/** Applies a batch to the model (name -> object) and makes the delta. */
function batch(model: { w: Map<string, Workload>; s: Map<string, Service>; a: Map<string, Authorization> }, ops: Op[]): WorkloadApiDelta {
  const d = { workloads: { upsert: [] as Workload[], remove: [] as string[] }, services: { upsert: [] as Service[], remove: [] as string[] }, authorizations: { upsert: [] as Authorization[], remove: [] as string[] } };
  const last = new Map<string, Op>();
  for (const o of ops) last.set(`${o.kind}${o.kind === 'w' ? o.i : o.kind === 's' ? `${o.i % 2}/${o.i % 3}` : `${o.i % 2}/${o.i % 4}`}`, o);
  for (const o of last.values()) {
    if (o.kind === 'w') {
      const obj = wl(o.i, o.v);
      const name = workloadResourceName(obj);
      if (o.remove) { model.w.delete(name); d.workloads.remove.push(name); } else { model.w.set(name, obj); d.workloads.upsert.push(obj); }
    } else if (o.kind === 's') {
      const obj = svc(o.i, o.v);
      const name = serviceResourceName(obj);
      if (o.remove) { model.s.delete(name); d.services.remove.push(name); } else { model.s.set(name, obj); d.services.upsert.push(obj); }
    } else {
      const obj = authz(o.i, o.v);
      const name = authorizationResourceName(obj);
      if (o.remove) { model.a.delete(name); d.authorizations.remove.push(name); } else { model.a.set(name, obj); d.authorizations.upsert.push(obj); }
    }
  }
  return d;
}

function observe(s: MeshView, snap: WorkloadApiSnapshot): unknown {
  const ips = Array.from({ length: 5 }, (_, k) => s.workloadByIp(`10.0.0.${k}`)?.uid ?? null);
  const vips = Array.from({ length: 4 }, (_, k) => s.serviceByVip(`10.96.0.${k}`)?.hostname ?? null);
  const nodes = Array.from({ length: 3 }, (_, k) => s.workloadsOnNode(`node-${k}`).map((w) => w.uid).sort());
  const endpoints = snap.services.map((x) => [serviceResourceName(x), s.endpointsOf(x).map((w) => w.uid)]);
  const policies = snap.workloads.map((w) => [w.uid, s.policiesFor(w).map((p) => p.key)]);
  return { ips, vips, nodes, endpoints, policies, sizes: [s.workloads.size, s.services.size, s.authorizations.size] };
}

test('property: any sequence of deltas gives the state a rebuild from the same objects gives', () => {
  fc.assert(fc.property(fc.array(fc.array(op, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 25 }), (batches) => {
    const model = { w: new Map<string, Workload>(), s: new Map<string, Service>(), a: new Map<string, Authorization>() };
    const live = new MeshView();
    batches.forEach((ops, k) => {
      live.apply(batch(model, ops), `v${k}`);
      // Queries between updates fill the memos; later updates must invalidate them.
      const snap = { workloads: [...model.w.values()], services: [...model.s.values()], authorizations: [...model.a.values()] };
      assert.deepEqual(observe(live, snap), observe(MeshView.fromSnapshot(snap), snap));
    });
  }), { seed: 1502, numRuns: 300 });
});

test('an update replaces objects, never mutates them; the version follows', () => {
  const s = new MeshView({ workloads: [wl(1, 1)], services: [], authorizations: [] }, 'a');
  const before = s.workloads.get(workloadResourceName(wl(1, 1)))!;
  s.apply({ workloads: { upsert: [wl(1, 2)] } }, 'b');
  assert.equal(before.addresses[0], wl(1, 1).addresses[0]);
  assert.notEqual(s.workloads.get(workloadResourceName(wl(1, 2))), before);
  assert.equal(s.version, 'b');
});
