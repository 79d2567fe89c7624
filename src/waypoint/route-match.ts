// Request matching and path arithmetic shared by the HTTPRoute and VirtualService compilers.
// Pure functions over a parsed request; no I/O.
//
// Invariants:
// - Paths are compared without the query string; rewrites keep the query string.
// - Gateway API PathPrefix is segment-wise: prefix "/abc" (or "/abc/") matches "/abc",
//   "/abc/" and "/abc/def", never "/abcd". Istio's uri.prefix is a plain string prefix.
// - Regular expressions match the whole value with RE2's semantics in linear time (re2js), as
//   Envoy's safe_regex does.
// - Header names are compared lower-case; several values of one header are joined with ","
//   before matching (RFC 9110 field combination).
import { compileFullRegex, type FullRegex } from '../config/re2.js';

export type PathMatcher =
  | { kind: 'exact'; value: string; ignoreCase?: boolean }
  /** `segments`: Gateway API segment-wise prefix (value has no trailing "/", "" = everything). */
  | { kind: 'prefix'; value: string; segments: boolean; ignoreCase?: boolean }
  | { kind: 'regex'; source: string; re: FullRegex };

export type StringMatcher =
  | { kind: 'exact'; value: string }
  | { kind: 'prefix'; value: string }
  | { kind: 'regex'; source: string; re: FullRegex }
  | { kind: 'present' };

export interface CompiledMatch {
  path?: PathMatcher;
  /** name (lower-case) -> matcher; all must hold. `absent` ones must not. */
  headers: { name: string; matcher: StringMatcher }[];
  absentHeaders: { name: string; matcher: StringMatcher }[];
  query: { name: string; matcher: StringMatcher }[];
  method?: StringMatcher;
  authority?: StringMatcher;
}

export interface ParsedRequest {
  method: string;
  /** Path without the query string. */
  pathname: string;
  /** "?a=b" or "". */
  search: string;
  /** Host without port. */
  hostname: string;
  /** Port given in the Host header, if any. */
  hostPort?: number;
  headers: Record<string, string | string[] | undefined>;
  query: URLSearchParams;
}

export function parseRequest(req: { method: string; path: string; host: string; headers: Record<string, string | string[] | undefined> }): ParsedRequest {
  const q = req.path.indexOf('?');
  const pathname = q >= 0 ? req.path.slice(0, q) : req.path;
  const search = q >= 0 ? req.path.slice(q) : '';
  const { hostname, port } = splitHost(req.host);
  return { method: req.method.toUpperCase(), pathname: pathname || '/', search, hostname, hostPort: port, headers: req.headers, query: new URLSearchParams(search) };
}

export function splitHost(host: string): { hostname: string; port?: number } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(host);
  if (!m) return { hostname: host };
  return { hostname: m[1]!, port: m[2] !== undefined ? Number(m[2]) : undefined };
}

/** A full-match regular expression (Envoy/RE2 semantics: the whole value must match; linear time). */
export function fullRegex(source: string, ignoreCase = false): FullRegex {
  return compileFullRegex(source, { ignoreCase });
}

export function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

export function matchString(m: StringMatcher, value: string | undefined): boolean {
  if (value === undefined) return false;
  switch (m.kind) {
    case 'exact': return value === m.value;
    case 'prefix': return value.startsWith(m.value);
    case 'regex': return m.re.test(value);
    case 'present': return true;
  }
}

export function matchPath(m: PathMatcher, pathname: string): boolean {
  switch (m.kind) {
    case 'exact': return m.ignoreCase ? pathname.toLowerCase() === m.value.toLowerCase() : pathname === m.value;
    case 'prefix': {
      const p = m.ignoreCase ? pathname.toLowerCase() : pathname;
      const v = m.ignoreCase ? m.value.toLowerCase() : m.value;
      if (!m.segments) return p.startsWith(v);
      return v === '' || p === v || p.startsWith(v + '/');
    }
    case 'regex': return m.re.test(pathname);
  }
}

export function matchRequest(m: CompiledMatch, r: ParsedRequest): boolean {
  if (m.path && !matchPath(m.path, r.pathname)) return false;
  if (m.method && !matchString(m.method, r.method)) return false;
  if (m.authority && !matchString(m.authority, r.hostname)) return false;
  for (const h of m.headers) if (!matchString(h.matcher, headerValue(r.headers, h.name))) return false;
  for (const h of m.absentHeaders) if (matchString(h.matcher, headerValue(r.headers, h.name))) return false;
  for (const q of m.query) {
    const v = r.query.get(q.name) ?? undefined; // the first value, as Gateway API allows
    if (!matchString(q.matcher, v)) return false;
  }
  return true;
}

/** Gateway API PathPrefix value as matched: trailing "/" ignored, "/" means everything (""). */
export function normalizePrefix(value: string): string {
  return value.replace(/\/+$/, '');
}

/**
 * Gateway API ReplacePrefixMatch: swap the matched (segment-wise) prefix for `replacement`,
 * keeping the rest of the path. Follows the table in the Gateway API spec:
 * /foo/bar,/foo,/xyz -> /xyz/bar; /foo/,/foo,/xyz -> /xyz/; /foo,/foo,"" -> /; /foo/,/foo,/ -> /.
 */
export function replacePrefixSegments(pathname: string, matchedPrefix: string, replacement: string): string {
  const prefix = normalizePrefix(matchedPrefix);
  const rest = pathname.slice(prefix.length); // "" or starts with "/"
  const out = normalizePrefix(replacement) + rest;
  return out === '' ? '/' : out;
}

/** Envoy prefix_rewrite (Istio rewrite.uri after a prefix match): a plain string swap. */
export function replacePrefixPlain(pathname: string, matchedPrefix: string, replacement: string): string {
  return replacement + pathname.slice(matchedPrefix.length);
}
