// How a workload appears in telemetry labels and in HBONE request headers.
import type { RandomIds } from '../core/random-ids.js';
import type { PeerInfo, ServiceInfo } from '../telemetry/istio-labels.js';
import type { Service, Workload } from '../xds/workload-api.js';
import { identityOf } from './mesh-view.js';

/** One PeerInfo per workload object (workloads are immutable; a new config brings new objects). */
const peers = new WeakMap<Workload, PeerInfo>();

/** How a workload appears in telemetry; the same (frozen) object for the same workload. */
export function peerInfo(w: Workload | undefined): PeerInfo | undefined {
  if (!w) return undefined;
  let p = peers.get(w);
  if (!p) {
    p = Object.freeze(describePeer(w));
    peers.set(w, p);
  }
  return p;
}

function describePeer(w: Workload): PeerInfo {
  return {
    workload: w.workloadName || w.name,
    name: w.name,
    namespace: w.namespace,
    canonicalService: w.canonicalName,
    canonicalRevision: w.canonicalRevision,
    principal: identityOf(w),
    app: w.canonicalName,
    version: w.canonicalRevision,
    cluster: w.clusterId,
  };
}

export function serviceInfo(s: Service | undefined): ServiceInfo | undefined {
  return s ? { hostname: s.hostname, namespace: s.namespace, name: s.name } : undefined;
}

const TYPE_KEY: Record<string, string> = { DEPLOYMENT: 'deployment', CRONJOB: 'cronjob', POD: 'pod', JOB: 'job' };

/** W3C baggage describing a workload, as ztunnel sends it on CONNECT and in the 200. */
export function baggageOf(w: Workload): string {
  const parts = [
    `k8s.cluster.name=${w.clusterId}`,
    `k8s.namespace.name=${w.namespace}`,
    `k8s.${TYPE_KEY[w.workloadType] ?? 'pod'}.name=${w.workloadName || w.name}`,
    `service.name=${w.canonicalName}`,
    `service.version=${w.canonicalRevision}`,
  ];
  return parts.join(',');
}

/** A new W3C traceparent: version 00, random trace and span ids, not sampled. */
export function newTraceparent(ids: RandomIds): string {
  return `00-${ids.hex(16)}-${ids.hex(8)}-00`;
}
