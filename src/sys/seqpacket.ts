// Unix SOCK_SEQPACKET sockets that carry file descriptors (SCM_RIGHTS), driven by the Node
// event loop: the transport of the ZDS protocol between the node agent and the ztunnel.
//
// Invariants:
//  - Nothing blocks the event loop: the addon's sockets are non-blocking and a uv_poll_t on
//    each fd says when to read, accept or write again (native/ambit_fdpass.c).
//  - One message in, one message out: a SEQPACKET socket keeps message boundaries. A message
//    longer than maxMessageBytes arrives truncated and is reported as such (never parsed as
//    if whole); more fds than maxFds arrive as `ctruncated`.
//  - Fds a message carries belong to whoever handles the 'message' event; a connection that
//    is closed or has no listener closes them, so they never leak.
//  - send() keeps order: messages queue while the socket is full (EAGAIN) and leave in order
//    once it is writable. A queued message's fds are the caller's until it has left (the
//    kernel duplicates them on sendmsg); send() resolves then.
//  - close() is idempotent; it stops the poll handle before closing the fd, so libuv never
//    polls a closed (or reused) fd number.
import { EventEmitter } from 'node:events';
import { rmSync, statSync } from 'node:fs';
import { AmbitError, errnoCode } from '../core/errors.js';
import { loadNative, type NativeAddon, type PollHandle, type ReceivedMessage } from './native.js';

const READABLE = 1;
const WRITABLE = 2;
const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;
const DEFAULT_MAX_FDS = 8;
/** Messages a connection may queue while the peer is not reading. */
const MAX_QUEUED = 1024;

export interface SeqpacketMessage {
  data: Buffer;
  fds: number[];
  truncated: boolean;
}

export interface SeqpacketOptions {
  maxMessageBytes?: number;
  maxFds?: number;
}

export interface SeqpacketPeer {
  pid: number;
  uid: number;
  gid: number;
}

interface Pending {
  data: Uint8Array;
  fds: readonly number[];
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * One connected SEQPACKET socket. Events: 'message' (SeqpacketMessage), 'close' (Error |
 * undefined: the peer left, or a socket error).
 */
export class SeqpacketConnection extends EventEmitter {
  private readonly native: NativeAddon;
  private poll: PollHandle | undefined;
  private fdValue: number;
  private readonly queue: Pending[] = [];
  private readonly maxBytes: number;
  private readonly maxFds: number;
  private closedFlag = false;

  constructor(fd: number, readonly peer: SeqpacketPeer | undefined, options: SeqpacketOptions = {}) {
    super();
    this.native = loadNative();
    this.fdValue = fd;
    this.maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxFds = options.maxFds ?? DEFAULT_MAX_FDS;
    this.poll = this.native.poll(fd, READABLE, (status, events) => this.onPoll(status, events));
  }

