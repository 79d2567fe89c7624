// Copies bytes both ways between two duplexes (a TCP socket, an HBONE stream) with TCP's
// semantics, and reports what happened.
//
// Call it as relay(downstream, upstream): `a` is the side that opened the connection (the
// captured client socket on an outbound ztunnel, the HBONE stream on an inbound one), `b`
// the side toward the destination.
//
// Invariants:
// - Half-close is preserved: when one side's readable ends (TCP FIN, HTTP/2 END_STREAM) the
//   other side's writable is ended once everything before it is written; the opposite
//   direction keeps flowing until it ends too. allowHalfOpen is set on both sides, so a
//   net.Socket does not end its write side by itself when it receives a FIN.
// - An error or reset on either side resets the other promptly: a TCP socket with
//   resetAndDestroy() (RST), an HTTP/2 stream with RST_STREAM(CONNECT_ERROR) as RFC 9113
//   section 8.5 asks, anything else with destroy(). Limit: once a FIN has been sent on a TCP
//   socket, libuv cannot send a RST any more (uv_tcp_close_reset refuses after shutdown), so a
//   reset arriving after a half-close closes that socket instead; its peer learns of it with
//   a RST on its next write. (Fixable with SO_LINGER{1,0} via the native addon.) And when
//   bytes reach the peer's kernel just before the RST and its reader has not run yet, Linux
//   hands it those bytes and then a clean end, not ECONNRESET (corking keeps the bytes of
//   the same turn back, so they are dropped with the reset instead).
//   A side that closes without having both
//   ended its readable and finished its writable (or an HTTP/2 stream closed with a non-zero
//   code) counts as reset.
// - Backpressure: a direction stops reading its source while the destination holds at least
//   highWaterMarkBytes unwritten and resumes on the destination's 'drain'. So a slow reader
//   stalls its writer without unbounded buffering, and flow control never deadlocks.
// - Writes to a socket are coalesced: the first chunk of an event-loop turn corks it and a
//   setImmediate uncorks it, so the chunks delivered in one turn (an HTTP/2 stream hands over
//   ~8 KiB pieces, one per TLS record boundary) leave in one writev instead of one syscall
//   each. No data waits longer than the current turn. Writes to an HTTP/2 stream go straight
//   in: its session coalesces them (all its streams' data of a turn in one TLS write).
// - The per-chunk path is one add, one write and one length comparison (plus the cork/
//   setImmediate once per turn): no closures, no allocation of our own.
// - `done` resolves exactly once, after both sides emitted 'close' (or were already
//   destroyed when the relay started), and never rejects.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { constants as h2 } from 'node:http2';
import type { Duplex } from 'node:stream';
import { AmbitError } from '../core/errors.js';

export interface RelayResult {
  /** Bytes read from `b` and written to `a`: what the downstream received (istio_tcp_received_bytes). */
  bytesInbound: number;
  /** Bytes read from `a` and written to `b`: what the downstream sent (istio_tcp_sent_bytes). */
  bytesOutbound: number;
  /** Set when closedBy is 'error': the first error or reset seen. */
  error?: Error;
  /** Which side the error or reset came from. */
  errorSide?: 'a' | 'b';
  /** Set when closedBy is 'abort'. */
  abortReason?: string;
  /**
   * 'a' or 'b': a clean close, started by that side ending its stream first.
   * 'error': one side errored or was reset (see error, errorSide). 'abort': abort() was called.
   */
  closedBy: 'a' | 'b' | 'abort' | 'error';
}

export interface RelayOptions {
  /** Unwritten bytes at the destination above which the source is paused (default 2 MiB). */
  highWaterMarkBytes?: number;
}

export interface Relay {
  done: Promise<RelayResult>;
  /** Tears both sides down with a reset; `reason` ends up in the result. */
  abort(reason: string): void;
}

/**
 * 2 MiB, half an HBONE stream window. With 256 KiB a single bulk stream paused and resumed
 * its source every few reads (an epoll_ctl pair each time, and the HTTP/2 window refilled in
 * small steps): iperf3 through two ztunnels measured 1.4–2.0 Gbit/s, 1.9–2.9 with 2 MiB, at
 * the same CPU. The cost is memory only under a slow reader: at most this much per
 * direction of a connection.
 */
export const RELAY_HIGH_WATER_MARK_BYTES = 2 * 1024 * 1024;

