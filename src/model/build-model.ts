// Turns a validated ConfigSet into the MeshModel: pods from Pods, Deployments and waypoint
// Gateways; node placement; IP addresses; service endpoints; waypoint bindings.
//
// Invariants:
// - Deterministic: the same config and options give the same model.
// - Sticky: with `previous`, a pod keeps its node and IP and a service its VIP for as long
//   as it exists, so that a change elsewhere never renumbers the running cluster.
// - A pod's IP comes from status.podIP when given, else from its node's pod CIDR
//   (10.244.<node index>.0/24 by default; .1 is the node's own side of the pod links).
import { MESH_CONFIGMAP_KEY, MESH_CONFIGMAP_NAME, meshConfigOf } from '../config/mesh-config.js';
import { createHash } from 'node:crypto';
import type { ConfigSet } from '../config/config-set.js';
import type { Diagnostic } from '../config/diagnostics.js';
import {
  ANNOTATION_WAYPOINT_REPLICAS, LABEL_CANONICAL_NAME, LABEL_CANONICAL_REVISION, LABEL_DATAPLANE_MODE,
  LABEL_GATEWAY_NAME, LABEL_USE_WAYPOINT, LABEL_USE_WAYPOINT_NAMESPACE, LABEL_WAYPOINT_FOR, WAYPOINT_CLASS, type WaypointFor,
} from '../config/labels.js';
import type { Container, PodSpec, SourceLocation } from '../config/resources.js';
import { cidrSize, nthAddress, parseCidr } from '../core/ip.js';
import { LabelIndex } from './label-index.js';
import { buildServiceEntries } from './service-entries.js';
import { ingressGateways, ingressReplicaDrafts, ingressService } from './ingress-gateways.js';
import { MeshModel } from './mesh-model.js';
import { dataplaneMode } from './enrolment.js';
import {
  DEFAULT_SETTINGS, type MeshPolicies, type ModelSettings, type NamespaceInfo, type NodeInfo, type ServiceInfo,
  type WaypointInfo, type WaypointRef, type WorkloadInfo,
} from './types.js';
import { byCodeUnits } from '../core/compare.js';
import { HBONE_PORT } from '../core/mesh-constants.js';

export interface BuildOptions {
  /** Node names of the cluster; pods pinned to other nodes add them. Default: node-1, node-2. */
  nodes?: string[];
  settings?: Partial<ModelSettings>;
  previous?: MeshModel;
  /**
   * Pods are observed, not made (a Kubernetes API server is the source): no replicas are made
   * from Deployments or waypoint Gateways; a Pod labelled gateway-name=<gateway> is a replica
   * of that waypoint; a waypoint's Service is the Service named after its Gateway (none yet:
   * no address yet); the nodes are the ones the pods run on.
   */
  observedPods?: boolean;
  /** Endpoints of Services without a selector (from EndpointSlices): "ns/name" -> pod IPs. */
  serviceEndpointIps?: ReadonlyMap<string, readonly string[]>;
}

export const WAYPOINT_PORT = HBONE_PORT;
export { SIDECAR_INJECT_LABEL, NAMESPACE_INJECTION_LABEL } from './enrolment.js';

interface PodDraft {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: PodSpec;
  podIP?: string;
  notReady?: boolean;
  workloadName: string;
  workloadType: 'POD' | 'DEPLOYMENT';
  /** Spread offset: replicas of one Deployment go round-robin from here. */
  spreadKey: string;
  spreadIndex: number;
  waypointOf?: WaypointRef;
  /** A replica of an ingress gateway (class istio). */
  gatewayOf?: WaypointRef;
  source?: SourceLocation;
}

