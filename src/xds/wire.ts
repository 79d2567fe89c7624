// Hand-written protobuf encoding of the ADS server's responses.
//
// Why not proto-loader's serializer: the server sends the same resource to every client, so it
// encodes each envoy.service.discovery.v3.Resource once per version (encodeResource) and a
// response is only the concatenation of those bytes plus a few scalar fields
// (encodeDeltaResponse). Clients decode with proto-loader from the .proto files, which is what
// keeps this file honest (the direct tests do exactly that).
//
// Field numbers (proto/envoy/service/discovery/v3/discovery.proto):
//   Resource:               version=1 string, resource=2 Any, name=3 string
//   Any:                    type_url=1 string, value=2 bytes
//   DeltaDiscoveryResponse: system_version_info=1, resources=2 (Resource), type_url=4,
//                           nonce=5, removed_resources=6

const WIRE_LEN = 2;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

class Writer {
  readonly buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }
  bytesField(field: number, data: Uint8Array): void {
    this.varint((field << 3) | WIRE_LEN);
    this.varint(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }
}

function fieldSize(field: number, len: number): number {
  return varintSize((field << 3) | WIRE_LEN) + varintSize(len) + len;
}

/** Bytes of a Resource{name, version, resource: Any{type_url, value}}. */
export function encodeResource(name: string, version: string, typeUrl: string, value: Uint8Array): Buffer {
  const nameB = Buffer.from(name, 'utf8');
  const versionB = Buffer.from(version, 'utf8');
  const typeB = Buffer.from(typeUrl, 'utf8');
  const anyLen = fieldSize(1, typeB.length) + (value.length ? fieldSize(2, value.length) : 0);
  const total = (versionB.length ? fieldSize(1, versionB.length) : 0) + fieldSize(2, anyLen) + (nameB.length ? fieldSize(3, nameB.length) : 0);
  const w = new Writer(total);
  if (versionB.length) w.bytesField(1, versionB);
  w.varint((2 << 3) | WIRE_LEN);
  w.varint(anyLen);
  w.bytesField(1, typeB);
  if (value.length) w.bytesField(2, value);
  if (nameB.length) w.bytesField(3, nameB);
  return w.buf;
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
  const sys = Buffer.from(p.systemVersionInfo, 'utf8');
  const type = Buffer.from(p.typeUrl, 'utf8');
  const nonce = Buffer.from(p.nonce, 'utf8');
  const removed = p.removedResources.map((r) => Buffer.from(r, 'utf8'));
  let total = 0;
  if (sys.length) total += fieldSize(1, sys.length);
  for (const r of p.resources) total += fieldSize(2, r.length);
  if (type.length) total += fieldSize(4, type.length);
  if (nonce.length) total += fieldSize(5, nonce.length);
  for (const r of removed) total += fieldSize(6, r.length);
  const w = new Writer(total);
  if (sys.length) w.bytesField(1, sys);
  for (const r of p.resources) w.bytesField(2, r);
  if (type.length) w.bytesField(4, type);
  if (nonce.length) w.bytesField(5, nonce);
  for (const r of removed) w.bytesField(6, r);
  return w.buf;
}
