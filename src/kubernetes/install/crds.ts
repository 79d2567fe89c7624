// CustomResourceDefinitions for the Istio kinds Ambit serves, generated from Ambit's own
// schemas (config/kinds.ts): one source of truth for `ambit validate` and the API server's
// OpenAPI validation.
//
// Invariants:
// - The schema is structural (every node has a type, or x-kubernetes-int-or-string, or
//   x-kubernetes-preserve-unknown-fields where Ambit accepts anything).
// - Every apiVersion Ambit accepts for a kind is served, with the same schema; the first (v1)
//   is stored. Status is a subresource (the control plane writes conditions there).
// - The envelope is the client library's typed model; the schema is emitted in wire form,
//   because the library types `items` and `additionalProperties` as `any` and would not
//   rename nested fields (`_enum` -> `enum`) on serialization.
import type * as k8s from '@kubernetes/client-node';
import { toWire } from './wire.js';
import { kindInfo } from '../../config/kinds.js';
import type { Schema } from '../../config/schema.js';
import { WATCHED_KINDS } from '../watched-kinds.js';

/** An OpenAPI v3 schema node as the API server reads it. */
export interface WireSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'boolean';
  properties?: Record<string, WireSchema>;
  required?: string[];
  items?: WireSchema;
  additionalProperties?: WireSchema;
  enum?: string[];
  pattern?: string;
  minLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  format?: string;
  description?: string;
  'x-kubernetes-int-or-string'?: true;
  'x-kubernetes-preserve-unknown-fields'?: true;
}

export const CRD_KINDS = ['AuthorizationPolicy', 'PeerAuthentication', 'RequestAuthentication', 'VirtualService', 'Telemetry', 'ServiceEntry', 'DestinationRule'] as const;

export function toOpenApi(s: Schema): WireSchema {
  switch (s.t) {
    case 'string': {
      const o: WireSchema = { type: 'string' };
      if (s.enum) o.enum = [...s.enum];
      if (s.pattern) o.pattern = s.pattern.source;
      if (s.nonEmpty) o.minLength = 1;
      return o;
    }
    case 'int': {
      const o: WireSchema = { type: 'integer', format: 'int64' };
      if (s.min !== undefined) o.minimum = s.min;
      if (s.max !== undefined) o.maximum = s.max;
      return o;
    }
    case 'bool': return { type: 'boolean' };
    case 'intOrString': return { 'x-kubernetes-int-or-string': true };
    case 'any': return { 'x-kubernetes-preserve-unknown-fields': true };
    case 'array': {
      const o: WireSchema = { type: 'array', items: toOpenApi(s.items) };
      if (s.minItems !== undefined) o.minItems = s.minItems;
      return o;
    }
    case 'map': return { type: 'object', additionalProperties: toOpenApi(s.values) };
    case 'object': {
      const o: WireSchema = { type: 'object', properties: Object.fromEntries(Object.entries(s.fields).map(([k, v]) => [k, toOpenApi(v)])) };
      if (s.required?.length) o.required = [...s.required];
      return o;
    }
  }
}

/** The schema of a whole object of `kind`: spec from Ambit's schema, status open. */
export function objectSchema(kind: string): WireSchema {
  const info = kindInfo(kind);
  if (!info || info.schema.t !== 'object') throw new Error(`no schema for ${kind}`);
  const spec = info.schema.fields.spec;
  const required = (info.schema.required ?? []).includes('spec') ? ['spec'] : undefined;
  return {
    type: 'object',
    properties: {
      apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' },
      ...(spec ? { spec: toOpenApi(spec) } : {}),
      status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    },
    ...(required ? { required } : {}),
  };
}

/** The CRD for one kind, as wire JSON (keys in the typed model's order). */
export function crdFor(kind: (typeof CRD_KINDS)[number], labels: Record<string, string>): Record<string, unknown> {
  const info = kindInfo(kind)!;
  const watched = WATCHED_KINDS.find((w) => w.kind === kind)!;
  const group = watched.group;
  const versions = info.apiVersions.map((v) => v.split('/')[1]!);
  const typed: k8s.V1CustomResourceDefinition = {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
    metadata: { name: `${watched.plural}.${group}`, labels: { ...labels } },
    spec: {
      group,
      names: { kind, listKind: `${kind}List`, plural: watched.plural, singular: kind.toLowerCase(), categories: ['istio-io', group.replace(/\./g, '-')] },
      scope: 'Namespaced',
      versions: versions.map((name, i) => ({ name, served: true, storage: i === 0, subresources: { status: {} } })),
    },
  };
  const wire = toWire(typed) as { spec: { versions: Record<string, unknown>[] } };
  const schema = objectSchema(kind);
  for (const v of wire.spec.versions) v.schema = { openAPIV3Schema: schema };
  return wire as unknown as Record<string, unknown>;
}
