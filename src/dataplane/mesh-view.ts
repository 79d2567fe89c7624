// What a proxy knows of the mesh: the workload API objects it received (from a static file or
// over xDS), indexed for the data path.
//
// Invariants:
// - Updated in place by deltas (apply): a delta touches the indexes and compiled policies of
//   the objects it names, nothing else, so a one-pod change costs the same at 100 workloads as
//   at 10,000. Updates happen between event-loop turns: a decision made in one turn sees one
//   version; one that spans turns (a retry) sees the newest.
// - Workload, Service and Authorization objects are never mutated: an update replaces them,
//   so anything keyed by object identity (baggage, label caches) stays correct.
// - Every query answers exactly what a state built from scratch from the same objects would
//   (fromSnapshot; a property test checks random delta sequences against it), including the
//   tie-breaks: an IP or VIP claimed twice belongs to the greatest resource name.
// - Authorization objects are compiled once, when they arrive, not per connection; the policies
//   applying to a workload are looked up by scope (global, its namespace, named), not scanned.
import { byPolicyKey, fromAuthorization, type CompiledPolicy } from '../rbac/index.js';
import {
  authorizationResourceName, serviceResourceName, workloadResourceName,
  type Authorization, type Service, type Workload,
} from '../xds/workload-api.js';
import { byCodeUnits } from '../core/compare.js';
import { formatSpiffe } from '../identity/spiffe.js';
import { DEFAULT_MESH_SETTINGS, type MeshSettings } from '../xds/mesh-settings.js';

export interface WorkloadApiSnapshot {
  workloads: Workload[];
  services: Service[];
  authorizations: Authorization[];
  /** Ambit's MeshSettings (outbound policy, ServiceEntry visibility); the defaults when absent. */
  mesh?: MeshSettings;
}

/** Changes to apply: upserted objects, and removed resource names. */
export interface WorkloadApiDelta {
  workloads?: { upsert?: readonly Workload[]; remove?: readonly string[] };
  services?: { upsert?: readonly Service[]; remove?: readonly string[] };
  authorizations?: { upsert?: readonly Authorization[]; remove?: readonly string[] };
}

export class MeshView {
  private readonly workloadMap = new Map<string, Workload>();
  private readonly serviceMap = new Map<string, Service>();
  private readonly authorizationMap = new Map<string, Authorization>();
  /** A version string for /config_dump and logs. */
  version: string;
  /** Ambit's MeshSettings (outbound policy, ServiceEntry visibility); replaced whole on each push. */
  mesh: MeshSettings;

  /** ip -> the workloads claiming it (normally one). */
  private readonly ipOwners = new Map<string, Map<string, Workload>>();
  private readonly vipOwners = new Map<string, Map<string, Service>>();
  private readonly byNode = new Map<string, Map<string, Workload>>();
  /** service key -> endpoint workloads (those listing the service), by uid. */
  private readonly endpointSets = new Map<string, Map<string, Workload>>();
  /** service key -> its endpoints sorted by uid, made on first read after a change. */
  private readonly endpointLists = new Map<string, Workload[]>();
  private readonly compiled = new Map<string, CompiledPolicy>();
  private readonly globalPolicies = new Map<string, CompiledPolicy>();
  private readonly namespacePolicies = new Map<string, Map<string, CompiledPolicy>>();
  /** (namespace, named policies) -> applicable policies; cleared when any policy changes. */
  private readonly applicable = new Map<string, CompiledPolicy[]>();

  constructor(snapshot: WorkloadApiSnapshot = { workloads: [], services: [], authorizations: [] }, version = '0') {
    this.version = version;
    this.mesh = snapshot.mesh ?? DEFAULT_MESH_SETTINGS;
    this.apply({ workloads: { upsert: snapshot.workloads }, services: { upsert: snapshot.services }, authorizations: { upsert: snapshot.authorizations } }, version);
  }

  /** A state built from scratch (the oracle incremental updates are checked against). */
  static fromSnapshot(snapshot: WorkloadApiSnapshot, version = '0'): MeshView {
    return new MeshView(snapshot, version);
  }

