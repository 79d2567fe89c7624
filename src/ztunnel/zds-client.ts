// The ztunnel's side of ZDS (proto/istio/zds.proto): it connects to the node agent's unix
// SOCK_SEQPACKET socket, says hello, and learns which pods to serve, each with its network
// namespace as a file descriptor (and, with Ambit's "listener-handoff", the pod's listening
// sockets, which the agent holds so that connections wait rather than fail while no ztunnel
// accepts them).
//
// Invariants:
//  - Every request gets exactly one Ack, in order. Anything wrong with a request — it does not
//    decode, it was truncated, an add without a netns fd or with fds that are not what it says,
//    fds on anything but an add, an unknown uid in keep/del — gets an Ack with the error and
//    changes nothing: never a crash, never a half-added pod. Fds of a refused request are
//    closed at once.
//  - The registry owns every fd it keeps (a pod's netns and listeners) and closes it when the
//    pod is replaced, deleted or forgotten. Users dup what they keep (PodNetwork does).
//  - snapshot_sent: pods not sent since this connection began are forgotten; the Ack waits
//    until the ztunnel serves the snapshot (its readiness), at most readyTimeoutMs, and carries
//    the reason when it does not — so "synced" means serving.
//  - Losing the agent changes nothing served: the registry stays, the client reconnects with
//    backoff, and the agent's next snapshot reconciles. A pod re-sent with the same network
//    namespace keeps its proxy (its listeners are swapped for the new ones); with another
//    namespace (the pod was re-created) its proxy restarts.
import type { Clock, TimerHandle } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { loadNative } from '../sys/native.js';
import { closeFds, SeqpacketConnection, type SeqpacketMessage } from '../sys/seqpacket.js';
import { decodeRequest, encodeAck, encodeHello, FEATURE_LISTENER_HANDOFF, ZDS_VERSION_V1, type WorkloadInfo, type WorkloadRequest } from '../xds/zds.js';

export interface ZdsWorkload {
  uid: string;
  info: WorkloadInfo;
  netnsFd: number;
  /** Identity of the network namespace (st_dev:st_ino): equal means the same pod sandbox. */
  netnsId: string;
  /** Listening sockets handed over, by port (owned by the registry). */
  listeners: Map<number, number>;
  /** Bumped whenever the listeners are replaced. */
  listenersVersion: number;
}

export interface ZdsClientOptions {
  path: string;
  clock: Clock;
  logger: Logger;
  /** The set of pods (or one pod's listeners) changed. */
  onChange(): void;
  /** Whether the ztunnel serves what it was given (gates the snapshot_sent Ack). */
  ready(): { ready: boolean; reason?: string };
  readyTimeoutMs?: number;
  reconnectMs?: number;
}

export interface ZdsClientStatus {
  connected: boolean;
  snapshots: number;
  workloads: Array<{ uid: string; namespace: string; name: string; netns: string; listeners: number[] }>;
  lastError?: string;
}

export class ZdsClient {
  private readonly byUid = new Map<string, ZdsWorkload>();
  private conn: SeqpacketConnection | undefined;
  private seenThisConnection = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private timer: TimerHandle | undefined;
  private closed = false;
  private snapshots = 0;
  private lastError: string | undefined;
  private listenersVersion = 0;
  private readonly logger: Logger;

  constructor(private readonly opts: ZdsClientOptions) {
    this.logger = opts.logger.child({ scope: 'zds' });
  }

  start(): void {
    this.connect();
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.conn?.close();
    for (const w of this.byUid.values()) closeWorkload(w);
    this.byUid.clear();
  }

  /** At least one snapshot was received since start (the set of pods to serve is known). */
  get synced(): boolean {
    return this.snapshots > 0;
  }

  lookup(namespace: string, name: string): ZdsWorkload | undefined {
    for (const w of this.byUid.values()) if (w.info.namespace === namespace && w.info.name === name) return w;
    return undefined;
  }

