// Turning config snapshots into ADS resources. Each resource is encoded only when its
// content changed (cached by name and JSON), so a one-policy change costs one encode, and
// the ADS server sends each proxy only what differs from what it ACKed.
import { contentVersion, type AdsServer } from '../xds/ads-server.js';
import { addressResource, authorizationResource } from '../xds/codec.js';
import {
  ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, serviceResourceName, workloadResourceName,
  type Address, type Authorization,
} from '../xds/workload-api.js';
import { CONFIG_RESOURCE_TYPE_URL, configResource, configResourceName, type ConfigObject } from '../xds/config-resource.js';
import type { ConfigSet } from '../config/config-set.js';
import { MESH_CONFIGMAP_KEY, MESH_CONFIGMAP_NAME } from '../config/mesh-config.js';
import type { WorkloadApi } from './translate.js';
import { MESH_SETTINGS_TYPE_URL, meshSettingsResource, type MeshSettings } from '../xds/mesh-settings.js';
import { pushId } from '../xds/push-version.js';

/** The kinds a waypoint compiles itself (sent as Ambit's ConfigResource type). */
export const WAYPOINT_CONFIG_KINDS: ReadonlySet<string> = new Set(['HTTPRoute', 'VirtualService', 'AuthorizationPolicy', 'RequestAuthentication', 'Telemetry', 'ConfigMap', 'ServiceEntry', 'DestinationRule', 'Secret', 'Gateway', 'ReferenceGrant', 'GRPCRoute', 'TCPRoute']);

/**
 * The L7 config objects of a snapshot: what waypoints need beyond the workload API (of
 * ConfigMaps, only Istio's mesh config; of Secrets, only those `secrets` says some waypoint
 * uses — the ADS filter then gives each only to that waypoint, secret-scope.ts).
 */
export function waypointConfigObjects(set: ConfigSet, secrets: ReadonlyMap<string, unknown> = new Map()): ConfigObject[] {
  return set.all()
    .filter((l) => WAYPOINT_CONFIG_KINDS.has(l.resource.kind))
    .filter((l) => l.resource.kind !== 'ConfigMap' || (l.resource.metadata.name === MESH_CONFIGMAP_NAME && l.resource.data?.[MESH_CONFIGMAP_KEY] !== undefined))
    .filter((l) => l.resource.kind !== 'Secret' || secrets.has(`${l.resource.metadata.namespace}/${l.resource.metadata.name}`))
    .map((l) => l.resource as unknown as ConfigObject);
}

interface Cached {
  /** The object it was encoded from: the same object again needs no comparison at all. */
  source: object;
  json: string;
  body: Uint8Array;
  version: string;
}

interface Encoded {
  name: string;
  body: Uint8Array;
  version: string;
}

export class XdsPusher {
  private readonly cache = new Map<string, Cached>();

  constructor(private readonly ads: AdsServer) {}

  /**
   * Push a whole snapshot as one push (id from the config version: a proxy applies it only
   * once it holds every type of it); returns how many resources changed per type.
   */
  push(api: WorkloadApi, config: ConfigObject[] = [], configVersion = 0, mesh?: MeshSettings): { addresses: number; authorizations: number; config: number } {
    const addresses: Address[] = [
      ...api.workloads.map((workload) => ({ workload })),
      ...api.services.map((service) => ({ service })),
    ];
    const [addr, authz, cfg] = this.ads.publish(pushId(configVersion), [
      { typeUrl: ADDRESS_TYPE_URL, resources: addresses.map((a) => this.encode(`a/${a.workload ? workloadResourceName(a.workload) : serviceResourceName(a.service!)}`, (a.workload ?? a.service)!, a, () => addressResource(a))) },
      { typeUrl: AUTHORIZATION_TYPE_URL, resources: api.authorizations.map((a: Authorization) => this.encode(`z/${a.namespace}/${a.name}`, a, a, () => authorizationResource(a))) },
      { typeUrl: CONFIG_RESOURCE_TYPE_URL, resources: config.map((o) => this.encode(`c/${configResourceName(o)}`, o, o, () => configResource(o))) },
      ...(mesh ? [{ typeUrl: MESH_SETTINGS_TYPE_URL, resources: [this.encode('m/mesh', mesh, mesh, () => meshSettingsResource(mesh))] }] : []),
    ]);
    this.prune(new Set([
      'm/mesh',
      ...addresses.map((a) => `a/${a.workload ? workloadResourceName(a.workload) : serviceResourceName(a.service!)}`),
      ...api.authorizations.map((a) => `z/${a.namespace}/${a.name}`),
      ...config.map((o) => `c/${configResourceName(o)}`),
    ]));
    return { addresses: addr!.changed, authorizations: authz!.changed, config: cfg!.changed };
  }

  /**
   * A resource's bytes and version, encoded again only when it changed: the same object as
   * last time (an incremental translation keeps them) costs a lookup; another object with the
   * same JSON costs a comparison; only a real change is encoded and hashed.
   */
  private encode(key: string, source: object, value: unknown, make: () => { name: string; body: Uint8Array }): Encoded {
    const name = key.slice(2);
    const hit = this.cache.get(key);
    if (hit && hit.source === source) return { name, body: hit.body, version: hit.version };
    const json = JSON.stringify(value);
    if (hit && hit.json === json) {
      hit.source = source;
      return { name, body: hit.body, version: hit.version };
    }
    const r = make();
    const version = contentVersion(r.body);
    this.cache.set(key, { source, json, body: r.body, version });
    return { name: r.name, body: r.body, version };
  }

  private prune(keep: Set<string>): void {
    for (const k of this.cache.keys()) if (!keep.has(k)) this.cache.delete(k);
  }
}
