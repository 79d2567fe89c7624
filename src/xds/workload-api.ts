// The workload API (istio.workload / istio.security) as plain TypeScript values. These are
// the messages the control plane pushes to ztunnels; the wire codec (codec.ts) maps them to
// and from protobuf with Istio's field numbers (see proto/). IP addresses are strings here
// and bytes on the wire.

export const ADDRESS_TYPE_URL = 'type.googleapis.com/istio.workload.Address';
export const AUTHORIZATION_TYPE_URL = 'type.googleapis.com/istio.security.Authorization';

export type TunnelProtocol = 'NONE' | 'HBONE';
export type WorkloadStatus = 'HEALTHY' | 'UNHEALTHY';
export type WorkloadType = 'DEPLOYMENT' | 'CRONJOB' | 'POD' | 'JOB';

export interface NetworkAddress {
  network: string;
  address: string;
}

export interface NamespacedHostname {
  namespace: string;
  hostname: string;
}

export interface GatewayAddress {
  /** Exactly one of hostname / address is set. */
  hostname?: NamespacedHostname;
  address?: NetworkAddress;
  hboneMtlsPort: number;
}

export interface Port {
  servicePort: number;
  /** 0 when the service names its target port; the workload's `services` map then carries the number. */
  targetPort: number;
  appProtocol?: string;
}

export interface PortList {
  ports: Port[];
}

export interface Locality {
  region: string;
  zone: string;
  subzone: string;
}

export interface Workload {
  uid: string;
  name: string;
  namespace: string;
  addresses: string[];
  network: string;
  tunnelProtocol: TunnelProtocol;
  trustDomain: string;
  serviceAccount: string;
  waypoint?: GatewayAddress;
  node: string;
  canonicalName: string;
  canonicalRevision: string;
  workloadType: WorkloadType;
  workloadName: string;
  authorizationPolicies: string[];
  status: WorkloadStatus;
  clusterId: string;
  hostname?: string;
  /** "ns/hostname" -> ports this workload serves for that service. */
  services: Record<string, PortList>;
  locality?: Locality;
  /**
   * native_tunnel (14): the workload receives tunnel traffic itself (Istio: "a workload expects
   * to directly receive tunnel traffic"). Ambit sets it for sidecar pods: peers send HBONE to the
   * pod's own 15008 and the node's ztunnel does not serve it. Absent when false.
   */
  nativeTunnel?: boolean;
}

export interface LoadBalancing {
  mode?: 'UNSPECIFIED_MODE' | 'STRICT' | 'FAILOVER';
  routingPreference?: string[];
}

export interface Service {
  name: string;
  namespace: string;
  hostname: string;
  addresses: NetworkAddress[];
  ports: Port[];
  subjectAltNames: string[];
  waypoint?: GatewayAddress;
  loadBalancing?: LoadBalancing;
}

/** istio.workload.Address: a oneof of workload (1) and service (2). */
export type Address = { workload: Workload; service?: undefined } | { service: Service; workload?: undefined };

// ---- istio.security ----

export type Scope = 'GLOBAL' | 'NAMESPACE' | 'WORKLOAD_SELECTOR';
export type Action = 'ALLOW' | 'DENY';

export type StringMatch = { exact: string } | { prefix: string } | { suffix: string } | { presence: Record<string, never> };

/** A CIDR: address bytes (as a string here) and prefix length. */
export interface AddressMatch {
  address: string;
  length: number;
}

export interface ServiceAccountMatch {
  namespace: string;
  serviceAccount: string;
}

export interface Match {
  namespaces: StringMatch[];
  notNamespaces: StringMatch[];
  principals: StringMatch[];
  notPrincipals: StringMatch[];
  sourceIps: AddressMatch[];
  notSourceIps: AddressMatch[];
  destinationIps: AddressMatch[];
  notDestinationIps: AddressMatch[];
  destinationPorts: number[];
  notDestinationPorts: number[];
  serviceAccounts: ServiceAccountMatch[];
  notServiceAccounts: ServiceAccountMatch[];
}

export interface Clause {
  matches: Match[];
}

export interface Rule {
  clauses: Clause[];
}

export interface Authorization {
  name: string;
  namespace: string;
  scope: Scope;
  action: Action;
  rules: Rule[];
  dryRun: boolean;
}

/** The resource name of each object on the ADS stream. */
export function workloadResourceName(w: Workload): string {
  return w.uid;
}
export function serviceResourceName(s: Service): string {
  return `${s.namespace}/${s.hostname}`;
}
export function authorizationResourceName(a: Authorization): string {
  return `${a.namespace}/${a.name}`;
}

export function emptyMatch(): Match {
  return {
    namespaces: [], notNamespaces: [], principals: [], notPrincipals: [],
    sourceIps: [], notSourceIps: [], destinationIps: [], notDestinationIps: [],
    destinationPorts: [], notDestinationPorts: [], serviceAccounts: [], notServiceAccounts: [],
  };
}
