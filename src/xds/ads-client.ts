// A delta ADS client: subscribes (wildcard) to the given type URLs over
// AggregatedDiscoveryService/DeltaAggregatedResources, decodes and keeps the resources, ACKs
// or NACKs every response, and reconnects with backoff, resuming where it was.
//
// Invariants:
// - Every response is answered exactly once, after it is applied and `update` listeners ran:
//   an ACK (response_nonce), or a NACK (response_nonce + error_detail INVALID_ARGUMENT) when any
//   resource in it could not be decoded. A NACK names each bad resource and its reason; the
//   good resources of the same response are applied all the same, and each bad one keeps its
//   previous version (if any).
// - Resources are kept while disconnected; a new stream's first request per type carries
//   initial_resource_versions = the versions held, so the server sends only the difference.
//   A resource is dropped only when a response lists it in removed_resources.
// - Reconnect delay after the n-th consecutive failure: d = min(maxMs, initialMs * 2^(n-1)),
//   waited as d/2 + random * d/2 (equal jitter). The count resets once a stream delivered a
//   response. Each attempt opens a fresh channel (grpc-lite.ts, one HTTP/2 session): the delay
//   is ours alone; there is no hidden transport-level reconnect backoff.
// - The proxies load no grpc-js and no proto-loader: the stream is a grpc-lite call and its
//   messages are (de)serialized by protobufjs into the same shapes proto-loader gives.
// - State: idle -> connecting -> connected (the server accepted the stream: response headers)
//   -> disconnected (waiting to retry) -> connecting ... ; closed after close(). Listeners of
//   `update` and `state` that throw are logged and do not break the client.
import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import type { Logger, Tracer } from '../core/logger.js';
import type { DeltaRequestOut, DeltaResponse } from './ads-types.js';
import type { ClientTlsOptions, TokenSource } from './credentials.js';
import { holdsWholePush } from './push-version.js';
import { bearerMetadata, GrpcCode, grpcStatusName, GrpcLiteChannel, type GrpcCallError, type GrpcLiteStream, type GrpcStatus } from './grpc-lite.js';
import { ADS_DELTA_PATH, serviceMessageCodec, type MessageCodec } from './protos.js';
import { toStruct, type JsonObject } from './struct.js';

/** How to decode one type URL's resources; decode throws (with a reason) to reject a resource. */
export interface ResourceType<T> {
  typeUrl: string;
  decode(body: Buffer, name: string): T;
}

export interface ClientResource<T> {
  name: string;
  version: string;
  value: T;
}

export interface RejectedResource {
  name: string;
  reason: string;
}

export interface AdsUpdate {
  typeUrl: string;
  upserted: ClientResource<unknown>[];
  removed: string[];
  rejected: RejectedResource[];
  nonce: string;
  /** True for the first response of this type since start(): the client now has the server's state. */
  initial: boolean;
}

export type AdsConnectionState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface AdsStateEvent {
  state: AdsConnectionState;
  /** Consecutive failed attempts so far. */
  attempt: number;
  error?: { code: string; message: string };
  retryInMs?: number;
}

export interface AdsClientOptions {
  /** `host:port` of the control plane. */
  address: string;
  node: { id: string; cluster?: string; metadata?: JsonObject; userAgentName?: string };
  types: ResourceType<unknown>[];
  /** Bearer token for `authorization: Bearer ...`; asked again on every reconnect. */
  token?: TokenSource;
  /** Absent: plaintext. */
  tls?: ClientTlsOptions;
  logger: Logger;
  clock?: Clock;
  /** Jitter source in [0, 1); default Math.random. */
  random?: () => number;
  backoff?: { initialMs?: number; maxMs?: number };
  /** Honoured: grpc.max_receive_message_length, grpc.default_authority; the rest is ignored. */
  channelOptions?: grpc.ChannelOptions;
}

export interface AdsClientTypeStatus {
  typeUrl: string;
  resources: number;
  synced: boolean;
  responses: number;
  acks: number;
  nacks: number;
  lastNonce: string;
  /** system_version_info of the last response (the push it belongs to). */
  version: string;
  lastNack?: { nonce: string; at: string; message: string };
}