interface Http2StreamLike extends Duplex {
  rstCode: number | undefined;
  aborted: boolean;
  close(code?: number, callback?: () => void): void;
}

function isHttp2Stream(d: Duplex): d is Http2StreamLike {
  return 'rstCode' in d && 'session' in d && typeof (d as unknown as { close?: unknown }).close === 'function';
}

const EMPTY = Buffer.alloc(0);

/**
 * Sends RST_STREAM(code) on an HTTP/2 stream without a preceding END_STREAM.
 *
 * Node's stream.close(code) ends the writable side first; with nothing queued, _final runs at
 * once and an empty DATA frame with END_STREAM leaves before the RST_STREAM, so the peer sees
 * a clean half-close (and would send its TCP peer a FIN) before the reset. An empty write
 * still in flight defers _final until after the RST_STREAM has been submitted; nghttp2 then
 * never sends the END_STREAM. Uses only public API.
 */
export function resetHttp2Stream(stream: Duplex & { close(code?: number): void; closed?: boolean }, code: number): void {
  if (stream.destroyed || stream.closed) return;
  if (!stream.writableEnded) stream.write(EMPTY);
  stream.close(code);
}

/** Resets a duplex the way its protocol does (RST for TCP, RST_STREAM for HTTP/2). */
export function resetDuplex(d: Duplex, http2Code: number = h2.NGHTTP2_CONNECT_ERROR): void {
  if (d.destroyed) return;
  try {
    if (isHttp2Stream(d)) {
      resetHttp2Stream(d, http2Code);
      return;
    }
    if (d instanceof net.Socket && !(d instanceof tls.TLSSocket)) {
      d.resetAndDestroy();
      return;
    }
  } catch {
    // Not a TCP handle (e.g. a pipe), or already torn down: fall through to destroy.
  }
  d.destroy();
}

/** One direction: src -> dst. */
class Pump {
  bytes = 0;
  private paused = false;
  private corked = false;
  private readonly uncork: () => void;
  readonly onData: (chunk: Buffer) => void;
  readonly onDrain: () => void;
  readonly onEnd: () => void;

  constructor(
    private readonly src: Duplex,
    private readonly dst: Duplex,
    private readonly hwm: number,
    onEnd: () => void,
  ) {
    // An HTTP/2 stream is not corked: its session already sends everything its streams were
    // given during a turn in one write, and a write made from a setImmediate would be sent
    // only on the next turn (Node runs the session's native immediate before JS immediates).
    const coalesce = !isHttp2Stream(dst);
    this.onData = (chunk: Buffer): void => {
      this.bytes += chunk.length;
      if (coalesce && !this.corked) {
        this.corked = true;
        this.dst.cork();
        setImmediate(this.uncork);
      }
      this.dst.write(chunk);
      if (this.dst.writableLength >= this.hwm) {
        this.paused = true;
        this.src.pause();
      }
    };
    this.uncork = (): void => {
      this.corked = false;
      this.dst.uncork();
    };
    this.onDrain = (): void => {
      if (this.paused) {
        this.paused = false;
        this.src.resume();
      }
    };
    this.onEnd = onEnd;
  }
}

type Side = 'a' | 'b';

class RelayImpl implements Relay {
  readonly done: Promise<RelayResult>;
  private resolve!: (r: RelayResult) => void;
  private readonly aToB: Pump;
  private readonly bToA: Pump;
  private firstEnd: Side | undefined;
  private error: Error | undefined;
  private errorSide: Side | undefined;
  private abortReason: string | undefined;
  private aClosed = false;
  private bClosed = false;
  private finished = false;

  constructor(private readonly a: Duplex, private readonly b: Duplex, options: RelayOptions) {
    this.done = new Promise((resolve) => { this.resolve = resolve; });
    // Writing more than the destination's own highWaterMark is allowed (write() returning
    // false is advice); 'drain' is still emitted because that write returned false.
    const hwmFor = (d: Duplex): number => Math.max(options.highWaterMarkBytes ?? RELAY_HIGH_WATER_MARK_BYTES, d.writableHighWaterMark);
    this.aToB = new Pump(a, b, hwmFor(b), () => this.onEnd('a'));
    this.bToA = new Pump(b, a, hwmFor(a), () => this.onEnd('b'));
    this.wire(a, 'a', this.aToB, this.bToA);
    this.wire(b, 'b', this.bToA, this.aToB);
    if (a.destroyed) this.onClose('a');
    if (b.destroyed) this.onClose('b');
  }

