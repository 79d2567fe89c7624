// The ZDS messages (proto/istio/zds.proto): what the node agent and the ztunnel say to each
// other about pods. Encoding and decoding only; the transport is sys/seqpacket.ts.
//
// Invariants:
//  - Decoders take hostile bytes: they never throw, and answer a discriminated union whose
//    error says what is wrong (bad protobuf, no payload, a field out of bounds). Bounds: uid
//    and names at most 1024 bytes, at most 8 listener ports, each 1..65535, at most 16
//    feature strings of 64 bytes.
//  - protobufjs is loaded on first use (the ztunnel's memory: see xds/protos.ts).
import type protobuf from 'protobufjs';
import { loadRoot, protoDir } from './protos.js';

export const ZDS_VERSION_V1 = 1;
/** Ambit's ZDS extension: AddWorkload carries the pod's listening sockets after its netns fd. */
export const FEATURE_LISTENER_HANDOFF = 'listener-handoff';
export const MAX_LISTENER_PORTS = 8;
const MAX_STRING = 1024;
const MAX_FEATURES = 16;

export interface WorkloadInfo {
  name: string;
  namespace: string;
  serviceAccount: string;
}

export type WorkloadRequest =
  | { kind: 'add'; uid: string; info: WorkloadInfo | undefined; listenerPorts: number[] }
  | { kind: 'keep'; uid: string }
  | { kind: 'del'; uid: string }
  | { kind: 'snapshot_sent' };

export interface ZdsHello {
  version: number;
  features: string[];
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

interface Types {
  hello: protobuf.Type;
  request: protobuf.Type;
  response: protobuf.Type;
}

let types: Types | undefined;

function zdsTypes(): Types {
  if (!types) {
    const root = loadRoot(protoDir(), ['istio/zds.proto'], 'ZDS');
    types = {
      hello: root.lookupType('istio.workload.zds.ZdsHello'),
      request: root.lookupType('istio.workload.zds.WorkloadRequest'),
      response: root.lookupType('istio.workload.zds.WorkloadResponse'),
    };
  }
  return types;
}

const OBJECT_OPTIONS = { longs: Number, enums: Number, defaults: true, arrays: true, oneofs: true } as const;

function encode(type: protobuf.Type, value: Record<string, unknown>): Buffer {
  return Buffer.from(type.encode(type.fromObject(value)).finish());
}

function decode(type: protobuf.Type, bytes: Uint8Array): Decoded<Record<string, unknown>> {
  try {
    return { ok: true, value: type.toObject(type.decode(bytes), OBJECT_OPTIONS) as Record<string, unknown> };
  } catch (e: unknown) {
    return { ok: false, error: `not a valid ${type.name}: ${e instanceof Error ? e.message : String(e)}` };
  }
}

function boundedString(v: unknown, what: string, required: boolean): string | { error: string } {
  if (typeof v !== 'string') return { error: `${what} is not a string` };
  if (required && v === '') return { error: `${what} is empty` };
  if (Buffer.byteLength(v) > MAX_STRING) return { error: `${what} is longer than ${MAX_STRING} bytes` };
  return v;
}

// ---------------------------------------------------------------------------------------
// ZdsHello (ztunnel -> agent)

export function encodeHello(hello: ZdsHello): Buffer {
  return encode(zdsTypes().hello, { version: hello.version, ambitFeatures: hello.features });
}

export function decodeHello(bytes: Uint8Array): Decoded<ZdsHello> {
  const d = decode(zdsTypes().hello, bytes);
  if (!d.ok) return d;
  const version = d.value.version as number;
  const features = (d.value.ambitFeatures as unknown[]) ?? [];
  if (features.length > MAX_FEATURES) return { ok: false, error: `more than ${MAX_FEATURES} features` };
  if (features.some((f) => typeof f !== 'string' || f.length > 64)) return { ok: false, error: 'a feature is not a short string' };
  return { ok: true, value: { version, features: features as string[] } };
}

// ---------------------------------------------------------------------------------------
// WorkloadRequest (agent -> ztunnel)

export function encodeRequest(r: WorkloadRequest): Buffer {
  switch (r.kind) {
    case 'add':
      return encode(zdsTypes().request, {
        add: {
          uid: r.uid,
          workloadInfo: r.info ? { name: r.info.name, namespace: r.info.namespace, serviceAccount: r.info.serviceAccount } : undefined,
          ambitListenerPorts: r.listenerPorts,
        },
      });
    case 'keep':
      return encode(zdsTypes().request, { keep: { uid: r.uid } });
    case 'del':
      return encode(zdsTypes().request, { del: { uid: r.uid } });
    case 'snapshot_sent':
      return encode(zdsTypes().request, { snapshotSent: {} });
  }
}

export function decodeRequest(bytes: Uint8Array): Decoded<WorkloadRequest> {
  const d = decode(zdsTypes().request, bytes);
  if (!d.ok) return d;
  const v = d.value;
  switch (v.payload) {
    case 'add': {
      const a = v.add as { uid: unknown; workloadInfo?: Record<string, unknown> | null; ambitListenerPorts: unknown[] };
      const uid = boundedString(a.uid, 'add.uid', true);
      if (typeof uid !== 'string') return { ok: false, error: uid.error };
      let info: WorkloadInfo | undefined;
      if (a.workloadInfo) {
        const name = boundedString(a.workloadInfo.name, 'add.workload_info.name', false);
        const namespace = boundedString(a.workloadInfo.namespace, 'add.workload_info.namespace', false);
        const sa = boundedString(a.workloadInfo.serviceAccount, 'add.workload_info.service_account', false);
        for (const x of [name, namespace, sa]) if (typeof x !== 'string') return { ok: false, error: x.error };
        info = { name: name as string, namespace: namespace as string, serviceAccount: sa as string };
      }
      const ports = a.ambitListenerPorts ?? [];
      if (ports.length > MAX_LISTENER_PORTS) return { ok: false, error: `more than ${MAX_LISTENER_PORTS} listener ports` };
      if (ports.some((p) => typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535)) return { ok: false, error: 'a listener port is not in 1..65535' };
      if (new Set(ports).size !== ports.length) return { ok: false, error: 'a listener port is listed twice' };
      return { ok: true, value: { kind: 'add', uid, info, listenerPorts: ports as number[] } };
    }
    case 'keep':
    case 'del': {
      const uid = boundedString((v[v.payload] as { uid: unknown }).uid, `${v.payload}.uid`, true);
      if (typeof uid !== 'string') return { ok: false, error: uid.error };
      return { ok: true, value: { kind: v.payload, uid } };
    }
    case 'snapshotSent':
      return { ok: true, value: { kind: 'snapshot_sent' } };
    default:
      return { ok: false, error: 'the request has no payload (add, keep, del or snapshot_sent)' };
  }
}

// ---------------------------------------------------------------------------------------
// WorkloadResponse (ztunnel -> agent): an Ack, whose non-empty error is a refusal

export function encodeAck(error = ''): Buffer {
  // proto3 leaves a default value off the wire, as Istio's encoders do: "accepted" is `0a 00`.
  return encode(zdsTypes().response, { ack: error ? { error } : {} });
}

export function decodeAck(bytes: Uint8Array): Decoded<{ error: string }> {
  const d = decode(zdsTypes().response, bytes);
  if (!d.ok) return d;
  if (d.value.payload !== 'ack') return { ok: false, error: 'the response has no ack' };
  const error = boundedString((d.value.ack as { error: unknown }).error, 'ack.error', false);
  if (typeof error !== 'string') return { ok: false, error: error.error };
  return { ok: true, value: { error } };
}
