// The ZDS messages (proto/istio/zds.proto): what the node agent and the ztunnel say to each
// other about pods. Encoding and decoding only; the transport is sys/seqpacket.ts.
//
// Invariants:
//  - Decoders take hostile bytes: they never throw, and answer a discriminated union whose
//    error says what is wrong (bad protobuf, no payload, a field out of bounds). Bounds: uid
//    and names at most 1024 bytes, at most 8 listener ports, each 1..65535, at most 16
//    feature strings of 64 bytes.
//  - Encoded and decoded with the code generated from proto/ (src/xds/gen, npm run proto).
import { create, fromBinary, toBinary } from './protobuf-runtime.js';
import {
  AckSchema, AddWorkloadSchema, DelWorkloadSchema, KeepWorkloadSchema, SnapshotSentSchema, WorkloadRequestSchema, WorkloadResponseSchema, ZdsHelloSchema,
  type WorkloadRequest as PbRequest,
} from './gen/istio/zds_pb.js';

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

/** fromBinary never throws here: hostile bytes are an error value. */
function decode<T>(what: string, f: () => T): Decoded<T> {
  try {
    return { ok: true, value: f() };
  } catch (e: unknown) {
    return { ok: false, error: `not a valid ${what}: ${e instanceof Error ? e.message : String(e)}` };
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
  return Buffer.from(toBinary(ZdsHelloSchema, create(ZdsHelloSchema, { version: hello.version, ambitFeatures: hello.features })));
}

export function decodeHello(bytes: Uint8Array): Decoded<ZdsHello> {
  const d = decode('ZdsHello', () => fromBinary(ZdsHelloSchema, bytes));
  if (!d.ok) return d;
  const features = d.value.ambitFeatures;
  if (features.length > MAX_FEATURES) return { ok: false, error: `more than ${MAX_FEATURES} features` };
  if (features.some((f) => f.length > 64)) return { ok: false, error: 'a feature is not a short string' };
  return { ok: true, value: { version: d.value.version, features } };
}

// ---------------------------------------------------------------------------------------
// WorkloadRequest (agent -> ztunnel)

export function encodeRequest(r: WorkloadRequest): Buffer {
  let payload: PbRequest['payload'];
  switch (r.kind) {
    case 'add':
      payload = { case: 'add', value: create(AddWorkloadSchema, { uid: r.uid, workloadInfo: r.info ? { name: r.info.name, namespace: r.info.namespace, serviceAccount: r.info.serviceAccount } : undefined, ambitListenerPorts: r.listenerPorts }) };
      break;
    case 'keep':
      payload = { case: 'keep', value: create(KeepWorkloadSchema, { uid: r.uid }) };
      break;
    case 'del':
      payload = { case: 'del', value: create(DelWorkloadSchema, { uid: r.uid }) };
      break;
    case 'snapshot_sent':
      payload = { case: 'snapshotSent', value: create(SnapshotSentSchema, {}) };
      break;
  }
  return Buffer.from(toBinary(WorkloadRequestSchema, create(WorkloadRequestSchema, { payload })));
}

export function decodeRequest(bytes: Uint8Array): Decoded<WorkloadRequest> {
  const d = decode('WorkloadRequest', () => fromBinary(WorkloadRequestSchema, bytes));
  if (!d.ok) return d;
  const p = d.value.payload;
  switch (p.case) {
    case 'add': {
      const a = p.value;
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
      const ports = a.ambitListenerPorts;
      if (ports.length > MAX_LISTENER_PORTS) return { ok: false, error: `more than ${MAX_LISTENER_PORTS} listener ports` };
      if (ports.some((port) => !Number.isInteger(port) || port < 1 || port > 65535)) return { ok: false, error: 'a listener port is not in 1..65535' };
      if (new Set(ports).size !== ports.length) return { ok: false, error: 'a listener port is listed twice' };
      return { ok: true, value: { kind: 'add', uid, info, listenerPorts: [...ports] } };
    }
    case 'keep':
    case 'del': {
      const uid = boundedString(p.value.uid, `${p.case}.uid`, true);
      if (typeof uid !== 'string') return { ok: false, error: uid.error };
      return { ok: true, value: { kind: p.case, uid } };
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
  return Buffer.from(toBinary(WorkloadResponseSchema, create(WorkloadResponseSchema, { payload: { case: 'ack', value: create(AckSchema, { error }) } })));
}

export function decodeAck(bytes: Uint8Array): Decoded<{ error: string }> {
  const d = decode('WorkloadResponse', () => fromBinary(WorkloadResponseSchema, bytes));
  if (!d.ok) return d;
  if (d.value.payload.case !== 'ack') return { ok: false, error: 'the response has no ack' };
  const error = boundedString(d.value.payload.value.error, 'ack.error', false);
  if (typeof error !== 'string') return { ok: false, error: error.error };
  return { ok: true, value: { error } };
}
