// The ADS server's responses, encoded the way a fan-out wants them.
//
// The server sends the same resource to every client, so it encodes each
// envoy.service.discovery.v3.Resource once per version (encodeResource, the generated
// message) and a response is those bytes put side by side with a few scalar fields
// (encodeDeltaResponse, with the protobuf library's writer and the field numbers of the
// generated schema). A protobuf decoder reads it as the DeltaDiscoveryResponse it is: the
// direct tests decode it with proto-loader, an implementation of its own.
//
// Invariants: fields are written in field-number order and default values are left out, as
// the generated encoder writes a whole DeltaDiscoveryResponse (same bytes either way).
import { create, toBinary } from './protobuf-runtime.js';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { DeltaDiscoveryResponseSchema, ResourceSchema } from './gen/envoy/service/discovery/v3/discovery_pb.js';

const F = DeltaDiscoveryResponseSchema.field;

/** Bytes of a Resource{name, version, resource: Any{type_url, value}}. */
export function encodeResource(name: string, version: string, typeUrl: string, value: Uint8Array): Buffer {
  const bytes = toBinary(ResourceSchema, create(ResourceSchema, { name, version, resource: { typeUrl, value } }));
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export interface DeltaResponseParts {
  systemVersionInfo: string;
  typeUrl: string;
  nonce: string;
  /** Pre-encoded Resource messages (encodeResource). */
  resources: readonly Uint8Array[];
  removedResources: readonly string[];
}

/** Bytes of a DeltaDiscoveryResponse. */
export function encodeDeltaResponse(p: DeltaResponseParts): Buffer {
  const w = new BinaryWriter();
  const text = (no: number, v: string): void => { if (v) w.tag(no, WireType.LengthDelimited).string(v); };
  text(F.systemVersionInfo.number, p.systemVersionInfo);
  for (const r of p.resources) w.tag(F.resources.number, WireType.LengthDelimited).bytes(r);
  text(F.typeUrl.number, p.typeUrl);
  text(F.nonce.number, p.nonce);
  for (const r of p.removedResources) w.tag(F.removedResources.number, WireType.LengthDelimited).string(r);
  const bytes = w.finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
