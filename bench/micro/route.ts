// Micro-benchmark of the outbound route decision (src/ztunnel/route.ts decideOutbound) over a
// MeshView of 10,000 workloads and 1,000 services, beside a simpler alternative in the
// same run: the same decision with linear scans of the workload and service lists instead of
// MeshView's address indexes (what a first version without indexes would do).
//
//   node dist/bench/micro/route.js [--workloads 10000] [--ms 1000]
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import type { Service, Workload } from '../../src/xds/workload-api.js';
import { MeshView, identityOf } from '../../src/dataplane/mesh-view.js';
import { decideOutbound, roundRobin, HBONE_PORT, type Destination } from '../../src/dataplane/route.js';
import { fmtOps, opsPerSecond } from './bench-loop.js';

function makeState(nWorkloads: number, nServices: number): { workloads: Workload[]; services: Service[] } {
  const services: Service[] = [];
  for (let s = 0; s < nServices; s++) {
    const ns = `ns-${s % 100}`;
    services.push({
      name: `svc-${s}`, namespace: ns, hostname: `svc-${s}.${ns}.svc.cluster.local`,
      addresses: [{ network: '', address: `10.96.${s >> 8}.${s & 255}` }], ports: [{ servicePort: 80, targetPort: 8080 }], subjectAltNames: [],
    });
  }
  const workloads: Workload[] = [];
  for (let i = 0; i < nWorkloads; i++) {
    const svc = services[i % nServices]!;
    workloads.push({
      uid: `Kubernetes//Pod/${svc.namespace}/pod-${i}`, name: `pod-${i}`, namespace: svc.namespace,
      addresses: [`10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`], network: '', tunnelProtocol: 'HBONE', trustDomain: 'cluster.local',
      serviceAccount: `sa-${i % 50}`, node: `node-${i % 20}`, canonicalName: svc.name, canonicalRevision: 'v1', workloadType: 'POD',
      workloadName: `pod-${i}`, authorizationPolicies: [], status: 'HEALTHY', clusterId: 'Kubernetes',
      services: { [`${svc.namespace}/${svc.hostname}`]: { ports: [{ servicePort: 80, targetPort: 8080 }] } },
    });
  }
  return { workloads, services };
}

/** The simple alternative: same decision for the common cases (service VIP or pod IP), by linear scans. */
function naiveDecide(workloads: Workload[], services: Service[], dst: Destination, rr: Map<string, number>): { ip: string; port: number; identity?: string } {
  const svc = services.find((s) => s.addresses.some((a) => a.address === dst.ip));
  if (svc) {
    const key = `${svc.namespace}/${svc.hostname}`;
    const eps = workloads.filter((w) => w.status === 'HEALTHY' && w.services[key] !== undefined);
    if (eps.length === 0) return { ip: dst.ip, port: dst.port };
    const n = rr.get(key) ?? 0;
    rr.set(key, n + 1);
    const ep = eps[n % eps.length]!;
    return { ip: ep.addresses[0]!, port: HBONE_PORT, identity: identityOf(ep) };
  }
  const w = workloads.find((x) => x.addresses.includes(dst.ip));
  return w ? { ip: w.addresses[0]!, port: HBONE_PORT, identity: identityOf(w) } : { ip: dst.ip, port: dst.port };
}

function main(): void {
  const { values } = parseArgs({ options: { workloads: { type: 'string', default: '10000' }, ms: { type: 'string', default: '1000' } } });
  const nW = Number(values.workloads);
  const ms = Number(values.ms);
  const nS = Math.max(1, Math.round(nW / 10));
  const snap = makeState(nW, nS);
  const t0 = performance.now();
  const state = new MeshView({ ...snap, authorizations: [] });
  const buildMs = performance.now() - t0;
  const source = snap.workloads[0]!;
  // Half to service VIPs, half to pod IPs.
  const dsts: Destination[] = Array.from({ length: 4096 }, (_, i) => (i % 2 === 0
    ? { ip: snap.services[(i * 31) % nS]!.addresses[0]!.address, port: 80 }
    : { ip: snap.workloads[(i * 7919) % nW]!.addresses[0]!, port: 8080 }));
  const pick = roundRobin();
  // Sanity: pod-IP destinations route to the same place both ways.
  const rr = new Map<string, number>();
  for (const d of dsts.filter((_, i) => i % 2 === 1).slice(0, 100)) {
    const a = decideOutbound(state, source, d, pick);
    const b = naiveDecide(snap.workloads, snap.services, d, rr);
    if (a.kind !== 'hbone' || a.connectTo.ip !== b.ip) throw new Error(`decisions differ for ${d.ip}`);
  }
  const indexed = opsPerSecond(dsts, (d) => decideOutbound(state, source, d, pick).kind === 'hbone', ms);
  const linear = opsPerSecond(dsts, (d) => naiveDecide(snap.workloads, snap.services, d, rr).port === HBONE_PORT, Math.min(ms, 500));
  process.stdout.write(`route decision, ${nW} workloads, ${nS} services (node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}, ${new Date().toISOString()})\n`);
  process.stdout.write(`  building MeshView (indexes): ${buildMs.toFixed(1)} ms\n`);
  process.stdout.write(`  ${'decideOutbound over MeshView (address indexes)'.padEnd(54)} ${fmtOps(indexed.opsPerSec).padStart(10)}   x1.00\n`);
  process.stdout.write(`  ${'simple alternative: linear scans, no indexes'.padEnd(54)} ${fmtOps(linear.opsPerSec).padStart(10)}   x${(linear.opsPerSec / indexed.opsPerSec).toFixed(4)}\n`);
}

main();