  static empty(): MeshView {
    return new MeshView();
  }

  get workloads(): ReadonlyMap<string, Workload> {
    return this.workloadMap;
  }

  get services(): ReadonlyMap<string, Service> {
    return this.serviceMap;
  }

  get authorizations(): ReadonlyMap<string, Authorization> {
    return this.authorizationMap;
  }

  /** Applies a delta in place: removals first, then upserts, per type. */
  apply(delta: WorkloadApiDelta, version: string): void {
    this.version = version;
    for (const name of delta.workloads?.remove ?? []) this.removeWorkload(name);
    for (const w of delta.workloads?.upsert ?? []) this.upsertWorkload(w);
    for (const name of delta.services?.remove ?? []) this.removeService(name);
    for (const s of delta.services?.upsert ?? []) this.upsertService(s);
    const policyChange = (delta.authorizations?.remove?.length ?? 0) + (delta.authorizations?.upsert?.length ?? 0) > 0;
    for (const name of delta.authorizations?.remove ?? []) this.removeAuthorization(name);
    for (const a of delta.authorizations?.upsert ?? []) this.upsertAuthorization(a);
    if (policyChange) this.applicable.clear();
  }

  snapshot(): WorkloadApiSnapshot {
    return { workloads: [...this.workloadMap.values()], services: [...this.serviceMap.values()], authorizations: [...this.authorizationMap.values()], mesh: this.mesh };
  }

  workloadByIp(ip: string): Workload | undefined {
    return greatest(this.ipOwners.get(normalizeIp(ip)));
  }

  serviceByVip(ip: string): Service | undefined {
    return greatest(this.vipOwners.get(normalizeIp(ip)));
  }

  serviceByKey(key: string): Service | undefined {
    return this.serviceMap.get(key);
  }

  /** Endpoints of a service: the workloads that list it, sorted by uid. */
  endpointsOf(service: Service): Workload[] {
    const key = serviceResourceName(service);
    let list = this.endpointLists.get(key);
    if (!list) {
      const set = this.endpointSets.get(key);
      if (!set) return [];
      list = [...set.values()].sort((a, b) => byCodeUnits(a.uid, b.uid));
      this.endpointLists.set(key, list);
    }
    return list;
  }

  /** Endpoints of a service that may take a connection (not marked unhealthy). */
  healthyEndpointsOf(service: Service): Workload[] {
    return this.endpointsOf(service).filter((w) => w.status !== 'UNHEALTHY');
  }

  /**
   * One healthy endpoint of `service` with an address, chosen by `pick` (one sequence per
   * service). Endpoints known only by a host name (ServiceEntry resolution DNS) are skipped.
   */
  pickEndpoint(service: Service, pick: Picker): Workload | undefined {
    const ready = this.healthyEndpointsOf(service).filter((w) => w.addresses.length > 0);
    return ready.length ? ready[pick(`svc/${service.namespace}/${service.hostname}`, ready.length)] : undefined;
  }

  workloadsOnNode(node: string): Workload[] {
    return [...(this.byNode.get(node)?.values() ?? [])];
  }

  /**
   * The compiled policies the ztunnel enforces for connections to this workload: the global
   * ones, its namespace's, and the ones it names, in key order (as evaluate() takes them).
   * Memoized per (namespace, named policies) until a policy changes.
   */
  policiesFor(workload: Workload): CompiledPolicy[] {
    const key = `${workload.namespace}\u0000${workload.authorizationPolicies.join('\u0000')}`;
    let hit = this.applicable.get(key);
    if (!hit) {
      const found = new Map<string, CompiledPolicy>(this.globalPolicies);
      for (const [k, p] of this.namespacePolicies.get(workload.namespace) ?? []) found.set(k, p);
      for (const name of workload.authorizationPolicies) {
        const p = this.compiled.get(name);
        if (p) found.set(name, p);
      }
      hit = [...found.values()].sort(byPolicyKey);
      this.applicable.set(key, hit);
    }
    return hit;
  }

  // ---- index maintenance ----

