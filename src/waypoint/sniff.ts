// What a tunnel to the waypoint carries, from its first bytes: sniffProtocol decides (pure),
// sniff reads a stream until it can.
//
// Invariants:
// - `h2` only for the exact HTTP/2 client preface (h2c with prior knowledge, gRPC);
// - `http1` for `<METHOD> <target> HTTP/<anything>` where METHOD is a token of letters, digits,
//   `-` and `_` (any case: the HTTP/1.1 codec then answers 400 to a method that is not
//   upper-case, and 505 to a version other than 1.0 and 1.1 — `GET / HTTP/2.0` — rather than
//   the request slipping past L7 routing and policy as TCP to an application that may read it
//   as HTTP/1.1);
// - `tcp` for anything else, and for a client that sends nothing within the sniff deadline
//   (server-first protocols); `need-more` while the bytes so far are a prefix of either.
import type { Duplex } from 'node:stream';
import type { Clock } from '../core/clock.js';

export type SniffResult = 'http1' | 'h2' | 'tcp' | 'need-more';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const HTTP1_REQUEST_LINE = /^[A-Za-z][A-Za-z0-9_-]{0,19} [^ \r\n]+ HTTP\/[^\r\n]*\r?\n/;
const HTTP1_PREFIX = /^[A-Za-z][A-Za-z0-9_-]{0,19}( [^ \r\n]*( (H(T(T(P(\/[^\r\n]*(\r)?)?)?)?)?)?)?)?$/;
/** Longest request line we wait for before calling it TCP. */
const MAX_SNIFF_BYTES = 8192;

export function sniffProtocol(head: Buffer): SniffResult {
  const n = Math.min(head.length, H2_PREFACE.length);
  if (head.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) return head.length >= H2_PREFACE.length ? 'h2' : 'need-more';
  const text = head.subarray(0, MAX_SNIFF_BYTES).toString('latin1');
  if (HTTP1_REQUEST_LINE.test(text)) return 'http1';
  const line = text.split('\n')[0]!;
  if (!text.includes('\n') && head.length < MAX_SNIFF_BYTES && HTTP1_PREFIX.test(line)) return 'need-more';
  return 'tcp';
}

/** Reads until the protocol is known, then puts the bytes back (waypoints, sidecars, ingress gateways). */
export function sniff(stream: Duplex, timeoutMs: number, clock: Clock): Promise<Exclude<SniffResult, 'need-more'>> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const done = (r: Exclude<SniffResult, 'need-more'>): void => {
      timer.cancel();
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.pause();
      if (head.length) stream.unshift(head);
      resolve(r);
    };
    const onData = (c: Buffer): void => {
      head = Buffer.concat([head, c]);
      const r = sniffProtocol(head);
      if (r !== 'need-more') done(r);
    };
    const onEnd = (): void => {
      if (head.length) done('tcp');
      else { timer.cancel(); reject(new Error('the tunnel ended before any byte')); }
    };
    const timer = clock.setTimeout(() => done('tcp'), timeoutMs);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
  });
}