export function buildModel(set: ConfigSet, options: BuildOptions = {}): { model: MeshModel; diagnostics: Diagnostic[] } {
  const settings: ModelSettings = { ...DEFAULT_SETTINGS, ...options.settings };
  const diagnostics: Diagnostic[] = [];
  const prev = options.previous;

  // Namespaces: declared ones, plus any a resource lives in.
  const namespaces = new Map<string, NamespaceInfo>();
  for (const n of set.ofKind('Namespace')) namespaces.set(n.metadata.name, { name: n.metadata.name, labels: n.metadata.labels ?? {} });
  for (const l of set.all()) {
    const ns = l.resource.metadata.namespace;
    if (ns && !namespaces.has(ns)) namespaces.set(ns, { name: ns, labels: {} });
  }

  // Waypoints.
  const waypoints: WaypointInfo[] = [];
  for (const l of set.located('Gateway')) {
    const g = l.resource;
    if (g.spec.gatewayClassName !== WAYPOINT_CLASS) continue;
    const ns = g.metadata.namespace ?? 'default';
    const replicas = Number(g.metadata.annotations?.[ANNOTATION_WAYPOINT_REPLICAS] ?? '1');
    waypoints.push({
      namespace: ns,
      name: g.metadata.name,
      serviceAccount: g.metadata.name,
      identity: spiffe(settings.trustDomain, ns, g.metadata.name),
      waypointFor: (g.metadata.labels?.[LABEL_WAYPOINT_FOR] as WaypointFor | undefined) ?? 'service',
      replicas,
      hostname: `${g.metadata.name}.${ns}.svc.${settings.clusterDomain}`,
      vip: undefined,
      pods: [],
      source: l.source,
    });
  }
  const waypointByKey = new Map(waypoints.map((w) => [`${w.namespace}/${w.name}`, w]));
  const ingresses = ingressGateways(set);
  const ingressByKey = new Map(ingresses.map((g) => [`${g.namespace}/${g.name}`, g]));

  // Pods: Pods, Deployment replicas, waypoint replicas.
  const drafts: PodDraft[] = [];
  for (const l of set.located('Pod')) {
    const p = l.resource;
    const ns = p.metadata.namespace ?? 'default';
    const gatewayName = options.observedPods ? p.metadata.labels?.[LABEL_GATEWAY_NAME] : undefined;
    const waypointOf = gatewayName && waypointByKey.has(`${ns}/${gatewayName}`) ? { namespace: ns, name: gatewayName } : undefined;
    const gatewayOf = gatewayName && ingressByKey.has(`${ns}/${gatewayName}`) ? { namespace: ns, name: gatewayName } : undefined;
    drafts.push({
      name: p.metadata.name, namespace: ns, labels: p.metadata.labels ?? {},
      annotations: p.metadata.annotations ?? {}, spec: p.spec, podIP: p.status?.podIP ?? p.status?.podIPs?.[0]?.ip,
      ...(p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'False') ? { notReady: true } : {}),
      workloadName: waypointOf?.name ?? (gatewayOf ? `${gatewayOf.name}-istio` : p.metadata.name), workloadType: waypointOf || gatewayOf ? 'DEPLOYMENT' : 'POD', spreadKey: `${ns}/${p.metadata.name}`, spreadIndex: 0,
      waypointOf, ...(gatewayOf ? { gatewayOf } : {}), source: l.source,
    });
  }
  for (const l of set.located('Deployment')) {
    const d = l.resource;
    const n = d.spec.replicas ?? 1;
    for (let i = 0; i < n; i++) {
      drafts.push({
        name: `${d.metadata.name}-${i}`, namespace: d.metadata.namespace ?? 'default',
        labels: d.spec.template.metadata?.labels ?? {}, annotations: d.spec.template.metadata?.annotations ?? {},
        spec: d.spec.template.spec, workloadName: d.metadata.name, workloadType: 'DEPLOYMENT',
        spreadKey: `${d.metadata.namespace}/${d.metadata.name}`, spreadIndex: i, source: l.source,
      });
    }
  }
  for (const w of options.observedPods ? [] : waypoints) {
    for (let i = 0; i < w.replicas; i++) {
      drafts.push({
        name: `${w.name}-${i}`, namespace: w.namespace,
        labels: { [LABEL_GATEWAY_NAME]: w.name, [LABEL_DATAPLANE_MODE]: 'none' }, annotations: {},
        spec: { serviceAccountName: w.serviceAccount, containers: [{ name: 'waypoint', image: 'ambit/waypoint', command: ['ambit', 'waypoint'] }] },
        workloadName: w.name, workloadType: 'DEPLOYMENT', spreadKey: `${w.namespace}/${w.name}`, spreadIndex: i,
        waypointOf: { namespace: w.namespace, name: w.name }, source: w.source,
      });
    }
  }

  for (const g of options.observedPods ? [] : ingresses) {
    for (const r of ingressReplicaDrafts(g)) {
      drafts.push({
        name: r.name, namespace: r.namespace, labels: r.labels, annotations: {},
        spec: { serviceAccountName: r.serviceAccount, containers: [r.container] },
        workloadName: g.deploymentName, workloadType: 'DEPLOYMENT', spreadKey: `${g.namespace}/${g.deploymentName}`, spreadIndex: r.index,
        gatewayOf: { namespace: g.namespace, name: g.name }, source: g.source,
      });
    }
  }

  // Nodes.
  const nodeNames = [...(options.nodes ?? (options.observedPods ? [] : ['node-1', 'node-2']))];
  for (const d of drafts) {
    if (d.spec.nodeName && !nodeNames.includes(d.spec.nodeName)) {
      if (options.nodes) {
        diagnostics.push(diag(d, 'error', 'unknown-node', 'spec.nodeName', `node "${d.spec.nodeName}" is not in this cluster (nodes: ${nodeNames.join(', ')})`));
      } else {
        nodeNames.push(d.spec.nodeName);
      }
    }
  }
  const base = parseCidr(settings.podCidrBase)!;
  const nodes: NodeInfo[] = nodeNames.map((name, i) => ({
    name, index: i + 1, podCidr: `${nthAddress(base, (i + 1) * 256)}/24`,
  }));

  const nodeByName = new Map(nodes.map((n) => [n.name, n]));

  // Placement and addresses: explicit addresses first, then sticky ones, then fresh ones.
  const placed: { d: PodDraft; uid: string; node: string; ip?: string }[] = [];
  for (const d of drafts) {
    const uid = `${settings.clusterId}//Pod/${d.namespace}/${d.name}`;
    const before = prev?.workloads.get(uid);
    let node = d.spec.nodeName ?? (before && nodeNames.includes(before.node) ? before.node : undefined);
    if (!node) node = nodeNames[(stableHash(d.spreadKey) + d.spreadIndex) % nodeNames.length]!;
    if (!nodeNames.includes(node)) continue; // reported above
    placed.push({ d, uid, node, ip: d.podIP });
  }
  const taken = new Set<string>();
  for (const p of placed) {
    if (!p.ip) continue;
    if (taken.has(p.ip)) {
      diagnostics.push(diag(p.d, 'error', 'duplicate-ip', 'status.podIP', `${p.ip} is already the address of another pod`));
      p.ip = '';
    } else {
      taken.add(p.ip);
    }
  }
  for (const p of placed) {
    const before = prev?.workloads.get(p.uid);
    if (p.ip === undefined && before && before.node === p.node && !taken.has(before.ip)) {
      p.ip = before.ip;
      taken.add(before.ip);
    }
  }
  const nextFree = new Map<string, number>();
  const workloads: WorkloadInfo[] = [];
  const nsLabels = (ns: string) => namespaces.get(ns)?.labels ?? {};
  for (const { d, uid, node, ip: given } of placed) {
    if (given === '') continue; // a clash, reported above
    let ip = given;
    if (!ip) {
      const nodeInfo = nodeByName.get(node)!;
      const cidr = parseCidr(nodeInfo.podCidr)!;
      let n = nextFree.get(node) ?? 2;
      while (n < cidrSize(cidr) - 1 && taken.has(nthAddress(cidr, n))) n++;
      if (n >= cidrSize(cidr) - 1) {
        diagnostics.push(diag(d, 'error', 'no-ip', 'metadata.name', `node ${node} has no free address left in ${nodeInfo.podCidr}`));
        continue;
      }
      ip = nthAddress(cidr, n);
      nextFree.set(node, n + 1);
      taken.add(ip);
    }
    const sa = d.spec.serviceAccountName ?? d.spec.serviceAccount ?? 'default';
    workloads.push({
      uid, name: d.name, namespace: d.namespace, node, ip, serviceAccount: sa,
      identity: spiffe(settings.trustDomain, d.namespace, sa),
      labels: d.labels, annotations: d.annotations, workloadName: d.workloadName, workloadType: d.workloadType,
      canonicalName: d.labels[LABEL_CANONICAL_NAME] ?? d.labels['app.kubernetes.io/name'] ?? d.labels.app ?? d.workloadName,
      canonicalRevision: d.labels[LABEL_CANONICAL_REVISION] ?? d.labels['app.kubernetes.io/version'] ?? d.labels.version ?? 'latest',
      ...(d.notReady ? { notReady: true } : {}),
      mode: dataplaneMode({ namespace: d.namespace, labels: d.labels, annotations: d.annotations, waypointOf: d.waypointOf }, nsLabels(d.namespace)),
      waypointOf: d.waypointOf,
      ...(d.gatewayOf ? { gatewayOf: d.gatewayOf } : {}),
      containers: d.spec.containers as Container[],
      ...(d.spec.securityContext ? { securityContext: d.spec.securityContext } : {}),
      servicePorts: {},
      source: d.source,
    });
  }

  // Services, including the one in front of each waypoint.
  const services: ServiceInfo[] = [];
  for (const l of set.located('Service')) {
    const s = l.resource;
    const ns = s.metadata.namespace ?? 'default';
    const explicit = s.spec.clusterIP && s.spec.clusterIP !== 'None' && s.spec.clusterIP !== '' ? s.spec.clusterIP : undefined;
    services.push({
      namespace: ns, name: s.metadata.name, hostname: `${s.metadata.name}.${ns}.svc.${settings.clusterDomain}`,
      vip: explicit ?? (s.spec.clusterIP === 'None' ? undefined : ''),
      ports: s.spec.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort ?? p.port, appProtocol: p.appProtocol })),
      selector: s.spec.selector, labels: s.metadata.labels ?? {}, endpoints: [], source: l.source,
    });
  }
  for (const w of waypoints) {
    const own = services.find((s) => s.namespace === w.namespace && s.name === w.name);
    if (options.observedPods) {
      // The Service the control plane made for the waypoint (or none yet).
      if (own) own.waypointOf = { namespace: w.namespace, name: w.name };
      continue;
    }
    if (own) {
      diagnostics.push({ severity: 'error', code: 'conflict', file: w.source?.file ?? '', line: w.source?.line ?? 0, resource: `Gateway ${w.namespace}/${w.name}`,
        message: `a Service named "${w.name}" already exists in ${w.namespace}; the waypoint needs that name for its own Service` });
      continue;
    }
    services.push({
      namespace: w.namespace, name: w.name, hostname: w.hostname, vip: '',
      ports: [{ name: 'mesh', port: WAYPOINT_PORT, targetPort: WAYPOINT_PORT }],
      selector: { [LABEL_GATEWAY_NAME]: w.name }, labels: { [LABEL_GATEWAY_NAME]: w.name }, endpoints: [],
      waypointOf: { namespace: w.namespace, name: w.name }, source: w.source,
    });
  }
  for (const g of options.observedPods ? [] : ingresses) {
    if (services.some((s) => s.namespace === g.namespace && s.name === g.deploymentName)) {
      diagnostics.push({ severity: 'error', code: 'conflict', file: g.source?.file ?? '', line: g.source?.line ?? 0, resource: `Gateway ${g.namespace}/${g.name}`,
        message: `a Service named "${g.deploymentName}" already exists in ${g.namespace}; the ingress gateway needs that name for its own Service` });
      continue;
    }
    services.push(ingressService(g, settings.clusterDomain));
  }
  allocateVips(services, settings, prev, diagnostics);

  // Endpoints and per-workload target ports.
  const index = new LabelIndex(workloads);
  const byIp = new Map(workloads.map((w) => [w.ip, w]));
  for (const s of services) {
    const picked = s.selector ? index.select(s.namespace, s.selector)
      : (options.serviceEndpointIps?.get(`${s.namespace}/${s.name}`) ?? []).map((ip) => byIp.get(ip)).filter((w): w is WorkloadInfo => w !== undefined);
    for (const w of picked) {
      s.endpoints.push(w.uid);
      w.servicePorts[`${s.namespace}/${s.hostname}`] = s.ports.map((p) => ({ servicePort: p.port, targetPort: resolveTargetPort(p, w) }));
    }
  }
  for (const w of waypoints) {
    const svc = services.find((s) => s.waypointOf?.namespace === w.namespace && s.waypointOf.name === w.name);
    w.vip = svc?.vip;
    w.pods = workloads.filter((p) => p.waypointOf?.namespace === w.namespace && p.waypointOf.name === w.name).map((p) => p.uid);
  }

  // Waypoint bindings (Istio: service label > namespace label for services; pod label >
  // namespace label for workloads; "none" opts out; waypoint-for decides what it serves).
  for (const s of services) {
    if (s.waypointOf) continue;
    const ref = bindingFrom(s.labels, nsLabels(s.namespace), s.namespace);
    if (ref) {
      const wp = waypointByKey.get(`${ref.namespace}/${ref.name}`);
      if (wp && (wp.waypointFor === 'service' || wp.waypointFor === 'all')) s.waypoint = ref;
    }
  }
  for (const w of workloads) {
    if (w.waypointOf || w.mode !== 'ambient') continue;
    const ref = bindingFrom(w.labels, nsLabels(w.namespace), w.namespace);
    if (ref) {
      const wp = waypointByKey.get(`${ref.namespace}/${ref.name}`);
      if (wp && (wp.waypointFor === 'workload' || wp.waypointFor === 'all')) w.waypoint = ref;
    }
  }

  // ServiceEntries: one registry entry per host (service-entries.ts).
  const seBuilt = buildServiceEntries({
    entries: set.located('ServiceEntry'),
    serviceHostnames: new Set(services.map((s) => s.hostname)),
    takenVips: new Set(services.map((s) => s.vip).filter((v): v is string => !!v)),
    binding: (labels, ns) => {
      const ref = bindingFrom(labels, nsLabels(ns), ns);
      const wp = ref && waypointByKey.get(`${ref.namespace}/${ref.name}`);
      return wp && (wp.waypointFor === 'service' || wp.waypointFor === 'all') ? ref : undefined;
    },
    select: (ns, selector) => index.select(ns, selector).filter((w) => !w.waypointOf).map((w) => w.uid),
    previous: prev ? (ns, host) => prev.serviceEntry(ns, host) : undefined,
  });
  diagnostics.push(...seBuilt.diagnostics);
  const workloadByUid = new Map(workloads.map((w) => [w.uid, w]));
  for (const e of seBuilt.entries) {
    for (const uid of e.selectedWorkloads) {
      const w = workloadByUid.get(uid)!;
      w.servicePorts[`${e.namespace}/${e.host}`] = e.ports.map((p) => ({ servicePort: p.port, targetPort: typeof p.targetPort === 'number' ? p.targetPort : p.port }));
    }
  }

  for (const l of set.located('ConfigMap')) {
    const cm = l.resource;
    if (cm.metadata.name === MESH_CONFIGMAP_NAME && cm.data?.[MESH_CONFIGMAP_KEY] !== undefined && cm.metadata.namespace !== settings.rootNamespace) {
      diagnostics.push({ severity: 'warning', code: 'ignored', file: l.source.file, line: l.source.line, resource: `ConfigMap ${cm.metadata.namespace}/${cm.metadata.name}`, path: 'metadata.namespace',
        message: `the mesh config is read from the root namespace (${settings.rootNamespace}); this one is ignored` });
    }
  }
  const model = new MeshModel({
    workloads, services, waypoints, namespaces: [...namespaces.values()], nodes,
    serviceEntries: seBuilt.entries,
    meshConfig: meshConfigOf(set.ofKind('ConfigMap'), settings.rootNamespace),
    policies: policiesOf(set),
    settings,
  });
  return { model, diagnostics };
}