  private upsertWorkload(w: Workload): void {
    const name = workloadResourceName(w);
    this.removeWorkload(name);
    this.workloadMap.set(name, w);
    for (const ip of w.addresses) addTo(this.ipOwners, ip, name, w);
    addTo(this.byNode, w.node, name, w);
    for (const key of Object.keys(w.services)) {
      addTo(this.endpointSets, key, w.uid, w);
      this.endpointLists.delete(key);
    }
  }

  private removeWorkload(name: string): void {
    const w = this.workloadMap.get(name);
    if (!w) return;
    this.workloadMap.delete(name);
    for (const ip of w.addresses) removeFrom(this.ipOwners, ip, name);
    removeFrom(this.byNode, w.node, name);
    for (const key of Object.keys(w.services)) {
      removeFrom(this.endpointSets, key, w.uid);
      this.endpointLists.delete(key);
    }
  }

  private upsertService(s: Service): void {
    const name = serviceResourceName(s);
    this.removeService(name);
    this.serviceMap.set(name, s);
    for (const a of s.addresses) addTo(this.vipOwners, a.address, name, s);
  }

  private removeService(name: string): void {
    const s = this.serviceMap.get(name);
    if (!s) return;
    this.serviceMap.delete(name);
    for (const a of s.addresses) removeFrom(this.vipOwners, a.address, name);
  }

  private upsertAuthorization(a: Authorization): void {
    const name = authorizationResourceName(a);
    this.removeAuthorization(name);
    this.authorizationMap.set(name, a);
    const p = fromAuthorization(a);
    this.compiled.set(name, p);
    if (p.scope.kind === 'GLOBAL') this.globalPolicies.set(name, p);
    else if (p.scope.kind === 'NAMESPACE') addTo(this.namespacePolicies, p.namespace, name, p);
  }

  private removeAuthorization(name: string): void {
    const p = this.compiled.get(name);
    if (!p) return;
    this.authorizationMap.delete(name);
    this.compiled.delete(name);
    this.globalPolicies.delete(name);
    removeFrom(this.namespacePolicies, p.namespace, name);
  }
}

function addTo<T>(index: Map<string, Map<string, T>>, key: string, name: string, value: T): void {
  let m = index.get(key);
  if (!m) index.set(key, (m = new Map()));
  m.set(name, value);
}

function removeFrom<T>(index: Map<string, Map<string, T>>, key: string, name: string): void {
  const m = index.get(key);
  if (!m) return;
  m.delete(name);
  if (m.size === 0) index.delete(key);
}

/** The value of the greatest key (one entry: that entry). */
function greatest<T>(m: Map<string, T> | undefined): T | undefined {
  if (!m) return undefined;
  if (m.size === 1) return m.values().next().value;
  let best: string | undefined;
  for (const k of m.keys()) if (best === undefined || byCodeUnits(k, best) > 0) best = k;
  return best === undefined ? undefined : m.get(best);
}

/** `::ffff:10.0.0.1` (how dual-stack sockets report IPv4 peers) -> `10.0.0.1`. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

export function identityOf(w: Workload): string {
  return formatSpiffe(w);
}

/**
 * The pod port a service port reaches on one endpoint: the endpoint's own mapping (a named
 * targetPort resolved per pod), else the Service's targetPort, else the port itself.
 */
export function targetPortOf(endpoint: Workload, service: Service | undefined, servicePort: number): number {
  if (!service) return servicePort;
  return endpoint.services[`${service.namespace}/${service.hostname}`]?.ports.find((p) => p.servicePort === servicePort)?.targetPort
    || service.ports.find((p) => p.servicePort === servicePort)?.targetPort
    || servicePort;
}

/** Chooses an index below `n` for a key (a service, a waypoint): how endpoints are spread. */
export type Picker = (key: string, n: number) => number;

/** Round robin per key. */
export function roundRobin(): Picker {
  const next = new Map<string, number>();
  return (key, n) => {
    const i = next.get(key) ?? 0;
    next.set(key, i + 1);
    return i % n;
  };
}
