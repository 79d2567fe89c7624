// A generic delta ADS server: envoy.service.discovery.v3.AggregatedDiscoveryService/
// DeltaAggregatedResources. The control plane feeds it encoded resources per type URL
// (setResources / update); it pushes to each connected client only what changed for that
// client, and tracks what each client was sent, ACKed and NACKed.
//
// Invariants (per-client bookkeeping: see ads-delta.ts):
// - A stream is authenticated (options.authenticate) before any of its requests is read;
//   a refusal ends it with UNAUTHENTICATED (or PERMISSION_DENIED). After that the server
//   sends response headers, so a client can tell "accepted" from "still connecting".
// - The first request must name the node (Node.id), or the authenticator must; when both do
//   they must agree: equal, or `<node>~<proxy>` for another proxy of that node (else PERMISSION_DENIED). A stream without a node id is ended with
//   INVALID_ARGUMENT.
// - Subscriptions: the first request of a type with no names, or with "*", is a wildcard
//   subscription; other names subscribe to those resources only; unsubscribing "*" ends the
//   wildcard. initial_resource_versions on the first request of a type (a resumed stream)
//   seeds what the client has: the server then sends only what differs, and removals for the
//   names it has that no longer exist (or that the filter no longer gives it).
// - Nothing is pushed for a type until the control plane has set it once (update or
//   setResources, even empty): a restarted control plane that has not computed its state yet
//   must not tell resumed clients to delete everything.
// - Flow control: at most one batch of responses per client and type is un-ACKed. Changes
//   arriving meanwhile are coalesced and sent, as one delta against what was already sent,
//   when the ACK or NACK comes. A client that answers nothing for ackTimeoutMs is logged and
//   then sent further deltas anyway (pipelining, which the protocol allows): a stuck client
//   costs memory for one response, not one per change.
// - A batch larger than maxResponseBytes is split into several responses (each with its own
//   nonce), written back to back without waiting for ACKs. Writes are paced by the transport:
//   a response is encoded and handed to gRPC only when the previous one of the same stream
//   has been taken (its write callback), so a slow reader holds at most one encoded response
//   in server memory, not the whole push. Resources themselves are shared by all clients.
// - ACK/NACK by response_nonce. A NACK (error_detail set) is recorded per client and type with
//   its error and time and logged with the node id; the client's ACKed versions stay as they
//   were. A nonce that is not pending (stale, or from another server) is ignored.
// - Changes made in the same tick are pushed together (one flush per tick).
// - Pushes (publish): the control plane sets every type of one config version at once, under
//   one push id. Each subscribed client gets a response for every type of the push, empty when
//   nothing of that type changed for it, whose system_version_info is the push id; a response
//   that is not the last of its type's push says so (PARTIAL_VERSION_SUFFIX). A client can
//   then apply a push only once it holds all of it, every type (xds/push-version.ts).
// - Limits on what a client can make the server hold: only served types can be subscribed
//   (others are ignored, logged once, counted), at most MAX_NAMES_PER_TYPE resource names per
//   type, and at most MAX_PENDING_RESPONSES un-ACKed responses per type: a client that never
//   answers gets its stream ended (RESOURCE_EXHAUSTED) rather than a growing backlog.
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import type { Logger, Tracer } from '../core/logger.js';
import { chunkBySize, commitDelta, computeDelta, Subscription } from './ads-delta.js';
import type {
  AdsClientInfo, AdsClientStatus, AdsResource, AdsServerCounters, AdsServerStatus, AdsTypeStatus, DeltaRequest, LatencyStat,
  ServerResource,
} from './ads-types.js';
import { authenticateCall, callContext, type Authenticator } from './call-auth.js';
import { ADS_SERVICE, grpcDefinitions } from './protos.js';
import { fromStruct } from './struct.js';
import { encodeDeltaResponse, encodeResource } from './wire.js';
import { PARTIAL_VERSION_SUFFIX } from './push-version.js';

/** Resource names one client may subscribe to by name, per type. */
export const MAX_NAMES_PER_TYPE = 10_000;
/** Un-ACKed responses per client and type before the stream is ended. */
export const MAX_PENDING_RESPONSES = 64;

