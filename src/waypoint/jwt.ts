// JWT (RFC 7519, JWS compact serialization RFC 7515) verification against a JSON Web Key Set,
// as Envoy's jwt_authn filter does for an Istio RequestAuthentication rule. The cryptography,
// key selection and registered-claim checks are `jose`'s (`jwtVerify` over a local JWKS with
// an issuer, audiences, a clock tolerance and an algorithm allow-list); this file keeps what is
// Istio's and Envoy's: which algorithms and keys a mesh accepts, the audience normalization,
// and the words of each refusal (jwt_verify_lib's status strings, which operators search for).
// Never throws on untrusted input (a bad token is a verdict, not an error).
//
// Invariants:
// - Only asymmetric signatures are accepted: RS256/384/512, PS256/384/512, ES256/384/512
//   (JOSE `r||s` signatures; the curve must match the alg) and EdDSA over Ed25519 (as Envoy;
//   Ed448 is not accepted). `none` and HS* are refused (a shared secret in a mesh-wide JWKS
//   would let anyone who can read config mint tokens). jose gets the same list as its
//   `algorithms` allow-list.
// - Key selection (jose's local JWKS): with a `kid` in the header, only keys with that `kid`
//   are tried; without one, every key of a fitting type. A key whose `alg` is set must equal the
//   token's alg; a key whose `use` is set must be `sig`. Several fitting keys are tried in turn.
//   RSA keys under 2048 bits never verify anything. Only a key's public members are kept, so a
//   JWKS that (wrongly) carries private parts still yields public keys.
// - A `crit` header is refused: Ambit understands no JWS extension.
// - Checked before any signature work, from the decoded token: its shape, alg, crit and issuer
//   (`iss` must equal the provider's issuer exactly), so an operator reads "wrong issuer" rather
//   than "bad signature".
// - Time (seconds, jose's `currentDate` and `clockTolerance`): `exp` must be > now - skew;
//   `nbf` must be <= now + skew; `iat`, when present, must be a number and not later than
//   now + skew. Skew defaults to 60 s (Envoy's clock_skew_seconds). A token without `exp` is
//   accepted, as Envoy does unless require_expiration is set (Istio never sets it).
// - With audiences configured, `aud` (a string or an array) must contain one of them;
//   audiences compare after dropping an `http://` or `https://` scheme and a trailing `/`, as
//   jwt_verify_lib does (jose compares exactly, so it is given every spelling that normalizes
//   to a configured audience). No audiences configured: `aud` is not checked.
// - FIPS: jose verifies through WebCrypto, i.e. Node's OpenSSL, so under an OpenSSL FIPS
//   provider the provider does the work. Checked with OpenSSL 3.0.20's FIPS provider under
//   Node 24 (OpenSSL 3.5): RS*, PS*, ES256/384/512 and EdDSA (Ed25519, which that provider
//   implements) all verify, MD5 refused (test/direct/crypto-fips.test.ts runs this wherever a
//   provider is configured). A provider without Ed25519 would fail EdDSA tokens with
//   "Jwt verification fails"; nothing else changes.

