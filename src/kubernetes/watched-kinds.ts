// The Kubernetes resources the control plane watches, and what each one feeds.
//
// Invariants:
// - One informer per row; a row whose group the API server does not serve (CRDs not
//   installed) is skipped with a warning, the others still run.
// - `versions` is in order of preference; the first one the API server serves is watched,
//   and objects carry that apiVersion (Ambit's validator accepts each of them).
// - The same objects are served under every version of a CRD, so exactly one is watched.

export type Feeds = 'config' | 'endpoints' | 'owned';

export interface WatchedKind {
  kind: string;
  /** '' for the core group. */
  group: string;
  versions: readonly string[];
  plural: string;
  namespaced: boolean;
  feeds: Feeds;
  /** Watch only this namespace (the mesh config ConfigMap lives in the root namespace). */
  namespace?: 'root';
  fieldSelector?: string;
  labelSelector?: string;
}

const ISTIO_SECURITY = ['v1', 'v1beta1'];

export const WATCHED_KINDS: readonly WatchedKind[] = [
  { kind: 'Namespace', group: '', versions: ['v1'], plural: 'namespaces', namespaced: false, feeds: 'config' },
  { kind: 'Pod', group: '', versions: ['v1'], plural: 'pods', namespaced: true, feeds: 'config' },
  { kind: 'Service', group: '', versions: ['v1'], plural: 'services', namespaced: true, feeds: 'config' },
  { kind: 'EndpointSlice', group: 'discovery.k8s.io', versions: ['v1'], plural: 'endpointslices', namespaced: true, feeds: 'endpoints' },
  { kind: 'AuthorizationPolicy', group: 'security.istio.io', versions: ISTIO_SECURITY, plural: 'authorizationpolicies', namespaced: true, feeds: 'config' },
  { kind: 'PeerAuthentication', group: 'security.istio.io', versions: ISTIO_SECURITY, plural: 'peerauthentications', namespaced: true, feeds: 'config' },
  { kind: 'RequestAuthentication', group: 'security.istio.io', versions: ISTIO_SECURITY, plural: 'requestauthentications', namespaced: true, feeds: 'config' },
  { kind: 'VirtualService', group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'], plural: 'virtualservices', namespaced: true, feeds: 'config' },
  { kind: 'Telemetry', group: 'telemetry.istio.io', versions: ['v1', 'v1alpha1'], plural: 'telemetries', namespaced: true, feeds: 'config' },
  { kind: 'Gateway', group: 'gateway.networking.k8s.io', versions: ['v1', 'v1beta1'], plural: 'gateways', namespaced: true, feeds: 'config' },
  { kind: 'HTTPRoute', group: 'gateway.networking.k8s.io', versions: ['v1', 'v1beta1'], plural: 'httproutes', namespaced: true, feeds: 'config' },
  { kind: 'GRPCRoute', group: 'gateway.networking.k8s.io', versions: ['v1', 'v1alpha2'], plural: 'grpcroutes', namespaced: true, feeds: 'config' },
  { kind: 'TCPRoute', group: 'gateway.networking.k8s.io', versions: ['v1alpha2'], plural: 'tcproutes', namespaced: true, feeds: 'config' },
  { kind: 'ReferenceGrant', group: 'gateway.networking.k8s.io', versions: ['v1beta1', 'v1alpha2'], plural: 'referencegrants', namespaced: true, feeds: 'config' },
  { kind: 'ServiceEntry', group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'], plural: 'serviceentries', namespaced: true, feeds: 'config' },
  { kind: 'DestinationRule', group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'], plural: 'destinationrules', namespaced: true, feeds: 'config' },
  // TLS material for ingress listeners (certificateRefs) and egress origination (credentialName);
  // proxies receive only the Secrets they use (controlplane/secret-scope.ts).
  { kind: 'Secret', group: '', versions: ['v1'], plural: 'secrets', namespaced: true, feeds: 'config' },
  // Istio's mesh config: the ConfigMap `istio` of the root namespace (key `mesh`), and no other.
  { kind: 'ConfigMap', group: '', versions: ['v1'], plural: 'configmaps', namespaced: true, feeds: 'config', namespace: 'root', fieldSelector: 'metadata.name=istio' },
  // What the control plane makes for waypoints (their Services are among all Services above).
  { kind: 'Deployment', group: 'apps', versions: ['v1'], plural: 'deployments', namespaced: true, feeds: 'owned', labelSelector: 'gateway.networking.k8s.io/gateway-name' },
  { kind: 'ServiceAccount', group: '', versions: ['v1'], plural: 'serviceaccounts', namespaced: true, feeds: 'owned', labelSelector: 'gateway.networking.k8s.io/gateway-name' },
];

export function apiVersionOf(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

/** The collection's path, e.g. `/api/v1/pods`, `/apis/security.istio.io/v1/authorizationpolicies`. */
export function collectionPath(k: WatchedKind, version: string, namespace?: string): string {
  const base = k.group ? `/apis/${k.group}/${version}` : `/api/${version}`;
  return namespace ? `${base}/namespaces/${namespace}/${k.plural}` : `${base}/${k.plural}`;
}

/** The first of our versions that the server serves, or undefined. */
export function chooseVersion(ours: readonly string[], served: readonly string[]): string | undefined {
  return ours.find((v) => served.includes(v));
}