export interface AdsServerOptions {
  logger: Logger;
  clock?: Clock;
  authenticate?: Authenticator;
  /** Whether a client gets a resource (e.g. a ztunnel only what its node needs). Default: all. */
  filter?: (client: AdsClientInfo, typeUrl: string, name: string) => boolean;
  /** How long to wait for an ACK before pipelining further deltas; default 30 s. */
  ackTimeoutMs?: number;
  /** Largest sum of resource bytes in one response; default 512 KiB (well under gRPC's 4 MiB default; bounds the memory a slow reader pins). */
  maxResponseBytes?: number;
  /** The type URLs served; a subscription to another is ignored. Default: any type (once it is set). */
  types?: readonly string[];
}

interface Pending {
  nonce: string;
  sentAtMs: number;
  typeVersion: string;
  upserts: Map<string, string>;
  removals: string[];
  bytes: number;
  changeAtMs: number | undefined;
}

interface TypeSub {
  sub: Subscription;
  pending: Map<string, Pending>;
  versionSent: string;
  versionAcked: string;
  lastNonce: string;
  lastAckedNonce: string;
  acks: number;
  nacks: number;
  lastNack?: { nonce: string; atMs: number; code: number; message: string; version: string };
  ackTimer?: TimerHandle;
  warnedSlow: boolean;
  /** Responses of this type in the outbox. */
  queued: number;
  /** The push id of the last response queued for this type. */
  pushSent: string;
}

/** A response waiting to be written: encoded only when the previous write has completed. */
interface Outgoing {
  ts: TypeSub;
  typeVersion: string;
  chunk: ServerResource[];
  removals: string[];
  changeAtMs: number | undefined;
}

interface Conn {
  info: AdsClientInfo;
  call: grpc.ServerDuplexStream<DeltaRequest, Buffer>;
  log: Logger;
  types: Map<string, TypeSub>;
  /** Responses not yet handed to gRPC; one write at a time (see the invariants). */
  outbox: Outgoing[];
  writing: boolean;
  bytesSent: number;
  ready: boolean;
  closed: boolean;
  /** Type URLs it asked for that are not served (remembered to log each once). */
  unknownTypes: Set<string>;
}

interface TypeTable {
  typeUrl: string;
  version: number;
  entries: Map<string, ServerResource>;
  ready: boolean;
  /** The push the table's content belongs to ('' when fed by update/setResources alone). */
  pushId: string;
}

export interface AdsServerEvents {
  connect: [AdsClientInfo];
  disconnect: [AdsClientInfo];
  ack: [{ client: AdsClientInfo; typeUrl: string; nonce: string; version: string }];
  nack: [{ client: AdsClientInfo; typeUrl: string; nonce: string; code: number; message: string }];
}

/** A content hash, the default resource version. */
export function contentVersion(body: Uint8Array): string {
  return createHash('sha256').update(body).digest('base64url').slice(0, 16);
}

function emptyLatency(): LatencyStat {
  return { count: 0, sumMs: 0, maxMs: 0 };
}

function observe(s: LatencyStat, ms: number): void {
  s.count++;
  s.sumMs += ms;
  if (ms > s.maxMs) s.maxMs = ms;
}

export class AdsServer {
  private readonly log: Logger;
  private readonly trace: Tracer;
  private readonly clock: Clock;
  private readonly options: AdsServerOptions;
  private readonly ackTimeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly instance = randomBytes(4).toString('hex');
  private readonly tables = new Map<string, TypeTable>();
  private readonly conns = new Set<Conn>();
  private readonly scheduled = new Set<Conn>();
  private readonly events = new EventEmitter();
  private flushQueued = false;
  private streamSeq = 0;
  private nonceSeq = 0;
  private closed = false;
  private readonly stats: AdsServerCounters = {
    connectedClients: 0, streamsOpened: 0, streamsRejected: 0, responsesSent: 0, resourcesSent: 0, removalsSent: 0,
    bytesSent: 0, acks: 0, nacks: 0, unknownTypes: 0, pushLatency: emptyLatency(), changeToAckLatency: emptyLatency(),
  };