/** The policy lists of a model (what MeshModel.withPolicies swaps). */
export function policiesOf(set: ConfigSet): MeshPolicies {
  return {
    authorization: set.located('AuthorizationPolicy'),
    peerAuthentication: set.located('PeerAuthentication'),
    requestAuthentication: set.located('RequestAuthentication'),
    httpRoutes: set.located('HTTPRoute'),
  };
}

/**
 * Kinds that feed no index of the model, only its policy lists (or nothing of it): a change of
 * these alone keeps the model (withPolicies). A kind that buildModel reads for pods, services,
 * waypoints, addresses or the mesh config must never be listed here.
 */
export const POLICY_ONLY_KINDS: ReadonlySet<string> = new Set([
  'AuthorizationPolicy', 'PeerAuthentication', 'RequestAuthentication', 'HTTPRoute', 'VirtualService', 'Telemetry', 'DestinationRule', 'Secret',
]);

function diag(d: PodDraft, severity: 'error' | 'warning', code: string, path: string, message: string): Diagnostic {
  return { severity, code, file: d.source?.file ?? '', line: d.source?.line ?? 0, resource: `Pod ${d.namespace}/${d.name}`, path, message };
}

export function spiffe(td: string, ns: string, sa: string): string {
  return `spiffe://${td}/ns/${ns}/sa/${sa}`;
}

