// Writing HTTP/1.1 heads and chunk framing (pure, apart from the Buffers it returns).
//
// Invariants:
// - A header name that is not a token, or a value holding CR, LF or NUL, is refused
//   (InvalidHeaderError) before a byte is written: a route's header edit cannot split a
//   message. Parsed headers always pass; the check guards configured edits.
// - Heads are latin1, as llhttp hands header bytes to JS: what was received goes out byte for byte.
import { STATUS_CODES } from 'node:http';
import type { Writable } from 'node:stream';

export type HeaderValue = string | string[] | number | undefined;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\r\n\0]/;

export class InvalidHeaderError extends Error {
  readonly code = 'AMBIT_ERR_INVALID_HEADER';
  constructor(name: string) {
    super(`header ${JSON.stringify(name)} has an invalid name or value; check the route's header filters`);
  }
}

/** `name: value\r\n` lines for every header not in `skip` (an array value gives one line per element). */
export function headerLines(headers: Record<string, HeaderValue>, skip?: ReadonlySet<string>): string {
  let out = '';
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined || skip?.has(k)) continue;
    if (!TOKEN.test(k)) throw new InvalidHeaderError(k);
    if (Array.isArray(v)) {
      for (const one of v) out += line(k, one);
    } else out += line(k, String(v));
  }
  return out;
}

function line(k: string, v: string): string {
  if (BAD_VALUE.test(v)) throw new InvalidHeaderError(k);
  return `${k}: ${v}\r\n`;
}

export function statusLine(status: number, minor: number): string {
  return `HTTP/1.${minor} ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
}

function chunkHeader(length: number): Buffer {
  return Buffer.from(`${length.toString(16)}\r\n`, 'latin1');
}

const CRLF = Buffer.from('\r\n', 'latin1');

/** One chunk of a chunked body, in one vectored write (after `head`, when given); write()'s result. */
export function writeChunk(s: Writable, chunk: Buffer, head?: Buffer): boolean {
  s.cork();
  if (head) s.write(head);
  s.write(chunkHeader(chunk.length));
  s.write(chunk);
  const ok = s.write(CRLF);
  s.uncork();
  return ok;
}
export const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

/** The last chunk with trailer lines. */
export function lastChunk(trailers: Record<string, HeaderValue> | undefined): Buffer {
  if (!trailers || Object.keys(trailers).length === 0) return LAST_CHUNK;
  return Buffer.from(`0\r\n${headerLines(trailers)}\r\n`, 'latin1');
}

/** Responses that never carry a body, whatever their headers say. */
export function bodiless(status: number, method: string): boolean {
  return method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
}
