// Ambit's MeshSettings resource type on the ADS stream: what a ztunnel needs beyond the
// workload API (Istio's ztunnel reads no mesh config; Ambit's enforces REGISTRY_ONLY and
// ServiceEntry exportTo in its DNS proxy, so it is told).
//
// Invariants:
// - There is one resource, named MESH_SETTINGS_NAME; a client without it uses DEFAULT_MESH_SETTINGS.
// - Decoding checks every field's type and value; anything else is a decode error (NACK) and
//   the last good settings stay.
import { parseCidr } from '../core/ip.js';
import { XdsDecodeError } from './codec.js';
import { workloadRoot } from './protos.js';
import type { ResourceType } from './ads-client.js';

export const MESH_SETTINGS_TYPE_URL = 'type.googleapis.com/ambit.config.v1.MeshSettings';
export const MESH_SETTINGS_NAME = 'mesh';

export type OutboundTrafficMode = 'ALLOW_ANY' | 'REGISTRY_ONLY';

export interface MeshSettings {
  outboundTrafficPolicy: OutboundTrafficMode;
  /** "ns/hostname" of a Service -> the namespaces that may see it; absent = every namespace. */
  serviceVisibility: Record<string, string[]>;
  /** Address ranges ServiceEntries declare (known destinations under REGISTRY_ONLY). */
  registryCidrs: string[];
}

export const DEFAULT_MESH_SETTINGS: MeshSettings = Object.freeze({ outboundTrafficPolicy: 'ALLOW_ANY', serviceVisibility: {}, registryCidrs: [] });

function type() {
  return workloadRoot().lookupType('ambit.config.v1.MeshSettings');
}

export function meshSettingsResource(s: MeshSettings): { name: string; body: Buffer } {
  const t = type();
  const bytes = t.encode(t.create({ json: JSON.stringify(s) })).finish();
  return { name: MESH_SETTINGS_NAME, body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

export function decodeMeshSettings(bytes: Uint8Array, name: string): MeshSettings {
  if (name !== MESH_SETTINGS_NAME) throw new XdsDecodeError('mesh', `resource is named '${name}', expected '${MESH_SETTINGS_NAME}'`);
  let json: string;
  try {
    json = (type().decode(bytes) as unknown as { json: string }).json;
  } catch (e: unknown) {
    throw new XdsDecodeError('mesh', `not a MeshSettings: ${e instanceof Error ? e.message : String(e)}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new XdsDecodeError('mesh.json', 'not JSON');
  }
  const o = v as Partial<MeshSettings> | null;
  if (!o || typeof o !== 'object') throw new XdsDecodeError('mesh.json', 'not an object');
  if (o.outboundTrafficPolicy !== 'ALLOW_ANY' && o.outboundTrafficPolicy !== 'REGISTRY_ONLY') throw new XdsDecodeError('mesh.outboundTrafficPolicy', `"${String(o.outboundTrafficPolicy)}" is not ALLOW_ANY or REGISTRY_ONLY`);
  const vis = o.serviceVisibility ?? {};
  if (typeof vis !== 'object' || Array.isArray(vis) || Object.values(vis).some((l) => !Array.isArray(l) || l.some((x) => typeof x !== 'string'))) {
    throw new XdsDecodeError('mesh.serviceVisibility', 'must map "ns/host" to lists of namespaces');
  }
  const cidrs = o.registryCidrs ?? [];
  if (!Array.isArray(cidrs) || cidrs.some((c) => typeof c !== 'string' || !parseCidr(c))) throw new XdsDecodeError('mesh.registryCidrs', 'must be a list of CIDRs');
  return { outboundTrafficPolicy: o.outboundTrafficPolicy, serviceVisibility: vis, registryCidrs: cidrs };
}

export const meshSettingsType: ResourceType<MeshSettings> = { typeUrl: MESH_SETTINGS_TYPE_URL, decode: decodeMeshSettings };