export interface AdsClientStatus {
  state: AdsConnectionState;
  attempt: number;
  connectedSince?: string;
  lastError?: { code: string; message: string; at: string };
  types: AdsClientTypeStatus[];
}

interface TypeState {
  spec: ResourceType<unknown>;
  resources: Map<string, ClientResource<unknown>>;
  synced: boolean;
  responses: number;
  acks: number;
  nacks: number;
  lastNonce: string;
  lastVersion: string;
  lastNack?: { nonce: string; atMs: number; message: string };
}

interface Stream {
  client: GrpcLiteChannel;
  call: GrpcLiteStream;
  gotResponse: boolean;
  ended: boolean;
}

export interface AdsClientEvents {
  update: [AdsUpdate];
  state: [AdsStateEvent];
}

const INVALID_ARGUMENT = 3;

export class AdsClient {
  private readonly options: AdsClientOptions;
  private readonly log: Logger;
  private readonly trace: Tracer;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly types = new Map<string, TypeState>();
  private readonly events = new EventEmitter();
  private stream: Stream | undefined;
  private timer: TimerHandle | undefined;
  private currentState: AdsConnectionState = 'idle';
  private attempt = 0;
  private connectedSinceMs: number | undefined;
  private lastError: { code: string; message: string; atMs: number } | undefined;
  private closed = false;
  private readonly syncWaiters: (() => void)[] = [];
  private codecs: { request: MessageCodec<DeltaRequestOut, unknown>; response: MessageCodec<unknown, DeltaResponse> } | undefined;

  constructor(options: AdsClientOptions) {
    this.options = options;
    this.log = options.logger.child({ part: 'ads-client', node: options.node.id });
    this.trace = options.logger.tracer('xds');
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.initialMs = options.backoff?.initialMs ?? 500;
    this.maxMs = options.backoff?.maxMs ?? 30_000;
    for (const spec of options.types) {
      this.types.set(spec.typeUrl, { spec, resources: new Map(), synced: false, responses: 0, acks: 0, nacks: 0, lastNonce: '', lastVersion: '' });
    }
  }

  get state(): AdsConnectionState {
    return this.currentState;
  }

  on<E extends keyof AdsClientEvents>(event: E, listener: (...args: AdsClientEvents[E]) => void): () => void {
    const l = listener as (...args: unknown[]) => void;
    this.events.on(event, l);
    return () => this.events.off(event, l);
  }

  start(): void {
    if (this.closed || this.stream || this.timer) return;
    void this.connect();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    const s = this.stream;
    this.stream = undefined;
    if (s) {
      s.ended = true;
      s.call.cancel();
      s.client.close();
    }
    this.setState({ state: 'closed', attempt: this.attempt });
  }

  /** The resources held for a type (kept across reconnects). */
  resources<T>(type: ResourceType<T>): ReadonlyMap<string, ClientResource<T>> {
    const t = this.types.get(type.typeUrl);
    return (t?.resources ?? new Map()) as ReadonlyMap<string, ClientResource<T>>;
  }