import { createLocalJWKSet } from 'jose/jwks/local';
import { jwtVerify, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose/jwt/verify';
import type { JsonWebKey, webcrypto } from 'node:crypto';

export type { JsonWebKey };

export interface Jwks {
  keys: JsonWebKey[];
}

export type JwtVerdict =
  | { ok: true; header: Record<string, unknown>; claims: Record<string, unknown> }
  | { ok: false; reason: string };

export interface VerifyJwtOptions {
  issuer: string;
  /** Accepted `aud` values; empty/absent = `aud` not checked. */
  audiences?: string[];
  nowSec: number;
  /** Default 60. */
  clockSkewSec?: number;
}

export const DEFAULT_CLOCK_SKEW_SEC = 60;
/** Tokens longer than this are refused before any parsing (headers are bounded anyway). */
export const MAX_TOKEN_CHARS = 16 * 1024;

export const SUPPORTED_ALGS: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const SUPPORTED = new Set(SUPPORTED_ALGS);

const B64URL = /^[A-Za-z0-9_-]*$/;

function b64urlDecode(s: string): Buffer | null {
  if (!B64URL.test(s) || s.length % 4 === 1) return null;
  return Buffer.from(s, 'base64url');
}

function parseJsonObject(buf: Buffer): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(buf.toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const fail = (reason: string): JwtVerdict => ({ ok: false, reason });

type Shape = { header: Record<string, unknown>; claims: Record<string, unknown>; signatureBytes: number } | { reason: string };

/** The header and claims of a compact JWS, unverified, or why it is not one (Envoy's words). */
function inspect(token: string): Shape {
  if (token.length > MAX_TOKEN_CHARS) return { reason: `Jwt is longer than ${MAX_TOKEN_CHARS} characters` };
  const parts = token.split('.');
  if (parts.length !== 3) return { reason: 'Jwt is not in the form of Header.Payload.Signature' };
  const h = b64urlDecode(parts[0] as string);
  const p = b64urlDecode(parts[1] as string);
  const s = b64urlDecode(parts[2] as string);
  if (!h || !p || !s) return { reason: 'Jwt is not base64url encoded' };
  const header = parseJsonObject(h);
  if (!header) return { reason: 'Jwt header is an invalid JSON object' };
  const claims = parseJsonObject(p);
  if (!claims) return { reason: 'Jwt payload is an invalid JSON object' };
  return { header, claims, signatureBytes: s.length };
}

/** The header and claims of a compact JWS without verifying anything (null if malformed). */
export function decodeJwt(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } | null {
  const shape = inspect(token);
  return 'reason' in shape ? null : { header: shape.header, claims: shape.claims };
}

/** `https://a.example/` -> `a.example` (jwt_verify_lib's audience normalization). */
export function normalizeAudience(aud: string): string {
  let s = aud;
  if (s.startsWith('https://')) s = s.slice('https://'.length);
  else if (s.startsWith('http://')) s = s.slice('http://'.length);
  if (s.endsWith('/')) s = s.slice(0, -1);
  return s;
}

/** Every `aud` spelling that normalizes to one of `audiences` (what jose compares exactly). */
export function audienceSpellings(audiences: readonly string[]): string[] {
  const out = new Set<string>();
  for (const a of audiences) {
    const n = normalizeAudience(a);
    for (const scheme of ['', 'http://', 'https://']) {
      for (const slash of ['', '/']) {
        const v = `${scheme}${n}${slash}`;
        if (normalizeAudience(v) === n) out.add(v);
      }
    }
  }
  return [...out];
}

/** The `aud` claim as a list of strings (a string, or the strings of an array). */
export function audiencesOf(claims: Record<string, unknown>): string[] {
  const aud = claims.aud;
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud)) return aud.filter((a): a is string => typeof a === 'string');
  return [];
}

// ---- key sets ----

interface KeySet {
  keys: JsonWebKey[];
  resolve: JWTVerifyGetKey;
}

/** A JWKS as jose uses it, made once per Jwks object (jose caches the imported keys in it). */
const keySets = new WeakMap<Jwks, KeySet>();

function keySetOf(jwks: Jwks): KeySet {
  let set = keySets.get(jwks);
  if (!set) {
    const keys = (Array.isArray(jwks?.keys) ? jwks.keys : []).filter((k): k is JsonWebKey => k !== null && typeof k === 'object').map(publicMembers);
    set = { keys, resolve: createLocalJWKSet({ keys: keys as never }) };
    keySets.set(jwks, set);
  }
  return set;
}

const PUBLIC_MEMBERS = ['kty', 'kid', 'alg', 'use', 'crv', 'x', 'y', 'n', 'e'] as const;

function publicMembers(jwk: JsonWebKey): JsonWebKey {
  const out: JsonWebKey = {};
  for (const m of PUBLIC_MEMBERS) if (jwk[m] !== undefined) (out as Record<string, unknown>)[m] = jwk[m];
  return out;
}

