// What the informers keep of each Kubernetes object: the fields Ambit reads, as plain JSON.
//
// Invariants:
// - The client library hands a list's items as its typed models (timestamps as Date) and a
//   watch event's object as parsed JSON (timestamps as strings); both go through project()
//   before they reach the cache, so a relisted object equals its watched self.
// - Built-in kinds keep only what the model reads (the API server has validated the rest, and
//   Ambit's strict schema would refuse fields it does not know). Istio and Gateway API objects
//   keep their whole spec: that is what the user wrote, and it is validated as files are.
// - A ConfigMap keeps its data (only Istio's mesh config ConfigMap is watched); a Secret its type
//   and data (TLS material for gateways and egress; never logged, redacted in every view).
// - managedFields and the last-applied annotation are dropped (memory: a pod's managedFields
//   are often larger than the rest of it).
import type { WatchedKind } from './watched-kinds.js';

export interface KubeMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: KubeMeta;
  spec?: unknown;
  status?: unknown;
  [field: string]: unknown;
}

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

type Loose = Record<string, unknown>;

function isObj(v: unknown): v is Loose {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** RFC 3339 in the API server's form (seconds, `Z`), from a Date or a string. */
export function timestamp(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  const d = v instanceof Date ? v : new Date(String(v));
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function stringMap(v: unknown): Record<string, string> | undefined {
  if (!isObj(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) if (k !== LAST_APPLIED) out[k] = String(x);
  return out;
}

function clean<T extends Loose>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

export function projectMeta(m: unknown): KubeMeta {
  const meta = isObj(m) ? m : {};
  return clean({
    name: String(meta.name ?? ''),
    namespace: typeof meta.namespace === 'string' ? meta.namespace : undefined,
    uid: typeof meta.uid === 'string' ? meta.uid : undefined,
    resourceVersion: typeof meta.resourceVersion === 'string' ? meta.resourceVersion : undefined,
    generation: typeof meta.generation === 'number' ? meta.generation : undefined,
    creationTimestamp: timestamp(meta.creationTimestamp),
    deletionTimestamp: timestamp(meta.deletionTimestamp),
    labels: stringMap(meta.labels),
    annotations: stringMap(meta.annotations),
    ownerReferences: Array.isArray(meta.ownerReferences) ? list(meta.ownerReferences).map((r) => clean({
      apiVersion: String(r.apiVersion), kind: String(r.kind), name: String(r.name), uid: String(r.uid),
      controller: typeof r.controller === 'boolean' ? r.controller : undefined,
      blockOwnerDeletion: typeof r.blockOwnerDeletion === 'boolean' ? r.blockOwnerDeletion : undefined,
    })) : undefined,
  });
}

/** A deep copy as JSON (Dates become the API server's timestamps). */
function json(v: unknown): unknown {
  if (v instanceof Date) return timestamp(v);
  if (Array.isArray(v)) return v.map(json);
  if (isObj(v)) {
    const out: Loose = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = json(x);
    return out;
  }
  return v;
}

function list(v: unknown): Loose[] {
  return Array.isArray(v) ? v.filter(isObj) : [];
}

function projectPod(o: Loose): Pick<KubeObject, 'spec' | 'status'> {
  const spec = isObj(o.spec) ? o.spec : {};
  const status = isObj(o.status) ? o.status : {};
  return {
    spec: clean({
      nodeName: spec.nodeName as string | undefined,
      serviceAccountName: (spec.serviceAccountName ?? spec.serviceAccount) as string | undefined,
      hostNetwork: spec.hostNetwork === true ? true : undefined,
      containers: list(spec.containers).map((c) => clean({
        name: String(c.name),
        image: c.image as string | undefined,
        ports: Array.isArray(c.ports) ? list(c.ports).map((p) => clean({ name: p.name as string | undefined, containerPort: p.containerPort as number, protocol: p.protocol as string | undefined })) : undefined,
      })),
    }),
    status: clean({
      podIP: status.podIP as string | undefined,
      podIPs: Array.isArray(status.podIPs) ? list(status.podIPs).map((p) => ({ ip: String(p.ip) })) : undefined,
      hostIP: status.hostIP as string | undefined,
      phase: status.phase as string | undefined,
      conditions: Array.isArray(status.conditions) ? list(status.conditions).filter((c) => c.type === 'Ready').map((c) => ({ type: 'Ready', status: String(c.status) })) : undefined,
    }),
  };
}

function projectService(o: Loose): Pick<KubeObject, 'spec' | 'status'> {
  const spec = isObj(o.spec) ? o.spec : {};
  // A LoadBalancer's addresses: an ingress Gateway's status.addresses come from them.
  const lb = isObj(o.status) && isObj(o.status.loadBalancer) ? list(o.status.loadBalancer.ingress) : [];
  return {
    ...(lb.length ? { status: { loadBalancer: { ingress: lb.map((i) => clean({ ip: i.ip as string | undefined, hostname: i.hostname as string | undefined })) } } } : {}),
    spec: clean({
      type: spec.type as string | undefined,
      selector: stringMap(spec.selector),
      clusterIP: spec.clusterIP as string | undefined,
      clusterIPs: Array.isArray(spec.clusterIPs) ? spec.clusterIPs.map(String) : undefined,
      ports: list(spec.ports).map((p) => clean({
        name: p.name as string | undefined,
        port: p.port as number,
        targetPort: p.targetPort as number | string | undefined,
        protocol: p.protocol as string | undefined,
        appProtocol: p.appProtocol as string | undefined,
      })),
    }),
  };
}

function projectEndpointSlice(o: Loose): Loose {
  return {
    addressType: o.addressType,
    endpoints: list(o.endpoints).map((e) => clean({
      addresses: Array.isArray(e.addresses) ? e.addresses.map(String) : [],
      conditions: isObj(e.conditions) ? clean({ ready: e.conditions.ready as boolean | undefined }) : undefined,
      nodeName: e.nodeName as string | undefined,
      targetRef: isObj(e.targetRef) ? clean({ kind: e.targetRef.kind as string | undefined, name: e.targetRef.name as string | undefined, namespace: e.targetRef.namespace as string | undefined }) : undefined,
    })),
  };
}

/** The cached form of an object of a watched kind, served under `apiVersion`. */
export function project(k: WatchedKind, apiVersion: string, raw: unknown): KubeObject {
  const o = isObj(raw) ? raw : {};
  const base: KubeObject = { apiVersion, kind: k.kind, metadata: projectMeta(o.metadata) };
  switch (k.kind) {
    case 'Namespace': return base;
    case 'Pod': return { ...base, ...projectPod(o) };
    case 'Service': return { ...base, ...projectService(o) };
    case 'EndpointSlice': return { ...base, ...projectEndpointSlice(o) };
    case 'ConfigMap': return { ...base, data: stringMap(o.data) ?? {} };
    case 'Secret': return { ...base, ...(typeof o.type === 'string' ? { type: o.type } : {}), data: stringMap(o.data) ?? {} };
    default: {
      const out: KubeObject = { ...base, spec: json(o.spec ?? {}) };
      if (o.status !== undefined) out.status = json(o.status);
      return out;
    }
  }
}

export type PodVerdict = { counts: true } | { counts: false; reason: string };

/**
 * Whether a Pod is a workload of the mesh: scheduled (spec.nodeName), with an address
 * (status.podIP), not finished (phase Succeeded/Failed) and not on the host's network (its
 * address is the node's, shared by every such pod, and nothing can be captured for it).
 */
export function podCounts(pod: KubeObject): PodVerdict {
  const spec = (pod.spec ?? {}) as { nodeName?: string; hostNetwork?: boolean };
  const status = (pod.status ?? {}) as { podIP?: string; phase?: string };
  if (!spec.nodeName) return { counts: false, reason: 'not scheduled' };
  if (!status.podIP) return { counts: false, reason: 'no IP yet' };
  if (status.phase === 'Succeeded' || status.phase === 'Failed') return { counts: false, reason: `terminal (${status.phase})` };
  if (spec.hostNetwork) return { counts: false, reason: 'host network' };
  return { counts: true };
}

/** The object as Ambit's validator reads it: no status (but a Pod's), no resourceVersion. */
export function configDocument(o: KubeObject): Loose {
  const { resourceVersion: _rv, ...metadata } = o.metadata;
  void _rv;
  const doc: Loose = { apiVersion: o.apiVersion, kind: o.kind, metadata };
  if (o.kind === 'Pod') {
    const { hostNetwork: _h, ...spec } = o.spec as Loose;
    void _h;
    // Only Ready of the conditions: a pod not ready is pushed UNHEALTHY.
    const { conditions, ...status } = o.status as Loose;
    const ready = Array.isArray(conditions) ? (conditions as Loose[]).find((c) => c.type === 'Ready') : undefined;
    doc.spec = spec;
    doc.status = ready ? { ...status, conditions: [{ type: 'Ready', status: String(ready.status) }] } : status;
  } else if (o.kind === 'ConfigMap') {
    doc.data = o.data;
  } else if (o.kind === 'Secret') {
    if (o.type !== undefined) doc.type = o.type;
    doc.data = o.data;
  } else if (o.spec !== undefined && o.kind !== 'Namespace') {
    doc.spec = o.spec;
  }
  return doc;
}