  /** Resolves once every type has received its first response. */
  waitForSync(): Promise<void> {
    if (this.allSynced()) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  status(): AdsClientStatus {
    const iso = (ms: number): string => new Date(ms).toISOString();
    return {
      state: this.currentState,
      attempt: this.attempt,
      ...(this.connectedSinceMs !== undefined ? { connectedSince: iso(this.connectedSinceMs) } : {}),
      ...(this.lastError ? { lastError: { code: this.lastError.code, message: this.lastError.message, at: iso(this.lastError.atMs) } } : {}),
      types: [...this.types.values()].map((t) => ({
        typeUrl: t.spec.typeUrl,
        resources: t.resources.size,
        synced: t.synced,
        responses: t.responses,
        acks: t.acks,
        nacks: t.nacks,
        lastNonce: t.lastNonce,
        version: t.lastVersion,
        ...(t.lastNack ? { lastNack: { nonce: t.lastNack.nonce, at: iso(t.lastNack.atMs), message: t.lastNack.message } } : {}),
      })),
    };
  }

  // ------------------------------------------------------------ connection

  private setState(e: AdsStateEvent): void {
    this.currentState = e.state;
    try {
      this.events.emit('state', e);
    } catch (err: unknown) {
      this.log.error('state listener threw', { error: err });
    }
  }

  private async connect(): Promise<void> {
    this.timer = undefined;
    if (this.closed) return;
    this.setState({ state: 'connecting', attempt: this.attempt });
    let metadata: Record<string, string>;
    try {
      metadata = await bearerMetadata(this.options.token);
    } catch (e: unknown) {
      this.retry({ code: 'TOKEN', message: `cannot get a token: ${e instanceof Error ? e.message : String(e)}` }, false);
      return;
    }
    if (this.closed) return;
    this.codecs ??= {
      request: serviceMessageCodec<DeltaRequestOut, unknown>('envoy.service.discovery.v3.DeltaDiscoveryRequest'),
      response: serviceMessageCodec<unknown, DeltaResponse>('envoy.service.discovery.v3.DeltaDiscoveryResponse'),
    };
    const codecs = this.codecs;
    const extra = this.options.channelOptions ?? {};
    const maxReceive = extra['grpc.max_receive_message_length'];
    const authority = extra['grpc.default_authority'];
    const client = new GrpcLiteChannel({
      address: this.options.address,
      ...(this.options.tls ? { tls: this.options.tls } : {}),
      ...(typeof maxReceive === 'number' && maxReceive >= 0 ? { maxReceiveMessageBytes: maxReceive } : {}),
      ...(typeof authority === 'string' ? { authority } : {}),
    });
    const call = client.call(ADS_DELTA_PATH, metadata);
    const stream: Stream = { client, call, gotResponse: false, ended: false };
    this.stream = stream;
    call.on('metadata', () => {
      if (stream.ended || this.stream !== stream) return;
      this.connectedSinceMs = this.clock.now();
      this.log.info('connected to the control plane', { address: this.options.address });
      this.setState({ state: 'connected', attempt: this.attempt });
    });
    call.on('data', (bytes: Buffer) => {
      if (stream.ended) return;
      let resp: DeltaResponse;
      try {
        resp = codecs.response.deserialize(bytes);
      } catch (e: unknown) {
        // Ended first, so the cancellation's own status (CANCELLED) is not the one reported.
        this.onStreamEnd(stream, GrpcCode.INTERNAL, `Response message parsing error: ${e instanceof Error ? e.message : String(e)}`);
        call.cancel();
        return;
      }
      this.onResponse(stream, resp);
    });
    call.on('error', (e: GrpcCallError) => this.onStreamEnd(stream, e.code, e.details || e.message));
    call.on('status', (s: GrpcStatus) => this.onStreamEnd(stream, s.code, s.details));

    const node = this.options.node;
    let first = true;
    for (const t of this.types.values()) {
      const req: DeltaRequestOut = {
        typeUrl: t.spec.typeUrl,
        resourceNamesSubscribe: ['*'],
        initialResourceVersions: Object.fromEntries([...t.resources.values()].map((r) => [r.name, r.version])),
      };
      if (first) {
        req.node = {
          id: node.id,
          ...(node.cluster ? { cluster: node.cluster } : {}),
          ...(node.metadata ? { metadata: toStruct(node.metadata) } : {}),
          ...(node.userAgentName ? { userAgentName: node.userAgentName } : {}),
        };
        first = false;
      }
      call.write(codecs.request.serialize(req));
    }
  }

  private onStreamEnd(stream: Stream, code: number, details: string): void {
    if (stream.ended) return;
    stream.ended = true;
    stream.client.close();
    if (this.stream === stream) this.stream = undefined;
    if (this.closed) return;
    this.connectedSinceMs = undefined;
    this.retry({ code: grpcStatusName(code), message: details }, stream.gotResponse);
  }

  private retry(error: { code: string; message: string }, healthy: boolean): void {
    if (healthy) this.attempt = 0;
    this.attempt++;
    const base = Math.min(this.maxMs, this.initialMs * 2 ** (this.attempt - 1));
    const delayMs = Math.round(base / 2 + this.random() * (base / 2));
    this.lastError = { ...error, atMs: this.clock.now() };
    const fields = { address: this.options.address, code: error.code, error: error.message, attempt: this.attempt, retryInMs: delayMs };
    if (error.code === 'UNAUTHENTICATED' || error.code === 'PERMISSION_DENIED') {
      this.log.error('the control plane refused this client', { ...fields, hint: 'check the token or certificate this node presents, and that the node id matches it' });
    } else {
      this.log.warn('control plane stream ended; keeping the last resources and retrying', fields);
    }
    this.setState({ state: 'disconnected', attempt: this.attempt, error, retryInMs: delayMs });
    this.timer = this.clock.setTimeout(() => void this.connect(), delayMs);
  }

  // ------------------------------------------------------------ responses

  private send(stream: Stream, req: DeltaRequestOut): void {
    if (!stream.ended && this.codecs) stream.call.write(this.codecs.request.serialize(req));
  }

  private onResponse(stream: Stream, resp: DeltaResponse): void {
    if (stream.ended) return;
    stream.gotResponse = true;
    const t = this.types.get(resp.typeUrl);
    if (!t) {
      const message = `not subscribed to type ${resp.typeUrl}`;
      this.log.warn('NACK: response for an unknown type', { typeUrl: resp.typeUrl, nonce: resp.nonce });
      this.send(stream, { typeUrl: resp.typeUrl, responseNonce: resp.nonce, errorDetail: { code: INVALID_ARGUMENT, message } });
      return;
    }
    const upserted: ClientResource<unknown>[] = [];
    const rejected: RejectedResource[] = [];
    for (const r of resp.resources) {
      if (!r.resource) {
        rejected.push({ name: r.name, reason: 'the resource has no body' });
      } else if (r.resource.type_url !== resp.typeUrl) {
        rejected.push({ name: r.name, reason: `its body is a ${r.resource.type_url || '(no type)'}, not a ${resp.typeUrl}` });
      } else {
        try {
          upserted.push({ name: r.name, version: r.version, value: t.spec.decode(r.resource.value, r.name) });
        } catch (e: unknown) {
          rejected.push({ name: r.name, reason: e instanceof Error ? e.message : String(e) });
        }
      }
    }
    const removed: string[] = [];
    for (const name of resp.removedResources) if (t.resources.delete(name)) removed.push(name);
    for (const u of upserted) t.resources.set(u.name, u);
    const initial = !t.synced;
    t.synced = true;
    t.responses++;
    t.lastNonce = resp.nonce;
    t.lastVersion = resp.systemVersionInfo;
    if (this.trace.enabled) {
      this.trace.log('response', { typeUrl: resp.typeUrl, nonce: resp.nonce, upserted: upserted.length, removed: removed.length, rejected: rejected.length });
    }
    try {
      this.events.emit('update', { typeUrl: resp.typeUrl, upserted, removed, rejected, nonce: resp.nonce, initial });
    } catch (e: unknown) {
      this.log.error('update listener threw', { typeUrl: resp.typeUrl, error: e });
    }
    if (rejected.length > 0) {
      const total = resp.resources.length;
      const message = `rejected ${rejected.length} of ${total} resources: ${rejected.map((r) => `${r.name}: ${r.reason}`).join('; ')}`;
      t.nacks++;
      t.lastNack = { nonce: resp.nonce, atMs: this.clock.now(), message };
      this.log.warn('NACK: some resources could not be used; kept their previous versions', { typeUrl: resp.typeUrl, nonce: resp.nonce, error: message });
      this.send(stream, { typeUrl: resp.typeUrl, responseNonce: resp.nonce, errorDetail: { code: INVALID_ARGUMENT, message } });
    } else {
      t.acks++;
      this.send(stream, { typeUrl: resp.typeUrl, responseNonce: resp.nonce });
    }
    if (initial && this.allSynced()) for (const w of this.syncWaiters.splice(0)) w();
  }

  /** Whether the resources held are one whole push of every type (see push-version.ts). */
  holdsWholePush(): boolean {
    return holdsWholePush([...this.types.values()].map((t) => ({ synced: t.synced, lastVersion: t.lastVersion })));
  }

  private allSynced(): boolean {
    return [...this.types.values()].every((t) => t.synced);
  }
}