/** jwtVerify, trying each key in turn when several fit the token (jose leaves that to its caller). */
async function verifyWithKeySet(token: string, set: KeySet, options: JWTVerifyOptions): Promise<{ payload: Record<string, unknown>; protectedHeader: Record<string, unknown> }> {
  try {
    return await jwtVerify(token, set.resolve, options);
  } catch (e: unknown) {
    if (!isJoseError(e, 'ERR_JWKS_MULTIPLE_MATCHING_KEYS')) throw e;
    let last: unknown = e;
    for await (const key of e as unknown as AsyncIterable<webcrypto.CryptoKey>) {
      try {
        return await jwtVerify(token, key, options);
      } catch (inner: unknown) {
        last = inner;
        if (!isJoseError(inner, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED')) throw inner;
      }
    }
    throw isJoseError(last, 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') ? new Error('no fitting key could be imported') : last;
  }
}

function isJoseError(e: unknown, code: string): boolean {
  return e instanceof Error && (e as { code?: unknown }).code === code;
}

/** Envoy's words for what jose refused. */
function reasonOf(e: unknown, header: Record<string, unknown>, set: KeySet): string {
  const code = e instanceof Error ? (e as { code?: unknown }).code : undefined;
  const claim = (e as { claim?: unknown }).claim;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'Jwt is expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if ((e as { reason?: unknown }).reason === 'invalid') return `Jwt ${String(claim)} claim is not a number`;
      if (claim === 'nbf') return 'Jwt not yet valid';
      if (claim === 'aud') return 'Audiences in Jwt are not allowed';
      if (claim === 'iss') return 'Jwt issuer is not configured';
      return `Jwt ${String(claim)} claim check failed`;
    case 'ERR_JWKS_NO_MATCHING_KEY': {
      const kid = header.kid;
      if (set.keys.length === 0) return 'Jwks has no keys';
      if (typeof kid === 'string' && !set.keys.some((k) => k.kid === kid)) return `Jwks doesn't have a key with kid ${JSON.stringify(kid)}`;
      return `Jwks doesn't have a key to match kid or alg ${String(header.alg)} from Jwt`;
    }
    case 'ERR_JWT_INVALID':
      return 'Jwt payload is an invalid JSON object';
    default:
      // A bad signature, a key that does not import or is too weak for its alg.
      return 'Jwt verification fails';
  }
}

export async function verifyJwt(token: string, jwks: Jwks, opts: VerifyJwtOptions): Promise<JwtVerdict> {
  const shape = inspect(token);
  if ('reason' in shape) return fail(shape.reason);
  const { header, claims } = shape;

  const alg = header.alg;
  if (typeof alg !== 'string') return fail('Jwt header has no alg');
  if (alg === 'none' || alg.startsWith('HS')) return fail(`Jwt alg ${alg} is refused (only asymmetric signatures are accepted)`);
  if (!SUPPORTED.has(alg)) return fail(`Jwt alg ${alg} is not supported (supported: ${SUPPORTED_ALGS.join(', ')})`);
  if (header.crit !== undefined) return fail('Jwt header has crit extensions, which are not supported');
  if (shape.signatureBytes === 0) return fail('Jwt has no signature');
  if (header.kid !== undefined && typeof header.kid !== 'string') return fail('Jwt kid is not a string');
  if (claims.iss !== opts.issuer) {
    return fail(typeof claims.iss === 'string' ? `Jwt issuer ${JSON.stringify(claims.iss)} is not configured` : 'Jwt has no iss claim');
  }

  const set = keySetOf(jwks);
  const skew = opts.clockSkewSec ?? DEFAULT_CLOCK_SKEW_SEC;
  const options: JWTVerifyOptions = {
    issuer: opts.issuer,
    algorithms: SUPPORTED_ALGS as string[],
    clockTolerance: skew,
    currentDate: new Date(opts.nowSec * 1000),
  };
  if (opts.audiences?.length) options.audience = audienceSpellings(opts.audiences);
  let verified: { payload: Record<string, unknown>; protectedHeader: Record<string, unknown> };
  try {
    verified = await verifyWithKeySet(token, set, options);
  } catch (e: unknown) {
    return fail(reasonOf(e, header, set));
  }
  // jose checks `iat` only against a maximum age; Envoy refuses one from the future.
  const { iat } = verified.payload;
  if (typeof iat === 'number' && opts.nowSec + skew < iat) return fail('Jwt issued in the future (iat)');
  return { ok: true, header: verified.protectedHeader, claims: verified.payload };
}
