// The resource types the API server stand-in serves: group, versions, plural, scope, and
// whether lists of it carry kind/apiVersion on each item (a built-in type's list does not;
// a custom resource's list does).

export interface ResourceType {
  group: string;
  versions: string[];
  plural: string;
  kind: string;
  namespaced: boolean;
  builtin: boolean;
  statusSubresource: boolean;
}

const core = (plural: string, kind: string, namespaced = true, statusSubresource = true): ResourceType =>
  ({ group: '', versions: ['v1'], plural, kind, namespaced, builtin: true, statusSubresource });

export const DEFAULT_RESOURCES: ResourceType[] = [
  core('namespaces', 'Namespace', false),
  core('pods', 'Pod'),
  core('services', 'Service'),
  core('serviceaccounts', 'ServiceAccount', true, false),
  core('configmaps', 'ConfigMap', true, false),
  core('secrets', 'Secret', true, false),
  core('events', 'Event', true, false),
  { group: 'discovery.k8s.io', versions: ['v1'], plural: 'endpointslices', kind: 'EndpointSlice', namespaced: true, builtin: true, statusSubresource: false },
  { group: 'apps', versions: ['v1'], plural: 'deployments', kind: 'Deployment', namespaced: true, builtin: true, statusSubresource: true },
  { group: 'apps', versions: ['v1'], plural: 'daemonsets', kind: 'DaemonSet', namespaced: true, builtin: true, statusSubresource: true },
  { group: 'autoscaling', versions: ['v2'], plural: 'horizontalpodautoscalers', kind: 'HorizontalPodAutoscaler', namespaced: true, builtin: true, statusSubresource: true },
  { group: 'policy', versions: ['v1'], plural: 'poddisruptionbudgets', kind: 'PodDisruptionBudget', namespaced: true, builtin: true, statusSubresource: true },
  { group: 'rbac.authorization.k8s.io', versions: ['v1'], plural: 'clusterroles', kind: 'ClusterRole', namespaced: false, builtin: true, statusSubresource: false },
  { group: 'rbac.authorization.k8s.io', versions: ['v1'], plural: 'clusterrolebindings', kind: 'ClusterRoleBinding', namespaced: false, builtin: true, statusSubresource: false },
  { group: 'rbac.authorization.k8s.io', versions: ['v1'], plural: 'roles', kind: 'Role', namespaced: true, builtin: true, statusSubresource: false },
  { group: 'rbac.authorization.k8s.io', versions: ['v1'], plural: 'rolebindings', kind: 'RoleBinding', namespaced: true, builtin: true, statusSubresource: false },
  { group: 'apiextensions.k8s.io', versions: ['v1'], plural: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false, builtin: true, statusSubresource: true },
  { group: 'coordination.k8s.io', versions: ['v1'], plural: 'leases', kind: 'Lease', namespaced: true, builtin: true, statusSubresource: false },
  { group: 'authentication.k8s.io', versions: ['v1'], plural: 'tokenreviews', kind: 'TokenReview', namespaced: false, builtin: true, statusSubresource: false },
  ...['authorizationpolicies:AuthorizationPolicy', 'peerauthentications:PeerAuthentication', 'requestauthentications:RequestAuthentication']
    .map((s) => crd('security.istio.io', ['v1', 'v1beta1'], s)),
  crd('networking.istio.io', ['v1', 'v1beta1', 'v1alpha3'], 'virtualservices:VirtualService'),
  crd('telemetry.istio.io', ['v1', 'v1alpha1'], 'telemetries:Telemetry'),
  crd('gateway.networking.k8s.io', ['v1', 'v1beta1'], 'gateways:Gateway'),
  crd('gateway.networking.k8s.io', ['v1', 'v1beta1'], 'httproutes:HTTPRoute'),
  crd('gateway.networking.k8s.io', ['v1', 'v1beta1'], 'gatewayclasses:GatewayClass', false),
  crd('gateway.networking.k8s.io', ['v1'], 'grpcroutes:GRPCRoute'),
  crd('gateway.networking.k8s.io', ['v1beta1'], 'referencegrants:ReferenceGrant'),
  crd('networking.istio.io', ['v1', 'v1beta1', 'v1alpha3'], 'serviceentries:ServiceEntry'),
  crd('networking.istio.io', ['v1', 'v1beta1', 'v1alpha3'], 'destinationrules:DestinationRule'),
];

function crd(group: string, versions: string[], pk: string, namespaced = true): ResourceType {
  const [plural, kind] = pk.split(':') as [string, string];
  return { group, versions, plural, kind, namespaced, builtin: false, statusSubresource: true };
}

export function apiVersionOf(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}