  constructor(options: AdsServerOptions) {
    this.options = options;
    this.log = options.logger.child({ part: 'ads-server' });
    this.trace = options.logger.tracer('xds');
    this.clock = options.clock ?? systemClock;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 30_000;
    this.maxResponseBytes = options.maxResponseBytes ?? 512 * 1024;
  }

  /** Adds the ADS service to a gRPC server (which may carry other services, e.g. the CA). */
  register(server: grpc.Server): void {
    const def = grpcDefinitions()[ADS_SERVICE] as unknown as grpc.ServiceDefinition;
    const method = def.DeltaAggregatedResources as grpc.MethodDefinition<DeltaRequest, Buffer>;
    // Responses are encoded by wire.ts (resources pre-encoded once for all clients).
    const service: grpc.ServiceDefinition = { DeltaAggregatedResources: { ...method, responseSerialize: (b: Buffer) => b } };
    server.addService(service, {
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaRequest, Buffer>) => {
        void this.onStream(call);
      },
    });
  }

  on<E extends keyof AdsServerEvents>(event: E, listener: (...args: AdsServerEvents[E]) => void): () => void {
    const l = listener as (...args: unknown[]) => void;
    this.events.on(event, l);
    return () => this.events.off(event, l);
  }

  // ------------------------------------------------------------ feeding

  /** Replaces the whole set of resources of a type; only what changed is pushed. */
  setResources(typeUrl: string, resources: Iterable<AdsResource>): { changed: number; version: string } {
    const table = this.table(typeUrl);
    const keep = new Set<string>();
    const list: AdsResource[] = [];
    for (const r of resources) {
      keep.add(r.name);
      list.push(r);
    }
    const removals = [...table.entries.keys()].filter((n) => !keep.has(n));
    return this.update(typeUrl, list, removals);
  }

  /** Upserts and removes resources of a type; unchanged versions are ignored. */
  update(typeUrl: string, upserts: Iterable<AdsResource>, removals: Iterable<string> = []): { changed: number; version: string } {
    const table = this.table(typeUrl);
    const changed: string[] = [];
    for (const r of upserts) {
      const version = r.version ?? contentVersion(r.body);
      const cur = table.entries.get(r.name);
      if (cur && cur.version === version) continue;
      table.entries.set(r.name, { name: r.name, version, wire: encodeResource(r.name, version, typeUrl, r.body) });
      changed.push(r.name);
    }
    for (const name of removals) if (table.entries.delete(name)) changed.push(name);
    const becameReady = !table.ready;
    table.ready = true;
    if (changed.length) table.version++;
    const now = this.clock.now();
    for (const c of this.conns) {
      const ts = c.types.get(typeUrl);
      if (!ts) continue;
      ts.sub.markDirty(changed, now);
      if (changed.length || becameReady) this.schedule(c);
    }
    if (this.trace.enabled) this.trace.log('resources updated', { typeUrl, changed: changed.length, version: table.version });
    return { changed: changed.length, version: String(table.version) };
  }

  /**
   * One push of several types under one id (the config version): every client subscribed to
   * one of them is sent a response for each, even an empty one, carrying the id.
   */
  publish(pushId: string, types: { typeUrl: string; resources: Iterable<AdsResource> }[]): { typeUrl: string; changed: number }[] {
    const out = types.map((t) => ({ typeUrl: t.typeUrl, changed: this.setResources(t.typeUrl, t.resources).changed }));
    for (const t of types) this.table(t.typeUrl).pushId = pushId;
    for (const c of this.conns) if (types.some((t) => c.types.has(t.typeUrl))) this.schedule(c);
    return out;
  }

  /** Re-evaluates the filter for the matching clients (all by default), e.g. after a pod moved node. */
  refilter(which: (client: AdsClientInfo) => boolean = () => true): void {
    const now = this.clock.now();
    for (const c of this.conns) {
      if (!c.ready || !which(c.info)) continue;
      for (const ts of c.types.values()) {
        ts.sub.fullResync = true;
        if (ts.sub.dirtySince === undefined) ts.sub.dirtySince = now;
      }
      this.schedule(c);
    }
  }

  /** The server's current resources of a type (name -> version). */
  versions(typeUrl: string): Map<string, string> {
    const t = this.tables.get(typeUrl);
    return new Map([...(t?.entries.values() ?? [])].map((r) => [r.name, r.version]));
  }

  clients(): AdsClientInfo[] {
    return [...this.conns].filter((c) => c.ready).map((c) => c.info);
  }

  // ------------------------------------------------------------ status

  counters(): AdsServerCounters {
    return {
      ...this.stats,
      connectedClients: this.clients().length,
      pushLatency: { ...this.stats.pushLatency },
      changeToAckLatency: { ...this.stats.changeToAckLatency },
    };
  }

  status(): AdsServerStatus {
    const iso = (ms: number): string => new Date(ms).toISOString();
    return {
      types: [...this.tables.values()].map((t) => ({ typeUrl: t.typeUrl, version: t.pushId || String(t.version), resources: t.entries.size, ready: t.ready })),
      clients: [...this.conns].filter((c) => c.ready).map((c): AdsClientStatus => ({
        streamId: c.info.streamId,
        nodeId: c.info.nodeId,
        peer: c.info.peer,
        ...(c.info.caller.identity ? { identity: c.info.caller.identity } : {}),
        connectedSince: iso(c.info.connectedAtMs),
        bytesSent: c.bytesSent,
        types: [...c.types.values()].map((ts): AdsTypeStatus => ({
          typeUrl: ts.sub.typeUrl,
          wildcard: ts.sub.wildcard,
          subscribed: [...ts.sub.names].sort(),
          versionSent: ts.versionSent,
          versionAcked: ts.versionAcked,
          resourcesSent: ts.sub.sent.size,
          resourcesAcked: ts.sub.acked.size,
          lastNonce: ts.lastNonce,
          lastAckedNonce: ts.lastAckedNonce,
          pending: [...ts.pending.values()].map((p) => ({
            nonce: p.nonce, sentAt: iso(p.sentAtMs), resources: p.upserts.size, removals: p.removals.length, bytes: p.bytes,
          })),
          acks: ts.acks,
          nacks: ts.nacks,
          ...(ts.lastNack ? { lastNack: { nonce: ts.lastNack.nonce, at: iso(ts.lastNack.atMs), code: ts.lastNack.code, message: ts.lastNack.message, version: ts.lastNack.version } } : {}),
        })),
      })),
    };
  }

  /** Ends every stream with UNAVAILABLE (clients reconnect elsewhere or later). */
  close(): void {
    this.closed = true;
    for (const c of [...this.conns]) this.endStream(c, grpc.status.UNAVAILABLE, 'the control plane is shutting down');
  }

  // ------------------------------------------------------------ streams

  private table(typeUrl: string): TypeTable {
    let t = this.tables.get(typeUrl);
    if (!t) {
      t = { typeUrl, version: 0, entries: new Map(), ready: false, pushId: '' };
      this.tables.set(typeUrl, t);
    }
    return t;
  }

  private async onStream(call: grpc.ServerDuplexStream<DeltaRequest, Buffer>): Promise<void> {
    const streamId = `${this.instance}-${++this.streamSeq}`;
    // Requests that arrive while the stream is being authenticated wait here.
    const early: { queued: DeltaRequest[]; conn?: Conn; ended: boolean } = { queued: [], ended: false };
    call.on('data', (req: DeltaRequest) => {
      if (early.conn) this.onRequest(early.conn, req);
      else early.queued.push(req);
    });
    const onGone = (): void => {
      early.ended = true;
      if (early.conn) this.dropConn(early.conn);
    };
    call.on('end', () => {
      onGone();
      call.end();
    });
    call.on('cancelled', onGone);
    call.on('error', onGone);

    if (this.closed) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the control plane is shutting down' });
      return;
    }
    const ctx = callContext(call);
    const auth = await authenticateCall(this.options.authenticate, ctx);
    if (early.ended) return;
    if (!auth.ok) {
      this.stats.streamsRejected++;
      this.log.warn('ADS stream refused', { peer: ctx.peer, status: auth.status ?? 'UNAUTHENTICATED', reason: auth.message });
      call.emit('error', { code: grpc.status[auth.status ?? 'UNAUTHENTICATED'], details: auth.message });
      return;
    }
    this.stats.streamsOpened++;
    const conn: Conn = {
      info: {
        streamId, nodeId: '', node: { id: '', cluster: '', metadata: {}, userAgentName: '' }, caller: auth.caller, peer: ctx.peer,
        connectedAtMs: this.clock.now(),
      },
      call, log: this.log.child({ stream: streamId, peer: ctx.peer }), types: new Map(), outbox: [], writing: false, bytesSent: 0, ready: false, closed: false, unknownTypes: new Set(),
    };
    early.conn = conn;
    this.conns.add(conn);
    call.sendMetadata(new grpc.Metadata());
    for (const req of early.queued.splice(0)) this.onRequest(conn, req);
  }

  private endStream(c: Conn, code: grpc.status, details: string): void {
    if (c.closed) return;
    this.dropConn(c);
    c.call.emit('error', { code, details });
  }

  private dropConn(c: Conn): void {
    if (c.closed) return;
    c.closed = true;
    this.conns.delete(c);
    this.scheduled.delete(c);
    c.outbox.length = 0;
    for (const ts of c.types.values()) ts.ackTimer?.cancel();
    if (c.ready) {
      c.log.info('ADS client disconnected', { connectedForMs: this.clock.now() - c.info.connectedAtMs });
      this.events.emit('disconnect', c.info);
    }
  }

  private identify(c: Conn, req: DeltaRequest): boolean {
    const claimed = req.node?.id ?? '';
    const authNode = c.info.caller.nodeId;
    // A node's credential also serves the other proxies of that node (a waypoint replica
    // scheduled there): they claim `<node>~<their name>`.
    if (authNode && claimed && claimed !== authNode && !claimed.startsWith(`${authNode}~`)) {
      this.stats.streamsRejected++;
      c.log.warn('ADS stream refused: node id mismatch', { claimed, authenticated: authNode });
      this.endStream(c, grpc.status.PERMISSION_DENIED, `node id '${claimed}' does not match the authenticated node '${authNode}'`);
      return false;
    }
    const nodeId = claimed || authNode;
    if (!nodeId) {
      this.endStream(c, grpc.status.INVALID_ARGUMENT, 'the first DeltaDiscoveryRequest must carry node.id');
      return false;
    }
    c.info.nodeId = nodeId;
    c.info.node = {
      id: nodeId,
      cluster: req.node?.cluster ?? '',
      metadata: fromStruct(req.node?.metadata),
      userAgentName: req.node?.userAgentName ?? '',
    };
    c.log = c.log.child({ node: nodeId });
    c.ready = true;
    c.log.info('ADS client connected', c.info.caller.identity ? { identity: c.info.caller.identity } : {});
    this.events.emit('connect', c.info);
    return true;
  }

  private onRequest(c: Conn, req: DeltaRequest): void {
    if (c.closed) return;
    if (!c.ready && !this.identify(c, req)) return;
    if (!req.typeUrl) {
      c.log.warn('ignoring a DeltaDiscoveryRequest without type_url');
      return;
    }
    let ts = c.types.get(req.typeUrl);
    const first = !ts;
    if (!ts) {
      if (this.options.types && !this.options.types.includes(req.typeUrl)) {
        // Not a type this server serves: nothing is kept for it.
        this.stats.unknownTypes++;
        if (!c.unknownTypes.has(req.typeUrl) && c.unknownTypes.size < 16) {
          c.unknownTypes.add(req.typeUrl);
          c.log.warn('ignoring a subscription to a type this control plane does not serve', { typeUrl: req.typeUrl.slice(0, 200) });
        }
        return;
      }
      ts = { sub: new Subscription(req.typeUrl), pending: new Map(), versionSent: '', versionAcked: '', lastNonce: '', lastAckedNonce: '', acks: 0, nacks: 0, warnedSlow: false, queued: 0, pushSent: '' };
      c.types.set(req.typeUrl, ts);
      for (const [name, version] of Object.entries(req.initialResourceVersions)) {
        ts.sub.sent.set(name, version);
        ts.sub.acked.set(name, version);
      }
      if (req.resourceNamesSubscribe.length === 0) ts.sub.wildcard = true;
      if (this.trace.enabled) {
        this.trace.log('subscription', { node: c.info.nodeId, typeUrl: req.typeUrl, initial: ts.sub.sent.size });
      }
    }
    this.applySubscriptionChanges(ts, req, first);
    if (ts.sub.names.size > MAX_NAMES_PER_TYPE) {
      this.endStream(c, grpc.status.RESOURCE_EXHAUSTED, `subscribed to more than ${MAX_NAMES_PER_TYPE} resource names of ${req.typeUrl}`);
      return;
    }
    if (req.responseNonce) this.onAckOrNack(c, ts, req);
    this.schedule(c);
  }

  private applySubscriptionChanges(ts: TypeSub, req: DeltaRequest, first: boolean): void {
    const sub = ts.sub;
    for (const name of req.resourceNamesSubscribe) {
      if (name === '*') {
        if (!sub.wildcard && !first) sub.fullResync = true;
        sub.wildcard = true;
      } else {
        sub.names.add(name);
        if (!first) sub.forced.add(name);
      }
    }
    for (const name of req.resourceNamesUnsubscribe) {
      if (name === '*') sub.wildcard = false;
      else sub.names.delete(name);
      // The client drops what it unsubscribed; no removal is owed for it.
      if (name !== '*' && !sub.interested(name)) {
        sub.sent.delete(name);
        sub.acked.delete(name);
      }
    }
    if (req.resourceNamesUnsubscribe.includes('*')) {
      for (const name of [...sub.sent.keys()]) {
        if (!sub.interested(name)) {
          sub.sent.delete(name);
          sub.acked.delete(name);
        }
      }
    }
  }

  private onAckOrNack(c: Conn, ts: TypeSub, req: DeltaRequest): void {
    const p = ts.pending.get(req.responseNonce);
    if (!p) {
      if (this.trace.enabled) this.trace.log('stale nonce ignored', { node: c.info.nodeId, typeUrl: ts.sub.typeUrl, nonce: req.responseNonce });
      return;
    }
    ts.pending.delete(p.nonce);
    const now = this.clock.now();
    if (ts.pending.size === 0) {
      ts.ackTimer?.cancel();
      ts.ackTimer = undefined;
      ts.warnedSlow = false;
    }
    if (req.errorDetail) {
      const { code, message } = req.errorDetail;
      ts.nacks++;
      this.stats.nacks++;
      ts.lastNack = { nonce: p.nonce, atMs: now, code, message, version: p.typeVersion };
      c.log.warn('client rejected resources (NACK)', { typeUrl: ts.sub.typeUrl, nonce: p.nonce, version: p.typeVersion, code, error: message });
      this.events.emit('nack', { client: c.info, typeUrl: ts.sub.typeUrl, nonce: p.nonce, code, message });
      return;
    }
    for (const [name, version] of p.upserts) ts.sub.acked.set(name, version);
    for (const name of p.removals) ts.sub.acked.delete(name);
    ts.acks++;
    this.stats.acks++;
    ts.versionAcked = p.typeVersion;
    ts.lastAckedNonce = p.nonce;
    if (p.changeAtMs !== undefined) observe(this.stats.changeToAckLatency, now - p.changeAtMs);
    if (this.trace.enabled) this.trace.log('ack', { node: c.info.nodeId, typeUrl: ts.sub.typeUrl, nonce: p.nonce, version: p.typeVersion });
    this.events.emit('ack', { client: c.info, typeUrl: ts.sub.typeUrl, nonce: p.nonce, version: p.typeVersion });
  }

  // ------------------------------------------------------------ pushing

  private schedule(c: Conn): void {
    this.scheduled.add(c);
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      const list = [...this.scheduled];
      this.scheduled.clear();
      for (const conn of list) if (!conn.closed) this.pushAll(conn);
    });
  }

  private pushAll(c: Conn): void {
    for (const ts of c.types.values()) this.push(c, ts);
  }

  private wants(c: Conn, typeUrl: string, name: string): boolean {
    const filter = this.options.filter;
    if (!filter) return true;
    try {
      return filter(c.info, typeUrl, name);
    } catch (e: unknown) {
      c.log.error('ADS filter threw; resource withheld', { typeUrl, name, error: e });
      return false;
    }
  }

  private push(c: Conn, ts: TypeSub): void {
    const table = this.tables.get(ts.sub.typeUrl);
    const owesPush = table !== undefined && table.pushId !== '' && ts.pushSent !== table.pushId;
    // Still writing the previous batch (the client reads slowly): wait for the outbox to drain.
    if (!table?.ready || !(ts.sub.hasWork() || owesPush) || ts.queued > 0) return;
    const now = this.clock.now();
    if (ts.pending.size >= MAX_PENDING_RESPONSES) {
      this.endStream(c, grpc.status.RESOURCE_EXHAUSTED, `${ts.pending.size} responses of ${ts.sub.typeUrl} were never ACKed`);
      return;
    }
    if (ts.pending.size > 0) {
      const oldest = Math.min(...[...ts.pending.values()].map((p) => p.sentAtMs));
      const waitMs = oldest + this.ackTimeoutMs - now;
      if (waitMs > 0) {
        if (!ts.ackTimer) {
          ts.ackTimer = this.clock.setTimeout(() => {
            ts.ackTimer = undefined;
            if (!c.closed) this.schedule(c);
          }, waitMs);
        }
        return;
      }
      if (!ts.warnedSlow) {
        ts.warnedSlow = true;
        c.log.warn('client has not answered a response; sending further changes anyway', {
          typeUrl: ts.sub.typeUrl, nonce: ts.lastNonce, waitedMs: now - oldest,
        });
      }
    }
    const delta = computeDelta(table.entries, ts.sub, (name) => this.wants(c, ts.sub.typeUrl, name));
    const first = ts.sub.needsFirstResponse;
    commitDelta(ts.sub, delta);
    ts.sub.needsFirstResponse = false;
    const changeAtMs = ts.sub.dirtySince;
    ts.sub.dirtySince = undefined;
    if (delta.upserts.length === 0 && delta.removals.length === 0 && !first && !owesPush) return;

    const chunks = chunkBySize(delta.upserts, this.maxResponseBytes);
    const typeVersion = table.pushId || String(table.version);
    ts.pushSent = table.pushId;
    chunks.forEach((chunk, i) => {
      const last = i === chunks.length - 1;
      c.outbox.push({ ts, typeVersion: last ? typeVersion : `${typeVersion}${PARTIAL_VERSION_SUFFIX}`, chunk, removals: last ? delta.removals : [], changeAtMs: i === 0 ? changeAtMs : undefined });
      ts.queued++;
    });
    this.pump(c);
  }

  /** Writes the next response when the previous one has been taken by the transport. */
  private pump(c: Conn): void {
    if (c.writing || c.closed) return;
    const out = c.outbox.shift();
    if (!out) return;
    const { ts, chunk, removals, typeVersion, changeAtMs } = out;
    ts.queued--;
    const now = this.clock.now();
    const nonce = `${this.instance}-${(++this.nonceSeq).toString(36)}`;
    const bytes = encodeDeltaResponse({
      systemVersionInfo: typeVersion, typeUrl: ts.sub.typeUrl, nonce, resources: chunk.map((r) => r.wire), removedResources: removals,
    });
    ts.pending.set(nonce, {
      nonce, sentAtMs: now, typeVersion, upserts: new Map(chunk.map((r) => [r.name, r.version])), removals, bytes: bytes.length, changeAtMs,
    });
    ts.lastNonce = nonce;
    ts.versionSent = typeVersion;
    c.bytesSent += bytes.length;
    this.stats.responsesSent++;
    this.stats.resourcesSent += chunk.length;
    this.stats.removalsSent += removals.length;
    this.stats.bytesSent += bytes.length;
    if (changeAtMs !== undefined) observe(this.stats.pushLatency, now - changeAtMs);
    if (this.trace.enabled) {
      this.trace.log('push', { node: c.info.nodeId, typeUrl: ts.sub.typeUrl, nonce, resources: chunk.length, removals: removals.length, bytes: bytes.length });
    }
    c.writing = true;
    c.call.write(bytes, () => {
      c.writing = false;
      if (c.outbox.length > 0) this.pump(c);
      else if (!c.closed) this.schedule(c);
    });
  }
}

