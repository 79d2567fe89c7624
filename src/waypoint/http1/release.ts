// Ending the codec's hold on a stream: handing a connection's raw stream over when it stops
// being HTTP/1.1 (a 101 switch), and cutting a body short.
import type { Duplex, Readable } from 'node:stream';

/**
 * Takes the codec's listeners off `stream` (an error listener stays, so a late error is not
 * thrown), pauses it, and puts `front` (bytes already read past the HTTP head) back in
 * front of what comes next. The new owner resumes it.
 */
export function releaseStream(stream: Duplex, listeners: Record<string, Parameters<Duplex['off']>[1]>, front: Buffer): Duplex {
  for (const [event, fn] of Object.entries(listeners)) stream.off(event, fn);
  stream.on('error', () => {});
  stream.pause();
  if (front.length) stream.unshift(Buffer.from(front));
  return stream;
}

/** A body cut short: an error for whoever reads it (none listening: no error, as node:http). */
export function destroyCut(body: Readable, e: Error = Object.assign(new Error('aborted'), { code: 'ECONNRESET' })): void {
  if (body.readableEnded || body.destroyed) return;
  body.destroy(body.listenerCount('error') > 0 ? e : undefined);
}
