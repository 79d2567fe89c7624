// The indexed, immutable mesh model. Lookups by uid, IP, node, identity, VIP and hostname.
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../config/mesh-config.js';
import { LabelIndex } from './label-index.js';
import type { MeshPolicies, ModelSettings, NamespaceInfo, NodeInfo, ServiceEntryInfo, ServiceInfo, WaypointInfo, WorkloadInfo } from './types.js';

export class MeshModel {
  readonly workloads: ReadonlyMap<string, WorkloadInfo>;
  readonly services: ReadonlyMap<string, ServiceInfo>;
  readonly waypoints: ReadonlyMap<string, WaypointInfo>;
  readonly namespaces: ReadonlyMap<string, NamespaceInfo>;
  readonly nodes: readonly NodeInfo[];
  readonly policies: MeshPolicies;
  readonly settings: ModelSettings;
  /** Istio's mesh config (ConfigMap `istio` in the root namespace), Ambit's defaults where unset. */
  readonly meshConfig: MeshConfig;
  /** ServiceEntry hosts, one entry per namespace/host (service-entries.ts). */
  readonly serviceEntries: readonly ServiceEntryInfo[];
  private readonly seByKey = new Map<string, ServiceEntryInfo>();

  private readonly byIp = new Map<string, WorkloadInfo>();
  private readonly byNode = new Map<string, WorkloadInfo[]>();
  private readonly byIdentity = new Map<string, WorkloadInfo[]>();
  private readonly byName = new Map<string, WorkloadInfo>();
  private readonly svcByVip = new Map<string, ServiceInfo>();
  private readonly svcByHostname = new Map<string, ServiceInfo>();
  private labelIndex: LabelIndex<WorkloadInfo> | undefined;

  constructor(parts: {
    workloads: WorkloadInfo[];
    services: ServiceInfo[];
    waypoints: WaypointInfo[];
    namespaces: NamespaceInfo[];
    nodes: NodeInfo[];
    policies: MeshPolicies;
    settings: ModelSettings;
    meshConfig?: MeshConfig;
    serviceEntries?: ServiceEntryInfo[];
  }) {
    this.serviceEntries = parts.serviceEntries ?? [];
    for (const e of this.serviceEntries) this.seByKey.set(`${e.namespace}/${e.host}`, e);
    this.workloads = new Map(parts.workloads.map((w) => [w.uid, w]));
    this.services = new Map(parts.services.map((s) => [`${s.namespace}/${s.name}`, s]));
    this.waypoints = new Map(parts.waypoints.map((w) => [`${w.namespace}/${w.name}`, w]));
    this.namespaces = new Map(parts.namespaces.map((n) => [n.name, n]));
    this.nodes = parts.nodes;
    this.policies = parts.policies;
    this.settings = parts.settings;
    this.meshConfig = parts.meshConfig ?? DEFAULT_MESH_CONFIG;
    for (const w of parts.workloads) {
      this.byIp.set(w.ip, w);
      this.byName.set(`${w.namespace}/${w.name}`, w);
      push(this.byNode, w.node, w);
      push(this.byIdentity, w.identity, w);
    }
    for (const s of parts.services) {
      if (s.vip) this.svcByVip.set(s.vip, s);
      this.svcByHostname.set(s.hostname, s);
    }
  }

  /**
   * The same model with other policy lists: for a change of policy kinds only, which feed no
   * index of the model (pods, services, waypoints, addresses stay as they are). Shares every
   * index with this model.
   */
  withPolicies(policies: MeshPolicies): MeshModel {
    const m = Object.create(MeshModel.prototype) as MeshModel;
    Object.assign(m, this, { policies });
    return m;
  }

  /** Workloads matching a label selector in a namespace (every namespace when undefined). */
  selectWorkloads(namespace: string | undefined, selector: Record<string, string>): WorkloadInfo[] {
    this.labelIndex ??= new LabelIndex([...this.workloads.values()]);
    return this.labelIndex.select(namespace, selector);
  }

  workloadByIp(ip: string): WorkloadInfo | undefined {
    return this.byIp.get(ip);
  }

  /** A pod by `ns/name`. */
  workloadByName(ns: string, name: string): WorkloadInfo | undefined {
    return this.byName.get(`${ns}/${name}`);
  }

  workloadsOnNode(node: string): WorkloadInfo[] {
    return this.byNode.get(node) ?? [];
  }

  workloadsWithIdentity(identity: string): WorkloadInfo[] {
    return this.byIdentity.get(identity) ?? [];
  }

  service(ns: string, name: string): ServiceInfo | undefined {
    return this.services.get(`${ns}/${name}`);
  }

  serviceByVip(ip: string): ServiceInfo | undefined {
    return this.svcByVip.get(ip);
  }

  serviceByHostname(hostname: string): ServiceInfo | undefined {
    return this.svcByHostname.get(hostname);
  }

  /** The ServiceEntry host `host` declared in namespace `ns`. */
  serviceEntry(ns: string, host: string): ServiceEntryInfo | undefined {
    return this.seByKey.get(`${ns}/${host}`);
  }

  waypoint(ns: string, name: string): WaypointInfo | undefined {
    return this.waypoints.get(`${ns}/${name}`);
  }

  namespaceLabels(ns: string): Record<string, string> {
    return this.namespaces.get(ns)?.labels ?? {};
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}
