// Normalization of an HTTP request before it is authorized or routed, as Istio documents it
// for its proxies ("Authorization Policy Normalization"). What the policies see is what the
// application receives: the proxy forwards the normalized target.
//
// Invariants:
// - The request target is parsed first: origin form (`/path?query`) is kept; absolute form
//   (`http://host:port/path?query`) becomes the path and the authority; `*` is kept for
//   OPTIONS; anything else is refused (400).
// - Only the path is normalized; the query is carried over untouched. A fragment (never valid
//   in a request target) is dropped.
// - BASE: percent-encoded unreserved characters (ALPHA, DIGIT, `-`, `.`, `_`, `~`) are decoded
//   once (never twice: `%2561` becomes `%61`, not `a`), backslashes become `/`, and dot
//   segments are removed as RFC 3986 section 5.2.4 says, so the result never holds a `.` or
//   `..` segment and never climbs above the root. `%00` is refused (400), and so is a `%` not
//   followed by two hex digits: with every `%` starting a valid escape, decoding can never
//   make a new escape out of its neighbours (`%%36%31` would become `%61` otherwise), which
//   is what makes one pass enough.
// - MERGE_SLASHES: BASE, then runs of `/` become one. DECODE_AND_MERGE_SLASHES: `%2F` and
//   `%5C` (either case) are decoded first, then MERGE_SLASHES. NONE: the path as received.
// - Normalizing a normalized path changes nothing (idempotent), in every mode.

export type PathNormalizationMode = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';

export type NormalizedTarget =
  | { ok: true; path: string; query: string; authority: string | undefined }
  | { ok: false; status: 400; reason: string };

const MAX_TARGET_BYTES = 64 * 1024;

/**
 * Parse a request target and normalize its path. `authority` is set only for the absolute
 * form (it then replaces the Host / :authority of the request, as RFC 9112 section 3.2.2 says).
 */
export function normalizeRequestTarget(target: string, mode: PathNormalizationMode): NormalizedTarget {
  if (target.length === 0) return bad('empty request target');
  if (target.length > MAX_TARGET_BYTES) return bad('request target too long');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f]/.test(target)) return bad('request target holds a control character or a space');
  let rest = target;
  let authority: string | undefined;
  if (rest === '*') return { ok: true, path: '*', query: '', authority: undefined };
  if (!rest.startsWith('/')) {
    const abs = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(rest);
    if (!abs) return bad('request target is neither a path ("/...") nor an absolute URL');
    const scheme = abs[1]!.toLowerCase();
    if (scheme !== 'http' && scheme !== 'https') return bad(`request target has scheme "${scheme}"`);
    authority = abs[2]!;
    if (!/^[A-Za-z0-9._~!$&'()*+,;=:[\]%-]+$/.test(authority) || authority.includes('@')) return bad('request target has no valid host, or has user information');
    rest = abs[3]! === '' ? '/' : abs[3]!;
    if (!rest.startsWith('/') && !rest.startsWith('?')) return bad('request target is not a URL');
    if (rest.startsWith('?')) rest = `/${rest}`;
  }
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  const rawPath = q >= 0 ? rest.slice(0, q) : rest;
  const query = q >= 0 ? rest.slice(q) : '';
  const path = normalizePath(rawPath, mode);
  if (path === undefined) return bad('request path holds %00 or a "%" that does not start an escape');
  return { ok: true, path, query, authority };
}

/** The normalized path, or undefined when it must be refused (`%00`, a malformed escape). */
export function normalizePath(path: string, mode: PathNormalizationMode): string | undefined {
  if (path.includes('%') && (/%00/.test(path) || /%(?![0-9a-fA-F]{2})/.test(path))) return undefined;
  if (mode === 'NONE') return path;
  let p = path;
  if (mode === 'DECODE_AND_MERGE_SLASHES') p = p.replace(/%2f/gi, '/').replace(/%5c/gi, '\\');
  p = decodeUnreserved(p).replace(/\\/g, '/');
  p = removeDotSegments(p);
  if (mode === 'MERGE_SLASHES' || mode === 'DECODE_AND_MERGE_SLASHES') p = p.replace(/\/{2,}/g, '/');
  return p;
}

/** Percent-encodings of unreserved characters, decoded in one pass. */
function decodeUnreserved(p: string): string {
  if (!p.includes('%')) return p;
  return p.replace(/%([0-9a-fA-F]{2})/g, (whole, hex: string) => {
    const c = parseInt(hex, 16);
    const unreserved = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
    return unreserved ? String.fromCharCode(c) : whole;
  });
}

/**
 * RFC 3986 section 5.2.4 on an absolute path: `.` segments go, `..` removes the segment
 * before it (never above the root). A trailing `.` or `..` leaves a trailing `/`.
 */
export function removeDotSegments(p: string): string {
  if (!p.startsWith('/')) p = `/${p}`;
  if (!/(^|\/)\.\.?(\/|$)/.test(p)) return p;
  const segments = p.split('/');
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === '.') {
      if (last) out.push('');
    } else if (s === '..') {
      out.pop();
      if (last) out.push('');
    } else out.push(s);
  }
  return `/${out.join('/')}`;
}

/** An HTTP method Istio accepts: an upper-case token. */
export function isNormalMethod(method: string): boolean {
  return /^[A-Z][A-Z0-9_-]*$/.test(method);
}

function bad(reason: string): NormalizedTarget {
  return { ok: false, status: 400, reason };
}
