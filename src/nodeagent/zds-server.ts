// The node agent's side of ZDS (proto/istio/zds.proto): ztunnels of this node connect to a
// unix SOCK_SEQPACKET socket and get the captured pods' network namespaces.
//
//   ztunnel connects ─ ZdsHello{V1, features} ─▶ agent
//   agent ─ add(uid, info) + fds ─▶ ack ◀─ ... ─ snapshot_sent ─▶ ack   (state: syncing → synced)
//   then add / del as pods come and go
//
// Invariants:
//  - One request in flight per connection: the next leaves only after the previous one's Ack
//    (or after ackTimeoutMs, which closes the connection: a ztunnel that stops answering is
//    treated as gone). An Ack that answers nothing, a response that does not decode, or
//    anything but a ZdsHello first closes the connection, never the agent.
//  - A new connection gets the full snapshot (every captured pod, from `snapshot()` at that
//    moment), then snapshot_sent; requests made meanwhile queue behind it, so the ztunnel sees
//    a consistent history.
//  - add goes to the newest connection that said hello (Istio's agent does the same: the
//    newest ztunnel is the one that stays during a rollout); del goes to every connection, so
//    no ztunnel keeps a pod's namespace open after the pod is gone.
//  - fds: the agent's own fds (netns, listeners) are sent as SCM_RIGHTS, which copies them
//    into the receiver; the agent keeps and closes its own. Listening sockets are sent only to
//    a ztunnel whose hello has the "listener-handoff" feature.
//  - The peer's PID (SO_PEERCRED) names the connection in status(), so an operator (and the
//    cluster's graceful restart) can tell which ztunnel process is synced. Only processes of
//    the agent's own user get a connection (the socket file is 0600 too).
import { chmodSync } from 'node:fs';
import type { Clock, TimerHandle } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { closeFds, SeqpacketServer, type SeqpacketConnection, type SeqpacketMessage } from '../sys/seqpacket.js';
import { decodeAck, decodeHello, encodeRequest, FEATURE_LISTENER_HANDOFF, ZDS_VERSION_V1, type WorkloadInfo, type WorkloadRequest } from '../xds/zds.js';

export interface ZdsPod {
  uid: string;
  info: WorkloadInfo;
  netnsFd: number;
  /** Listening sockets by port (sent only with listener-handoff). */
  listeners: ReadonlyMap<number, number>;
}

/** A captured pod's uid (sent as add), or a pod whose namespace is gone but may come back (keep). */
export type ZdsSnapshotEntry = string | { keep: string };

export interface ZdsServerOptions {
  path: string;
  clock: Clock;
  logger: Logger;
  /** The pods to send to a new connection, read when its snapshot starts. */
  snapshot(): ZdsSnapshotEntry[];
  /**
   * A captured pod as it is now, read when its add leaves (so fds of a pod released while the
   * add waited in the queue are never sent); undefined when it is no longer captured.
   */
  lookup(uid: string): ZdsPod | undefined;
  /** A ztunnel said hello without listener-handoff (an Istio ztunnel, for example). */
  onLegacyPeer?(pid: number): void;
  helloTimeoutMs?: number;
  ackTimeoutMs?: number;
  /** snapshot_sent is acked once the ztunnel serves the snapshot; it may take this long. */
  snapshotAckTimeoutMs?: number;
}

export type ConnectionState = 'hello' | 'syncing' | 'synced' | 'sync-failed' | 'closed';

export interface ZdsConnectionStatus {
  id: number;
  pid: number;
  state: ConnectionState;
  features: string[];
  newest: boolean;
  connectedAt: string;
  snapshotError?: string;
  pending: number;
}

export type AddOutcome = { sent: true; error: string } | { sent: false; reason: string };

/** A request built when it leaves; undefined = nothing to send any more (resolves as skipped). */
type Build = () => { request: WorkloadRequest; fds: readonly number[] } | undefined;
const SKIPPED = '\u0000skipped';

interface Waiter {
  resolve: (error: string) => void;
  reject: (e: Error) => void;
}

class ZdsPeer {
  state: ConnectionState = 'hello';
  features: string[] = [];
  snapshotError: string | undefined;
  readonly connectedAt = new Date();
  private chain: Promise<unknown> = Promise.resolve();
  private waiting: Waiter | undefined;
  private timer: TimerHandle | undefined;
  pending = 0;

  constructor(readonly id: number, readonly conn: SeqpacketConnection, private readonly opts: ZdsServerOptions, private readonly logger: Logger) {}

