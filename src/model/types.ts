// The mesh as Ambit sees it after reading config: nodes, workloads (pods), services and
// waypoints, with the bindings between them resolved. Plain data; built by build-model.ts
// and indexed by MeshModel.
import type { Container, SecurityContext, Located, AuthorizationPolicyResource, PeerAuthenticationResource, RequestAuthenticationResource, HTTPRouteResource, SourceLocation } from '../config/resources.js';
import type { WaypointFor } from '../config/labels.js';

export interface NodeInfo {
  name: string;
  /** 1-based position; decides the pod CIDR. */
  index: number;
  podCidr: string;
}

export interface WaypointRef {
  namespace: string;
  name: string;
}

export type DataplaneMode = 'ambient' | 'none' | 'sidecar';

export interface WorkloadInfo {
  uid: string;
  name: string;
  namespace: string;
  node: string;
  ip: string;
  serviceAccount: string;
  /** spiffe://<td>/ns/<ns>/sa/<sa> */
  identity: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  workloadName: string;
  workloadType: 'POD' | 'DEPLOYMENT';
  canonicalName: string;
  canonicalRevision: string;
  /**
   * False when the pod reports its Ready condition False (Kubernetes): the workload is pushed
   * UNHEALTHY and proxies pick no connection to it through a Service. Absent: ready.
   */
  notReady?: boolean;
  mode: DataplaneMode;
  /** Waypoint for traffic addressed to this workload directly (per waypoint-for). */
  waypoint?: WaypointRef;
  /** Set when this pod is a replica of a waypoint. */
  waypointOf?: WaypointRef;
  /** Set when this pod is a replica of an ingress gateway (a Gateway of class istio). */
  gatewayOf?: WaypointRef;
  containers: Container[];
  /** The pod-level securityContext (the containers carry their own). */
  securityContext?: SecurityContext;
  /** "ns/hostname" -> service port -> target port on this workload. */
  servicePorts: Record<string, { servicePort: number; targetPort: number }[]>;
  source?: SourceLocation;
}

export interface ServicePortInfo {
  name?: string;
  port: number;
  targetPort: number | string;
  appProtocol?: string;
}

export interface ServiceInfo {
  namespace: string;
  name: string;
  hostname: string;
  vip: string | undefined;
  ports: ServicePortInfo[];
  selector: Record<string, string> | undefined;
  labels: Record<string, string>;
  /** uids of the workloads the selector picks. */
  endpoints: string[];
  /** Waypoint for traffic addressed to this service (per waypoint-for). */
  waypoint?: WaypointRef;
  /** Set when this is the Service in front of a waypoint. */
  waypointOf?: WaypointRef;
  source?: SourceLocation;
}

export interface WaypointInfo {
  namespace: string;
  name: string;
  serviceAccount: string;
  identity: string;
  waypointFor: WaypointFor;
  replicas: number;
  /** The Service in front of the replicas: <name>.<ns>.svc.<domain> */
  hostname: string;
  vip: string | undefined;
  /** uids of the replica pods. */
  pods: string[];
  source?: SourceLocation;
}

export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
}

export interface MeshPolicies {
  authorization: Located<AuthorizationPolicyResource>[];
  peerAuthentication: Located<PeerAuthenticationResource>[];
  requestAuthentication: Located<RequestAuthenticationResource>[];
  httpRoutes: Located<HTTPRouteResource>[];
}

export interface ModelSettings {
  trustDomain: string;
  rootNamespace: string;
  clusterId: string;
  network: string;
  clusterDomain: string;
  serviceCidr: string;
  podCidrBase: string;
}

export const DEFAULT_SETTINGS: ModelSettings = {
  trustDomain: 'cluster.local',
  rootNamespace: 'istio-system',
  clusterId: 'Kubernetes',
  network: '',
  clusterDomain: 'cluster.local',
  serviceCidr: '10.96.0.0/16',
  podCidrBase: '10.244.0.0/16',
};

/** An inline endpoint of a ServiceEntry: an IP, or a host name resolved by DNS. */
export interface ServiceEntryEndpointInfo {
  address?: string;
  hostname?: string;
  /** Service port name -> endpoint port. */
  ports: Record<string, number>;
  labels: Record<string, string>;
  serviceAccount?: string;
}

/**
 * One host of a ServiceEntry: the registry entry the workload API turns into a Service
 * (namespace/name of the ServiceEntry, hostname = the host), as Istio does.
 */
export interface ServiceEntryInfo {
  namespace: string;
  /** The ServiceEntry's name. */
  name: string;
  host: string;
  /** The VIP: the first single address of spec.addresses, else the auto-allocated one, else none. */
  vip: string | undefined;
  autoAllocated: boolean;
  /** spec.addresses that are ranges (not routable by the ztunnel; known under REGISTRY_ONLY). */
  cidrs: string[];
  ports: (ServicePortInfo & { name: string; protocol: string })[];
  resolution: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'DYNAMIC_DNS';
  location: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  /** Namespaces that see it: ['*'] (all), or names. */
  exportTo: string[];
  labels: Record<string, string>;
  selector: Record<string, string> | undefined;
  endpoints: ServiceEntryEndpointInfo[];
  /** uids of the pods its workloadSelector picks. */
  selectedWorkloads: string[];
  subjectAltNames: string[];
  waypoint?: WaypointRef;
  source?: SourceLocation;
}
