// Validation of install objects against the Kubernetes OpenAPI schema of their kind and
// version, offline: kubernetes-models (Kubernetes' OpenAPI compiled to JSON-schema validators,
// one class per kind/version) and @kubernetes-models/gateway-api. And a validator for
// Ambit's CRD schemas (ajv), with the API server's rules: unknown fields refused (kubectl's
// default --validate=strict), x-kubernetes-int-or-string, x-kubernetes-preserve-unknown-fields.
import { Ajv } from 'ajv';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Service } from 'kubernetes-models/v1/Service';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { GatewayClass } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GatewayClass';
import type { WireSchema } from '../../../src/kubernetes/install/crds.js';

type Obj = Record<string, unknown>;
interface Validatable { validate(): void }
type ModelClass = new (data: never) => Validatable;

const MODELS: Record<string, ModelClass> = {
  'v1/Namespace': Namespace, 'v1/ServiceAccount': ServiceAccount, 'v1/Service': Service, 'v1/ConfigMap': ConfigMap,
  'apps/v1/Deployment': Deployment, 'apps/v1/DaemonSet': DaemonSet, 'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole, 'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role, 'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
  'gateway.networking.k8s.io/v1/GatewayClass': GatewayClass,
};

/** Throws with the schema's words when `o` does not match its kind's OpenAPI schema. */
export function validateAgainstKubernetes(o: Obj): void {
  const M = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!M) throw new Error(`no OpenAPI schema here for ${String(o.apiVersion)} ${String(o.kind)}`);
  new M(o as never).validate();
}

/** The API server's view of a CRD schema as a JSON schema for ajv. */
export function toJsonSchema(s: WireSchema): Obj {
  if (s['x-kubernetes-int-or-string']) return { anyOf: [{ type: 'integer' }, { type: 'string' }] };
  if (s['x-kubernetes-preserve-unknown-fields'] && !s.type) return {};
  const out: Obj = {};
  if (s.type) out.type = s.type;
  for (const k of ['enum', 'pattern', 'minLength', 'minimum', 'maximum', 'minItems', 'required'] as const) if (s[k] !== undefined) out[k] = s[k];
  if (s.items) out.items = toJsonSchema(s.items);
  if (s.properties) {
    out.properties = Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, toJsonSchema(v)]));
    if (!s['x-kubernetes-preserve-unknown-fields']) out.additionalProperties = false;
  }
  if (s.additionalProperties) out.additionalProperties = toJsonSchema(s.additionalProperties);
  return out;
}

export function crdValidator(schema: WireSchema): (o: unknown) => { ok: boolean; errors: string } {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const v = ajv.compile(toJsonSchema(schema));
  return (o) => ({ ok: v(o) as boolean, errors: ajv.errorsText(v.errors) });
}

const STRUCTURAL_KEYS = new Set(['type', 'properties', 'required', 'items', 'additionalProperties', 'enum', 'pattern', 'minLength', 'minimum', 'maximum', 'minItems', 'format', 'description', 'x-kubernetes-int-or-string', 'x-kubernetes-preserve-unknown-fields']);

/** The structural-schema rules the API server enforces on a CRD (the ones that apply here). */
export function structuralProblems(s: WireSchema, path = ''): string[] {
  const out: string[] = [];
  for (const k of Object.keys(s)) if (!STRUCTURAL_KEYS.has(k)) out.push(`${path}: unknown key ${k}`);
  if (!s.type && !s['x-kubernetes-int-or-string'] && !s['x-kubernetes-preserve-unknown-fields']) out.push(`${path}: no type`);
  if (s.properties && s.additionalProperties) out.push(`${path}: properties and additionalProperties together`);
  if (s.type === 'array' && !s.items) out.push(`${path}: array without items`);
  for (const [k, v] of Object.entries(s.properties ?? {})) out.push(...structuralProblems(v, `${path}.${k}`));
  if (s.items) out.push(...structuralProblems(s.items, `${path}[]`));
  if (s.additionalProperties) out.push(...structuralProblems(s.additionalProperties, `${path}{}`));
  return out;
}