  status(): ZdsClientStatus {
    return {
      connected: !!this.conn && !this.conn.closed,
      snapshots: this.snapshots,
      workloads: [...this.byUid.values()].map((w) => ({ uid: w.uid, namespace: w.info.namespace, name: w.info.name, netns: w.netnsId, listeners: [...w.listeners.keys()] })),
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  private connect(): void {
    if (this.closed) return;
    let conn: SeqpacketConnection;
    try {
      conn = SeqpacketConnection.connect(this.opts.path, { maxMessageBytes: 64 * 1024, maxFds: 16 });
    } catch (e: unknown) {
      const message = describeError(e).message;
      if (message !== this.lastError) this.logger.warn('cannot reach the node agent; retrying', { path: this.opts.path, error: message });
      this.lastError = message;
      this.timer = this.opts.clock.setTimeout(() => this.connect(), this.opts.reconnectMs ?? 500);
      return;
    }
    this.conn = conn;
    this.seenThisConnection = new Set();
    this.lastError = undefined;
    conn.on('message', (m: SeqpacketMessage) => {
      this.chain = this.chain.then(() => this.onMessage(conn, m)).catch((e: unknown) => {
        this.logger.error('handling a ZDS request failed', { error: describeError(e).message });
      });
    });
    conn.on('close', (e?: Error) => {
      if (this.conn === conn) this.conn = undefined;
      if (this.closed) return;
      this.logger.warn('the node agent connection closed; keeping what is served and reconnecting', e ? { error: e.message } : {});
      this.timer = this.opts.clock.setTimeout(() => this.connect(), this.opts.reconnectMs ?? 500);
    });
    conn.send(encodeHello({ version: ZDS_VERSION_V1, features: [FEATURE_LISTENER_HANDOFF] })).catch(() => undefined);
    this.logger.info('connected to the node agent', { path: this.opts.path });
  }

  private async onMessage(conn: SeqpacketConnection, m: SeqpacketMessage): Promise<void> {
    const ack = (error = '') => {
      if (error) this.logger.warn('ZDS request refused', { error });
      if (!conn.closed) conn.send(encodeAck(error.slice(0, 1000))).catch(() => undefined);
    };
    if (m.truncated) {
      closeFds(m.fds);
      ack('the request was truncated (larger than 64 KiB, or more than 16 fds)');
      return;
    }
    const decoded = decodeRequest(m.data);
    if (!decoded.ok) {
      closeFds(m.fds);
      ack(`malformed request: ${decoded.error}`);
      return;
    }
    const r = decoded.value;
    if (r.kind !== 'add' && m.fds.length > 0) {
      closeFds(m.fds);
      ack(`unexpected file descriptors with ${r.kind}`);
      return;
    }
    switch (r.kind) {
      case 'add':
        ack(this.add(r, m.fds));
        return;
      case 'keep': {
        if (!this.byUid.has(r.uid)) return ack(`keep: unknown workload ${r.uid}`);
        this.seenThisConnection.add(r.uid);
        return ack();
      }
      case 'del': {
        const w = this.byUid.get(r.uid);
        if (!w) return ack(`del: unknown workload ${r.uid}`);
        this.byUid.delete(r.uid);
        closeWorkload(w);
        this.logger.info('pod removed by the node agent', { uid: r.uid, pod: `${w.info.namespace}/${w.info.name}` });
        this.opts.onChange();
        return ack();
      }
      case 'snapshot_sent':
        return ack(await this.snapshotSent());
    }
  }

  /** Validates and records an add; returns the Ack's error ('' = accepted). */
  private add(r: Extract<WorkloadRequest, { kind: 'add' }>, fds: number[]): string {
    const refuse = (why: string) => {
      closeFds(fds);
      return why;
    };
    if (fds.length === 0) return refuse(`add ${r.uid}: no network namespace fd`);
    if (!r.info || !r.info.namespace || !r.info.name) return refuse(`add ${r.uid}: workload_info with name and namespace is required`);
    if (fds.length !== 1 + r.listenerPorts.length) return refuse(`add ${r.uid}: ${fds.length} fds for a netns and ${r.listenerPorts.length} listener port(s)`);
    const native = loadNative();
    let netnsId: string;
    try {
      const ns = native.fdInfo(fds[0]!);
      if (ns.kind !== 'netns') return refuse(`add ${r.uid}: the first fd is not a network namespace`);
      netnsId = `${ns.dev}:${ns.ino}`;
      for (let i = 0; i < r.listenerPorts.length; i++) {
        const l = native.fdInfo(fds[i + 1]!);
        if (l.kind !== 'socket' || l.socketType !== 1 || !l.listening || l.port !== r.listenerPorts[i]) {
          return refuse(`add ${r.uid}: fd ${i + 1} is not a listening TCP socket on port ${r.listenerPorts[i]}`);
        }
      }
    } catch (e: unknown) {
      return refuse(`add ${r.uid}: cannot inspect its fds: ${describeError(e).message}`);
    }
    const listeners = new Map(r.listenerPorts.map((p, i) => [p, fds[i + 1]!]));
    const before = this.byUid.get(r.uid);
    const next: ZdsWorkload = { uid: r.uid, info: r.info, netnsFd: fds[0]!, netnsId, listeners, listenersVersion: ++this.listenersVersion };
    this.byUid.set(r.uid, next);
    this.seenThisConnection.add(r.uid);
    if (before) closeWorkload(before);
    this.logger.info(before ? (before.netnsId === netnsId ? 'pod re-sent: same sandbox, new listeners' : 'pod re-sent with a new sandbox') : 'pod added by the node agent', {
      uid: r.uid, pod: `${r.info.namespace}/${r.info.name}`, listeners: r.listenerPorts,
    });
    this.opts.onChange();
    return '';
  }

  private async snapshotSent(): Promise<string> {
    let forgotten = 0;
    for (const [uid, w] of [...this.byUid]) {
      if (this.seenThisConnection.has(uid)) continue;
      this.byUid.delete(uid);
      closeWorkload(w);
      forgotten++;
    }
    if (forgotten > 0) this.opts.onChange();
    this.logger.info('snapshot received', { pods: this.byUid.size, forgotten });
    this.snapshots++;
    const deadline = this.opts.clock.now() + (this.opts.readyTimeoutMs ?? 20_000);
    for (;;) {
      const r = this.opts.ready();
      if (r.ready) break;
      if (this.opts.clock.now() >= deadline) return `not serving the snapshot yet: ${r.reason ?? 'not ready'}`;
      await new Promise<void>((resolve) => this.opts.clock.setTimeout(resolve, 50));
    }
    return '';
  }
}

function closeWorkload(w: ZdsWorkload): void {
  closeFds([w.netnsFd, ...w.listeners.values()]);
  w.listeners.clear();
}
