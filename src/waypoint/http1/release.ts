// Handing a connection's raw stream over when it stops being HTTP/1.1 (a 101 switch).
import type { Duplex } from 'node:stream';

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
