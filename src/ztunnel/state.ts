// What a ztunnel knows of the mesh: the workload API objects it received (from a static file
// or over xDS), indexed for the data path. Immutable: an update makes a new ZtunnelState and
// the data path picks it up for new connections (live ones are re-checked by the connection
// manager). Authorization objects are compiled once here, not per connection.
import { byPolicyKey, fromAuthorization, policiesForZtunnel, type CompiledPolicy } from '../rbac/index.js';
import {
  authorizationResourceName, serviceResourceName, workloadResourceName,
  type Authorization, type Service, type Workload,
} from '../xds/workload-api.js';
import { byCodeUnits } from '../core/compare.js';
import { formatSpiffe } from '../identity/spiffe.js';

export interface WorkloadApiSnapshot {
  workloads: Workload[];
  services: Service[];
  authorizations: Authorization[];
}

export class ZtunnelState {
  readonly workloads: ReadonlyMap<string, Workload>;
  readonly services: ReadonlyMap<string, Service>;
  readonly authorizations: ReadonlyMap<string, Authorization>;
  /** A version string for /config_dump and logs. */
  readonly version: string;

  private readonly byIp = new Map<string, Workload>();
  private readonly svcByVip = new Map<string, Service>();
  private readonly compiled: CompiledPolicy[];
  private readonly applicable = new Map<string, CompiledPolicy[]>();
  /** service key -> endpoint workloads (those listing the service), sorted by uid. */
  private readonly endpoints = new Map<string, Workload[]>();

  constructor(snapshot: WorkloadApiSnapshot, version = '0') {
    this.version = version;
    this.workloads = new Map(snapshot.workloads.map((w) => [workloadResourceName(w), w]));
    this.services = new Map(snapshot.services.map((s) => [serviceResourceName(s), s]));
    this.authorizations = new Map(snapshot.authorizations.map((a) => [authorizationResourceName(a), a]));
    for (const w of [...this.workloads.values()].sort((a, b) => byCodeUnits(a.uid, b.uid))) {
      for (const ip of w.addresses) this.byIp.set(ip, w);
      for (const key of Object.keys(w.services)) {
        const list = this.endpoints.get(key);
        if (list) list.push(w);
        else this.endpoints.set(key, [w]);
      }
    }
    for (const s of this.services.values()) for (const a of s.addresses) this.svcByVip.set(a.address, s);
    this.compiled = [...this.authorizations.values()].map(fromAuthorization);
  }

  static empty(): ZtunnelState {
    return new ZtunnelState({ workloads: [], services: [], authorizations: [] });
  }

  snapshot(): WorkloadApiSnapshot {
    return { workloads: [...this.workloads.values()], services: [...this.services.values()], authorizations: [...this.authorizations.values()] };
  }

  workloadByIp(ip: string): Workload | undefined {
    return this.byIp.get(normalizeIp(ip));
  }

  serviceByVip(ip: string): Service | undefined {
    return this.svcByVip.get(normalizeIp(ip));
  }

  serviceByKey(key: string): Service | undefined {
    return this.services.get(key);
  }

  /** Endpoints of a service: the workloads that list it, healthy first (sorted by uid). */
  endpointsOf(service: Service): Workload[] {
    return this.endpoints.get(serviceResourceName(service)) ?? [];
  }

  workloadsOnNode(node: string): Workload[] {
    return [...this.workloads.values()].filter((w) => w.node === node);
  }

  /**
   * The compiled policies the ztunnel enforces for connections to this workload. Memoized per
   * (namespace, named policies): the state is immutable, and a scan of every policy per
   * connection costs ~1 ms at 10k policies (bench/micro/authz.ts).
   */
  policiesFor(workload: Workload): CompiledPolicy[] {
    const key = `${workload.namespace}\u0000${workload.authorizationPolicies.join('\u0000')}`;
    let hit = this.applicable.get(key);
    if (!hit) {
      // In key order, as evaluate() takes them, so it sorts no copy per connection.
      hit = policiesForZtunnel(this.compiled, workload).sort(byPolicyKey);
      this.applicable.set(key, hit);
    }
    return hit;
  }
}

/** `::ffff:10.0.0.1` (how dual-stack sockets report IPv4 peers) -> `10.0.0.1`. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

export function identityOf(w: Workload): string {
  return formatSpiffe(w);
}