  /** Connects to a listening SEQPACKET socket at `path`. */
  static connect(path: string, options: SeqpacketOptions = {}): SeqpacketConnection {
    let fd: number;
    try {
      fd = loadNative().seqpacketConnect(path);
    } catch (e: unknown) {
      const code = errnoCode(e);
      throw new AmbitError('AMBIT_ERR_CONNECT', `cannot connect to ${path}: ${e instanceof Error ? e.message : String(e)}`, {
        cause: e,
        hint: code === 'ENOENT' || code === 'ECONNREFUSED' ? 'is the node agent running on this node?' : undefined,
        details: { path, errno: code },
      });
    }
    return new SeqpacketConnection(fd, undefined, options);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Sends one message with `fds` as SCM_RIGHTS; resolves once it has left. */
  send(data: Uint8Array, fds: readonly number[] = []): Promise<void> {
    if (this.closedFlag) return Promise.reject(new AmbitError('AMBIT_ERR_CONNECT', 'the SEQPACKET connection is closed'));
    if (this.queue.length >= MAX_QUEUED) return Promise.reject(new AmbitError('AMBIT_ERR_CONNECT', `the peer does not read: ${MAX_QUEUED} messages queued`));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ data, fds, resolve, reject });
      if (this.queue.length === 1) this.flush();
    });
  }

  /** Closes the socket; queued messages are rejected. Idempotent. */
  close(error?: Error): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.poll?.stop();
    this.poll = undefined;
    try {
      this.native.closeFd(this.fdValue);
    } catch {
      // already gone
    }
    this.fdValue = -1;
    const e = error ?? new AmbitError('AMBIT_ERR_CONNECT', 'the SEQPACKET connection was closed');
    for (const p of this.queue.splice(0)) p.reject(e);
    this.emit('close', error);
  }

  private flush(): void {
    while (this.queue.length > 0 && !this.closedFlag) {
      const p = this.queue[0]!;
      let sent: boolean;
      try {
        sent = this.native.sendMsg(this.fdValue, p.data, p.fds);
      } catch (e: unknown) {
        this.close(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      if (!sent) {
        this.poll?.update(READABLE | WRITABLE);
        return;
      }
      this.queue.shift();
      p.resolve();
    }
    this.poll?.update(READABLE);
  }

  private onPoll(status: number, events: number): void {
    if (this.closedFlag) return;
    if (status < 0) {
      this.close(new AmbitError('AMBIT_ERR_CONNECT', `poll error ${status} on a SEQPACKET connection`));
      return;
    }
    if (events & WRITABLE) this.flush();
    if (events & (READABLE | 4)) this.readAll();
  }

  private readAll(): void {
    for (let i = 0; i < 256 && !this.closedFlag; i++) {
      let r: ReceivedMessage | { eof: true } | null;
      try {
        r = this.native.recvMsg(this.fdValue, this.maxBytes, this.maxFds);
      } catch (e: unknown) {
        this.close(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      if (r === null) return;
      if ('eof' in r) {
        this.close();
        return;
      }
      const message: SeqpacketMessage = { data: r.data, fds: r.fds, truncated: r.truncated || r.ctruncated };
      if (this.listenerCount('message') === 0) {
        closeFds(message.fds);
        continue;
      }
      this.emit('message', message);
    }
  }
}

/**
 * A listening SEQPACKET socket at a filesystem path. Events: 'connection' (SeqpacketConnection),
 * 'error'. A stale socket file (left by a crash, nobody listening) is replaced; a live one is
 * refused with EADDRINUSE.
 */
export class SeqpacketServer extends EventEmitter {
  private readonly native: NativeAddon;
  private poll: PollHandle | undefined;
  private fd = -1;

  constructor(private readonly options: SeqpacketOptions = {}) {
    super();
    this.native = loadNative();
  }

  listen(path: string, backlog = 128): void {
    removeStaleSocket(path);
    try {
      this.fd = this.native.seqpacketListen(path, backlog);
    } catch (e: unknown) {
      throw new AmbitError('AMBIT_ERR_CONNECT', `cannot listen on ${path}: ${e instanceof Error ? e.message : String(e)}`, {
        cause: e,
        hint: errnoCode(e) === 'EADDRINUSE' ? 'another process listens there (is another node agent running for this node?)' : undefined,
      });
    }
    this.path = path;
    this.poll = this.native.poll(this.fd, READABLE, (status) => {
      if (status < 0) {
        this.emit('error', new AmbitError('AMBIT_ERR_CONNECT', `poll error ${status} on ${path}`));
        return;
      }
      this.acceptAll();
    });
  }

  path: string | undefined;

  close(): void {
    if (this.fd < 0) return;
    this.poll?.stop();
    this.poll = undefined;
    this.native.closeFd(this.fd);
    this.fd = -1;
    if (this.path) rmSync(this.path, { force: true });
  }

  private acceptAll(): void {
    for (let i = 0; i < 64 && this.fd >= 0; i++) {
      let peer;
      try {
        peer = this.native.acceptPeer(this.fd);
      } catch (e: unknown) {
        this.emit('error', e);
        return;
      }
      if (!peer) return;
      const conn = new SeqpacketConnection(peer.fd, { pid: peer.pid, uid: peer.uid, gid: peer.gid }, this.options);
      if (this.listenerCount('connection') === 0) conn.close();
      else this.emit('connection', conn);
    }
  }
}

/** Closes fds the caller owns and will not use (errors ignored: each is closed at most once). */
export function closeFds(fds: readonly number[]): void {
  const native = loadNative();
  for (const fd of fds) {
    try {
      native.closeFd(fd);
    } catch {
      // already closed
    }
  }
}

/** A socket file nobody listens on (connect refused) is removed, so listen can bind again. */
function removeStaleSocket(path: string): void {
  let isSocket = false;
  try {
    isSocket = statSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) return;
  try {
    const fd = loadNative().seqpacketConnect(path);
    loadNative().closeFd(fd);
  } catch (e: unknown) {
    if (errnoCode(e) === 'ECONNREFUSED' || errnoCode(e) === 'EPROTOTYPE') rmSync(path, { force: true });
  }
}
