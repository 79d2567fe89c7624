// Ambit's own resource type on the ADS stream: a validated config object (HTTPRoute,
// VirtualService, AuthorizationPolicy, RequestAuthentication, Telemetry) that a waypoint compiles itself.
//
// Invariants:
// - The resource name is `<kind>/<namespace>/<name>`; decoding checks it against the content.
// - `json` holds the whole object; decoding parses it and checks kind, namespace and name agree.
import { create, fromBinary, toBinary } from './protobuf-runtime.js';
import { XdsDecodeError } from './codec.js';
import { ConfigResourceSchema, type ConfigResource } from './gen/ambit/config_pb.js';
import type { ResourceType } from './ads-client.js';

export const CONFIG_RESOURCE_TYPE_URL = 'type.googleapis.com/ambit.config.v1.ConfigResource';

export interface ConfigObject {
  apiVersion?: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  spec?: unknown;
  [k: string]: unknown;
}

export function configResourceName(o: ConfigObject): string {
  return `${o.kind}/${o.metadata.namespace ?? 'default'}/${o.metadata.name}`;
}

export function configResource(o: ConfigObject): { name: string; body: Buffer } {
  const msg = create(ConfigResourceSchema, { kind: o.kind, namespace: o.metadata.namespace ?? 'default', name: o.metadata.name, json: JSON.stringify(o) });
  const bytes = toBinary(ConfigResourceSchema, msg);
  return { name: configResourceName(o), body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

export function decodeConfigResource(bytes: Uint8Array, name: string): ConfigObject {
  let m: ConfigResource;
  try {
    m = fromBinary(ConfigResourceSchema, bytes);
  } catch (e: unknown) {
    throw new XdsDecodeError('config', `not a ConfigResource: ${e instanceof Error ? e.message : String(e)}`);
  }
  let o: ConfigObject;
  try {
    o = JSON.parse(m.json) as ConfigObject;
  } catch (e: unknown) {
    throw new XdsDecodeError('config.json', `not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof o !== 'object' || o === null || typeof o.kind !== 'string' || typeof o.metadata?.name !== 'string') {
    throw new XdsDecodeError('config.json', 'the object has no kind or metadata.name');
  }
  if (o.kind !== m.kind || o.metadata.name !== m.name || (o.metadata.namespace ?? 'default') !== m.namespace) {
    throw new XdsDecodeError('config', `the envelope (${m.kind}/${m.namespace}/${m.name}) does not match the object (${configResourceName(o)})`);
  }
  if (configResourceName(o) !== name) throw new XdsDecodeError('config', `resource is named '${name}' but its content is '${configResourceName(o)}'`);
  return o;
}

export const configResourceType: ResourceType<ConfigObject> = { typeUrl: CONFIG_RESOURCE_TYPE_URL, decode: decodeConfigResource };