function stableHash(s: string): number {
  return createHash('sha256').update(s).digest().readUInt32BE(0);
}


export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

function resolveTargetPort(p: { port: number; targetPort: number | string }, w: WorkloadInfo): number {
  if (typeof p.targetPort === 'number') return p.targetPort;
  for (const c of w.containers) {
    const found = (c.ports ?? []).find((cp) => cp.name === p.targetPort);
    if (found) return found.containerPort;
  }
  return p.port;
}

function bindingFrom(own: Record<string, string>, nsLabels: Record<string, string>, ns: string): WaypointRef | undefined {
  const ownName = own[LABEL_USE_WAYPOINT];
  if (ownName === 'none') return undefined;
  if (ownName) return { namespace: own[LABEL_USE_WAYPOINT_NAMESPACE] ?? ns, name: ownName };
  const nsName = nsLabels[LABEL_USE_WAYPOINT];
  if (!nsName || nsName === 'none') return undefined;
  return { namespace: nsLabels[LABEL_USE_WAYPOINT_NAMESPACE] ?? ns, name: nsName };
}

function allocateVips(services: ServiceInfo[], settings: ModelSettings, prev: MeshModel | undefined, diagnostics: Diagnostic[]): void {
  const cidr = parseCidr(settings.serviceCidr)!;
  const taken = new Set(services.map((s) => s.vip).filter((v): v is string => !!v));
  const pending = services.filter((s) => s.vip === '');
  for (const s of pending) {
    const before = prev?.service(s.namespace, s.name)?.vip;
    if (before && !taken.has(before)) {
      s.vip = before;
      taken.add(before);
    }
  }
  let n = 10;
  for (const s of pending.filter((x) => x.vip === '').sort((a, b) => byCodeUnits(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`))) {
    while (n < cidrSize(cidr) - 1 && taken.has(nthAddress(cidr, n))) n++;
    if (n >= cidrSize(cidr) - 1) {
      diagnostics.push({ severity: 'error', code: 'no-ip', file: s.source?.file ?? '', line: s.source?.line ?? 0, resource: `Service ${s.namespace}/${s.name}`, message: `no free address left in ${settings.serviceCidr}` });
      s.vip = undefined;
      continue;
    }
    s.vip = nthAddress(cidr, n);
    taken.add(s.vip);
  }
}