  private wire(d: Duplex, side: Side, out: Pump, into: Pump): void {
    // allowHalfOpen is read when the readable ends (Duplex and net.Socket), so setting it
    // here keeps a socket from ending its write side on the peer's FIN.
    (d as { allowHalfOpen: boolean }).allowHalfOpen = true;
    d.on('data', out.onData);
    d.on('end', out.onEnd);
    d.on('drain', into.onDrain);
    d.on('error', (e: Error) => this.onError(side, e));
    d.on('close', () => this.onClose(side));
  }

  private onEnd(side: Side): void {
    const src = side === 'a' ? this.a : this.b;
    // Node ends the readable of a reset HTTP/2 stream ('end' before 'close'); that is no FIN.
    if (isHttp2Stream(src)) {
      const problem = http2Reset(src);
      if (problem) {
        this.onError(side, new AmbitError('AMBIT_ERR_HBONE', `relay side ${side} ${problem}`, { details: { side } }));
        return;
      }
    }
    this.firstEnd ??= side;
    const other = side === 'a' ? this.b : this.a;
    if (!other.destroyed && !other.writableEnded) other.end();
  }

  private onError(side: Side, e: Error): void {
    if (this.error === undefined && this.abortReason === undefined) {
      this.error = e;
      this.errorSide = side;
    }
    resetDuplex(side === 'a' ? this.b : this.a);
  }

  private onClose(side: Side): void {
    if (side === 'a') {
      if (this.aClosed) return;
      this.aClosed = true;
    } else {
      if (this.bClosed) return;
      this.bClosed = true;
    }
    const d = side === 'a' ? this.a : this.b;
    if (this.error === undefined && this.abortReason === undefined) {
      const problem = abnormalClose(d);
      if (problem) {
        this.error = new AmbitError('AMBIT_ERR_HBONE', `relay side ${side} ${problem}`, { details: { side } });
        this.errorSide = side;
      }
    }
    if (this.error !== undefined || this.abortReason !== undefined) resetDuplex(side === 'a' ? this.b : this.a);
    if (this.aClosed && this.bClosed) this.finish();
  }

  abort(reason: string): void {
    if (this.finished || this.abortReason !== undefined) return;
    if (this.error === undefined) this.abortReason = reason;
    resetDuplex(this.a, h2.NGHTTP2_CANCEL);
    resetDuplex(this.b, h2.NGHTTP2_CANCEL);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const result: RelayResult = {
      bytesInbound: this.bToA.bytes,
      bytesOutbound: this.aToB.bytes,
      closedBy: this.abortReason !== undefined ? 'abort' : this.error !== undefined ? 'error' : (this.firstEnd ?? 'a'),
    };
    if (this.abortReason !== undefined) result.abortReason = this.abortReason;
    else if (this.error !== undefined) {
      result.error = this.error;
      result.errorSide = this.errorSide;
    }
    this.resolve(result);
  }
}

/** Why a closed duplex did not close cleanly, or undefined when it did. */
function abnormalClose(d: Duplex): string | undefined {
  // An HTTP/2 stream that nghttp2 closed with code 0 saw END_STREAM both ways (its 'finish'
  // may come after 'close', so writableFinished proves nothing here).
  if (isHttp2Stream(d)) return http2Reset(d) ?? (d.readableEnded ? undefined : 'closed before its peer finished sending');
  if (!d.readableEnded) return 'closed before its peer finished sending (reset)';
  if (!d.writableFinished) return 'closed before all data was written to it';
  return undefined;
}

function http2Reset(d: Http2StreamLike): string | undefined {
  const code = d.rstCode ?? h2.NGHTTP2_NO_ERROR;
  if (code !== h2.NGHTTP2_NO_ERROR) return `was reset (RST_STREAM code ${code})`;
  if (d.aborted) return 'was reset (RST_STREAM before END_STREAM)';
  return undefined;
}

/** Relays between a (downstream) and b (upstream) until both are closed; see the invariants above. */
export function relay(a: Duplex, b: Duplex, options: RelayOptions = {}): Relay {
  return new RelayImpl(a, b, options);
}
