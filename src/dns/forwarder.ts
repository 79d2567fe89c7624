// Forwarding questions the proxy does not answer to the upstream resolver.
//
// Invariants:
// - Each forwarded query gets a fresh random id (the client's is restored on the answer), and
//   only a datagram from an upstream's address and port, carrying that id and the same question
//   (the question section's bytes, not the name's text),
//   is taken as the answer (isAnswerTo): a late, stray or spoofed datagram is dropped.
// - Bounded: at most `maxOutstanding` queries wait for an upstream at once (per forwarder, and
//   through `shared` across forwarders); over that, forward() fails at once with 'overload'.
//   Every query is given up after `timeoutMs` ('timeout'). Both count as upstream failures.
// - UDP queries go upstream over UDP (a truncated answer is passed on: the client retries over
//   TCP); TCP queries go upstream over TCP, one connection per query.
// - One UDP socket per forwarder, made on first use and kept; close() fails what is pending.
import type dgram from 'node:dgram';
import type net from 'node:net';
import { randomInt } from 'node:crypto';
import type { Clock, TimerHandle } from '../core/clock.js';
import { isAnswerTo, MAX_UPSTREAM_RESPONSE_BYTES, withId, type DnsQuery } from './message.js';

export interface UpstreamAddress {
  ip: string;
  port: number;
}

export interface ForwarderTransport {
  /** A bound UDP socket from which upstream queries are sent (e.g. in the pod's network). */
  udp(): Promise<dgram.Socket>;
  /** A TCP connection to an upstream (connecting; 'connect'/'error' as net.connect). */
  tcp(dst: UpstreamAddress): net.Socket;
}

/** A count shared by several forwarders (the ztunnel-wide bound). */
export class OutstandingBudget {
  current = 0;
  constructor(readonly max: number) {}
}

export type ForwardFailure = 'timeout' | 'overload' | 'no-upstream' | 'network';

export class ForwardError extends Error {
  constructor(readonly kind: ForwardFailure, message: string) {
    super(message);
  }
}

export interface ForwarderOptions {
  upstreams: readonly UpstreamAddress[];
  transport: ForwarderTransport;
  clock: Clock;
  timeoutMs?: number;
  maxOutstanding?: number;
  shared?: OutstandingBudget;
}

interface Pending {
  q: DnsQuery;
  upstream: UpstreamAddress;
  resolve(b: Buffer): void;
  reject(e: Error): void;
  timer: TimerHandle;
}

export class DnsForwarder {
  private socket: Promise<dgram.Socket> | undefined;
  private readonly pending = new Map<number, Pending>();
  private next = 0;
  private closed = false;
  private outstanding = 0;

  constructor(private readonly o: ForwarderOptions) {}

  get inFlight(): number {
    return this.outstanding;
  }

  /** The upstream's answer to `q`, with q's id. Rejects with a ForwardError. */
  async forward(q: DnsQuery, protocol: 'udp' | 'tcp'): Promise<Buffer> {
    if (this.o.upstreams.length === 0) throw new ForwardError('no-upstream', 'no upstream resolver is configured');
    const max = this.o.maxOutstanding ?? 64;
    if (this.closed || this.outstanding >= max || (this.o.shared && this.o.shared.current >= this.o.shared.max)) {
      throw new ForwardError('overload', this.closed ? 'the DNS proxy is closing' : 'too many queries are waiting for the upstream resolver');
    }
    const upstream = this.o.upstreams[this.next++ % this.o.upstreams.length]!;
    this.outstanding++;
    if (this.o.shared) this.o.shared.current++;
    try {
      return protocol === 'udp' ? await this.viaUdp(q, upstream) : await this.viaTcp(q, upstream);
    } finally {
      this.outstanding--;
      if (this.o.shared) this.o.shared.current--;
    }
  }

  close(): void {
    this.closed = true;
    for (const p of this.pending.values()) {
      p.timer.cancel();
      p.reject(new ForwardError('network', 'the DNS proxy closed'));
    }
    this.pending.clear();
    void this.socket?.then((s) => { try { s.close(); } catch { /* already closed */ } }, () => {});
  }

  private async viaUdp(q: DnsQuery, upstream: UpstreamAddress): Promise<Buffer> {
    const socket = await this.udpSocket();
    let id = randomInt(0, 65536);
    for (let i = 0; this.pending.has(id) && i < 8; i++) id = randomInt(0, 65536);
    if (this.pending.has(id)) throw new ForwardError('overload', 'no free query id');
    return new Promise<Buffer>((resolve, reject) => {
      const timer = this.o.clock.setTimeout(() => {
        this.pending.delete(id);
        reject(new ForwardError('timeout', `no answer from ${upstream.ip}:${upstream.port} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { q, upstream, resolve, reject, timer });
      socket.send(withId(q.raw, id), upstream.port, upstream.ip, (e) => {
        if (!e) return;
        timer.cancel();
        this.pending.delete(id);
        reject(new ForwardError('network', `sending to ${upstream.ip}:${upstream.port}: ${e.message}`));
      });
    });
  }

  private udpSocket(): Promise<dgram.Socket> {
    if (!this.socket) {
      this.socket = this.o.transport.udp().then((s) => {
        s.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => this.onDatagram(msg, rinfo));
        s.on('error', () => { this.socket = undefined; });
        return s;
      });
      this.socket.catch(() => { this.socket = undefined; });
    }
    return this.socket;
  }

  private onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 2) return;
    const p = this.pending.get(msg.readUInt16BE(0));
    if (!p || p.upstream.port !== rinfo.port || p.upstream.ip !== rinfo.address.replace(/^::ffff:/, '')) return;
    if (!isAnswerTo(msg, { id: msg.readUInt16BE(0), question: p.q.question })) return;
    this.pending.delete(msg.readUInt16BE(0));
    p.timer.cancel();
    p.resolve(withId(msg, p.q.id));
  }

  private viaTcp(q: DnsQuery, upstream: UpstreamAddress): Promise<Buffer> {
    const id = randomInt(0, 65536);
    return new Promise<Buffer>((resolve, reject) => {
      const socket = this.o.transport.tcp(upstream);
      let buf = Buffer.alloc(0);
      const finish = (e: Error | undefined, answer?: Buffer) => {
        timer.cancel();
        socket.destroy();
        if (e) reject(e);
        else resolve(answer!);
      };
      const timer = this.o.clock.setTimeout(() => finish(new ForwardError('timeout', `no answer from ${upstream.ip}:${upstream.port} (tcp) within ${this.timeoutMs} ms`)), this.timeoutMs);
      socket.once('error', (e) => finish(new ForwardError('network', `tcp to ${upstream.ip}:${upstream.port}: ${e.message}`)));
      socket.once('connect', () => {
        const body = withId(q.raw, id);
        const len = Buffer.alloc(2);
        len.writeUInt16BE(body.length);
        socket.write(Buffer.concat([len, body]));
      });
      socket.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length > MAX_UPSTREAM_RESPONSE_BYTES + 2) { finish(new ForwardError('network', 'upstream answer too large')); return; }
        if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        if (!isAnswerTo(msg, { id, question: q.question })) { finish(new ForwardError('network', 'upstream sent something other than the answer')); return; }
        finish(undefined, withId(msg, q.id));
      });
      socket.once('end', () => finish(new ForwardError('network', `tcp to ${upstream.ip}:${upstream.port} closed before an answer`)));
    });
  }

  private get timeoutMs(): number {
    return this.o.timeoutMs ?? 5000;
  }
}
