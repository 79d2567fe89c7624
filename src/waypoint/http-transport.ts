// A tunnel stream (an HTTP/2 stream) made fit to carry HTTP/1.1 for Node's http client and
// server, which expect a net.Socket.
//
// Invariants:
// - String chunks are turned into Buffers before a vectored write. Node 20's Http2Stream
//   corrupted the first bytes of a `_writev` batch holding latin1 strings (what http writes its
//   head as when corked): seen as "Received HTTP/0.9" by curl. Node 24 writes them intact; the
//   conversion stays because it costs nothing and `_writev` is an internal whose behaviour
//   test/unit/node-internals.test.ts checks both ways (with and without this wrapper).
// - No half-close: when the peer ends its side, this side ends too, so a keep-alive
//   connection closed by the server leaves the agent's free list instead of swallowing the
//   next request.
// - The socket methods http calls and a stream lacks (setKeepAlive, setNoDelay, ref, unref)
//   are no-ops: keepalive and Nagle belong to the TCP connection under the tunnel.
import type { Duplex } from 'node:stream';

type Chunk = { chunk: unknown; encoding: BufferEncoding | 'buffer' };
type WritevFn = (chunks: Chunk[], cb: (e?: Error | null) => void) => void;

export function asHttpTransport<T extends Duplex>(stream: T): T {
  const s = stream as unknown as Record<string, unknown> & { _writev?: WritevFn };
  const writev = s._writev;
  if (writev && !s.__ambitTransport) {
    s._writev = function (this: Duplex, chunks: Chunk[], cb: (e?: Error | null) => void): void {
      const fixed = chunks.map((c) => (typeof c.chunk === 'string' ? { chunk: Buffer.from(c.chunk, c.encoding === 'buffer' ? 'utf8' : c.encoding), encoding: 'buffer' as const } : c));
      writev.call(this, fixed, cb);
    };
  }
  for (const m of ['setKeepAlive', 'setNoDelay', 'ref', 'unref']) {
    if (typeof s[m] !== 'function') s[m] = function (this: unknown) { return this; };
  }
  if (!s.__ambitTransport) stream.once('end', () => { if (!stream.writableEnded) stream.end(); });
  s.__ambitTransport = true;
  return stream;
}
