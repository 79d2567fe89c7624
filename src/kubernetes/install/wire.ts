// Typed client-library models -> the JSON the API server reads (Dates as RFC 3339, `_enum` as
// `enum`, ...), through the library's own serializer. The package does not export it from its
// index, so it is imported from its module path.
import type * as k8s from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';

/** Model type names the serializer knows, by apiVersion/kind. */
const TYPES: Record<string, string> = {
  'v1/Namespace': 'V1Namespace', 'v1/ServiceAccount': 'V1ServiceAccount', 'v1/Service': 'V1Service', 'v1/ConfigMap': 'V1ConfigMap',
  'apps/v1/Deployment': 'V1Deployment', 'apps/v1/DaemonSet': 'V1DaemonSet', 'policy/v1/PodDisruptionBudget': 'V1PodDisruptionBudget',
  'rbac.authorization.k8s.io/v1/ClusterRole': 'V1ClusterRole', 'rbac.authorization.k8s.io/v1/ClusterRoleBinding': 'V1ClusterRoleBinding',
  'rbac.authorization.k8s.io/v1/Role': 'V1Role', 'rbac.authorization.k8s.io/v1/RoleBinding': 'V1RoleBinding',
  'apiextensions.k8s.io/v1/CustomResourceDefinition': 'V1CustomResourceDefinition',
};

export function modelType(o: k8s.KubernetesObject): string | undefined {
  return TYPES[`${o.apiVersion}/${o.kind}`];
}

export function toWire(o: k8s.KubernetesObject): Record<string, unknown> {
  const type = modelType(o);
  if (!type) return JSON.parse(JSON.stringify(o)) as Record<string, unknown>;
  return ObjectSerializer.serialize(o, type) as Record<string, unknown>;
}

/** Wire JSON -> typed model -> wire JSON: a field the model does not know is dropped. */
export function roundTrip(wire: Record<string, unknown>, type: string): Record<string, unknown> {
  return ObjectSerializer.serialize(ObjectSerializer.deserialize(wire, type), type) as Record<string, unknown>;
}