  get handoff(): boolean {
    return this.features.includes(FEATURE_LISTENER_HANDOFF);
  }

  /** Queues a request; resolves with the Ack's error ('' = accepted, SKIPPED = not sent). */
  request(build: Build, timeoutMs: number): Promise<string> {
    this.pending++;
    const p = this.chain.then(() => this.sendOne(build, timeoutMs));
    this.chain = p.catch(() => undefined).finally(() => { this.pending--; });
    return p;
  }

  private sendOne(build: Build, timeoutMs: number): Promise<string> {
    if (this.conn.closed) return Promise.reject(new Error('the ztunnel connection is closed'));
    const built = build();
    if (!built) return Promise.resolve(SKIPPED);
    const { request: r, fds } = built;
    return new Promise<string>((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.timer = this.opts.clock.setTimeout(() => {
        this.logger.warn('the ztunnel did not acknowledge in time; closing its ZDS connection', { pid: this.conn.peer?.pid, request: r.kind, timeoutMs });
        this.conn.close(new Error(`no Ack to ${r.kind} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.conn.send(encodeRequest(r), fds).catch((e: unknown) => this.fail(e instanceof Error ? e : new Error(String(e))));
    });
  }

  onAck(error: string): boolean {
    const w = this.waiting;
    if (!w) return false;
    this.waiting = undefined;
    this.timer?.cancel();
    w.resolve(error);
    return true;
  }

  fail(e: Error): void {
    this.timer?.cancel();
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(e);
  }
}

export class ZdsServer {
  private readonly server: SeqpacketServer;
  private readonly peers = new Map<number, ZdsPeer>();
  private nextId = 1;
  private readonly logger: Logger;

  constructor(private readonly opts: ZdsServerOptions) {
    this.logger = opts.logger.child({ scope: 'zds' });
    this.server = new SeqpacketServer({ maxMessageBytes: 64 * 1024, maxFds: 8 });
    this.server.on('connection', (c: SeqpacketConnection) => this.onConnection(c));
    this.server.on('error', (e: unknown) => this.logger.error('ZDS socket error', { error: describeError(e).message }));
  }

  listen(): void {
    this.server.listen(this.opts.path);
    chmodSync(this.opts.path, 0o600);
    this.logger.info('ZDS listening', { path: this.opts.path });
  }

  close(): void {
    this.server.close();
    for (const p of this.peers.values()) p.conn.close();
    this.peers.clear();
  }

  status(): ZdsConnectionStatus[] {
    const newest = this.newest();
    return [...this.peers.values()].map((p) => ({
      id: p.id, pid: p.conn.peer?.pid ?? 0, state: p.state, features: p.features, newest: p === newest,
      connectedAt: p.connectedAt.toISOString(), snapshotError: p.snapshotError, pending: p.pending,
    }));
  }

  /** Hands a captured pod to the newest ztunnel and waits for its Ack. */
  async add(uid: string): Promise<AddOutcome> {
    const peer = this.newest();
    if (!peer) return { sent: false, reason: 'no ztunnel is connected' };
    try {
      const error = await peer.request(this.buildAdd(uid, peer), this.opts.ackTimeoutMs ?? 10_000);
      if (error === SKIPPED) return { sent: false, reason: 'the pod is no longer captured' };
      return { sent: true, error };
    } catch (e: unknown) {
      return { sent: false, reason: describeError(e).message };
    }
  }

  /** Tells every ztunnel that a pod left; resolves when each answered (or its connection went). */
  async del(uid: string): Promise<void> {
    await Promise.all([...this.peers.values()].filter((p) => p.state !== 'hello').map(async (p) => {
      try {
        const error = await p.request(() => ({ request: { kind: 'del', uid }, fds: [] }), this.opts.ackTimeoutMs ?? 10_000);
        if (error) this.logger.info('ztunnel refused a del', { pid: p.conn.peer?.pid, uid, error });
      } catch {
        // its connection went: it forgets everything anyway
      }
    }));
  }

  private buildAdd(uid: string, peer: ZdsPeer): Build {
    return () => {
      const pod = this.opts.lookup(uid);
      return pod ? { request: addRequest(pod, peer.handoff), fds: addFds(pod, peer.handoff) } : undefined;
    };
  }

  private newest(): ZdsPeer | undefined {
    let best: ZdsPeer | undefined;
    for (const p of this.peers.values()) if (p.state !== 'hello' && p.state !== 'closed' && (!best || p.id > best.id)) best = p;
    return best;
  }

  private onConnection(conn: SeqpacketConnection): void {
    // Network namespaces and listening sockets go only to a process of the agent's own user.
    if (conn.peer && process.getuid && conn.peer.uid !== process.getuid()) {
      this.logger.warn('refused a ZDS connection from another user', { pid: conn.peer.pid, uid: conn.peer.uid });
      conn.close();
      return;
    }
    const peer = new ZdsPeer(this.nextId++, conn, this.opts, this.logger);
    this.peers.set(peer.id, peer);
    const pid = conn.peer?.pid ?? 0;
    this.logger.info('ztunnel connected', { pid, id: peer.id });
    const hello = this.opts.clock.setTimeout(() => {
      if (peer.state === 'hello') {
        this.logger.warn('no ZdsHello in time; closing', { pid });
        conn.close();
      }
    }, this.opts.helloTimeoutMs ?? 5000);
    conn.on('message', (m: SeqpacketMessage) => this.onMessage(peer, m));
    conn.on('close', (e?: Error) => {
      hello.cancel();
      peer.state = 'closed';
      peer.fail(e ?? new Error('the ztunnel closed its ZDS connection'));
      this.peers.delete(peer.id);
      this.logger.info('ztunnel disconnected', { pid, id: peer.id, ...(e ? { error: e.message } : {}) });
    });
  }

  private onMessage(peer: ZdsPeer, m: SeqpacketMessage): void {
    const pid = peer.conn.peer?.pid ?? 0;
    if (m.fds.length > 0) {
      closeFds(m.fds);
      this.protocolError(peer, 'a ztunnel message carried file descriptors');
      return;
    }
    if (m.truncated) {
      this.protocolError(peer, 'a ztunnel message was larger than 64 KiB');
      return;
    }
    if (peer.state === 'hello') {
      const h = decodeHello(m.data);
      if (!h.ok || h.value.version !== ZDS_VERSION_V1) {
        this.protocolError(peer, h.ok ? `ZDS version ${h.value.version} is not V1` : `the first message is not a ZdsHello: ${h.error}`);
        return;
      }
      peer.features = h.value.features;
      peer.state = 'syncing';
      this.logger.info('ztunnel said hello', { pid, features: peer.features });
      if (!peer.handoff) this.opts.onLegacyPeer?.(pid);
      void this.sendSnapshot(peer);
      return;
    }
    const ack = decodeAck(m.data);
    if (!ack.ok) {
      this.protocolError(peer, `not a WorkloadResponse: ${ack.error}`);
      return;
    }
    if (!peer.onAck(ack.value.error)) this.protocolError(peer, 'an Ack that answers no request');
  }

  private protocolError(peer: ZdsPeer, why: string): void {
    this.logger.warn('ZDS protocol error; closing the connection', { pid: peer.conn.peer?.pid, error: why });
    peer.conn.close(new Error(why));
  }

  private async sendSnapshot(peer: ZdsPeer): Promise<void> {
    const entries = this.opts.snapshot();
    const timeout = this.opts.ackTimeoutMs ?? 10_000;
    try {
      for (const e of entries) {
        const error = typeof e === 'string'
          ? await peer.request(this.buildAdd(e, peer), timeout)
          : await peer.request(() => ({ request: { kind: 'keep', uid: e.keep }, fds: [] }), timeout);
        if (error && error !== SKIPPED) this.logger.warn('ztunnel refused a pod of the snapshot', { pid: peer.conn.peer?.pid, uid: typeof e === 'string' ? e : e.keep, error });
      }
      const error = await peer.request(() => ({ request: { kind: 'snapshot_sent' }, fds: [] }), this.opts.snapshotAckTimeoutMs ?? 30_000);
      if (peer.state === 'closed') return;
      peer.state = error ? 'sync-failed' : 'synced';
      peer.snapshotError = error || undefined;
      this.logger.info(error ? 'ztunnel did not take the whole snapshot' : 'ztunnel synced', { pid: peer.conn.peer?.pid, pods: entries.length, ...(error ? { error } : {}) });
    } catch (e: unknown) {
      this.logger.warn('the snapshot did not finish', { pid: peer.conn.peer?.pid, error: describeError(e).message });
    }
  }
}

function addRequest(pod: ZdsPod, handoff: boolean): WorkloadRequest {
  return { kind: 'add', uid: pod.uid, info: pod.info, listenerPorts: handoff ? [...pod.listeners.keys()] : [] };
}

function addFds(pod: ZdsPod, handoff: boolean): number[] {
  return handoff ? [pod.netnsFd, ...pod.listeners.values()] : [pod.netnsFd];
}
