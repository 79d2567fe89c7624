// JWT (RFC 7519, JWS compact serialization RFC 7515) verification against a JSON Web Key Set,
// as Envoy's jwt_authn filter does for an Istio RequestAuthentication rule. Pure apart from
// node:crypto; never throws on untrusted input (a bad token is a verdict, not an error).
//
// Invariants:
// - Only asymmetric signatures are accepted: RS256/384/512 (RSASSA-PKCS1-v1_5), PS256/384/512
//   (RSASSA-PSS, salt = hash length), ES256/384/512 (ECDSA, JOSE `r||s` signatures of fixed
//   length, curve must match the alg) and EdDSA (Ed25519/Ed448). `none` and HS* are refused
//   (a shared secret in a mesh-wide JWKS would let anyone who can read config mint tokens).
// - Key selection: with a `kid` in the header, only keys with that `kid` are tried (none -> the
//   token is refused, "unknown kid"); without one, every key of a fitting type is tried. A key
//   whose `alg` is set must equal the token's alg; a key whose `use` is set must be `sig`.
//   RSA keys under 2048 bits are never used (RFC 7518 section 3.3).
// - A `crit` header is refused: Ambit understands no JWS extension (RFC 7515 section 4.1.11).
// - Time (seconds): `exp` must be > now - skew; `nbf` must be <= now + skew; `iat`, when
//   present, must be a number and not later than now + skew. Skew defaults to 60 s (Envoy's
//   default clock_skew_seconds). A token without `exp` is accepted, as Envoy does unless
//   require_expiration is set (Istio never sets it).
// - `iss` must equal the provider's issuer exactly. With audiences configured, `aud` (a string
//   or an array) must contain one of them; audiences compare after dropping an `http://` or
//   `https://` scheme and a trailing `/`, as Envoy's jwt_verify_lib does. No audiences
//   configured: `aud` is not checked.

import { createPublicKey, verify as cryptoVerify, constants, type KeyObject, type JsonWebKey } from 'node:crypto';

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

type Family = 'RSA' | 'PSS' | 'EC' | 'OKP';
interface AlgSpec {
  family: Family;
  hash: 'sha256' | 'sha384' | 'sha512' | null;
  /** EC: the curve and the byte length of each of r and s. */
  crv?: string;
  coordBytes?: number;
}

const ALGS: Record<string, AlgSpec> = {
  RS256: { family: 'RSA', hash: 'sha256' },
  RS384: { family: 'RSA', hash: 'sha384' },
  RS512: { family: 'RSA', hash: 'sha512' },
  PS256: { family: 'PSS', hash: 'sha256' },
  PS384: { family: 'PSS', hash: 'sha384' },
  PS512: { family: 'PSS', hash: 'sha512' },
  ES256: { family: 'EC', hash: 'sha256', crv: 'P-256', coordBytes: 32 },
  ES384: { family: 'EC', hash: 'sha384', crv: 'P-384', coordBytes: 48 },
  ES512: { family: 'EC', hash: 'sha512', crv: 'P-521', coordBytes: 66 },
  EdDSA: { family: 'OKP', hash: null },
};

export const SUPPORTED_ALGS: readonly string[] = Object.keys(ALGS);

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

/** The header and claims of a compact JWS without verifying anything (null if malformed). */
export function decodeJwt(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } | null {
  if (token.length > MAX_TOKEN_CHARS) return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const h = b64urlDecode(parts[0] as string);
  const p = b64urlDecode(parts[1] as string);
  if (!h || !p) return null;
  const header = parseJsonObject(h);
  const claims = parseJsonObject(p);
  return header && claims ? { header, claims } : null;
}

function keyFamilyFits(jwk: JsonWebKey, spec: AlgSpec): boolean {
  switch (spec.family) {
    case 'RSA':
    case 'PSS':
      return jwk.kty === 'RSA';
    case 'EC':
      return jwk.kty === 'EC' && jwk.crv === spec.crv;
    case 'OKP':
      return jwk.kty === 'OKP' && (jwk.crv === 'Ed25519' || jwk.crv === 'Ed448');
  }
}

function importKey(jwk: JsonWebKey): KeyObject | null {
  try {
    // Only the public members: a JWKS that (wrongly) carries private parts still yields a public key.
    const { kty, crv, x, y, n, e } = jwk;
    const pub: JsonWebKey = { kty };
    if (crv !== undefined) pub.crv = crv;
    if (x !== undefined) pub.x = x;
    if (y !== undefined) pub.y = y;
    if (n !== undefined) pub.n = n;
    if (e !== undefined) pub.e = e;
    const key = createPublicKey({ key: pub, format: 'jwk' });
    if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) return null;
    return key;
  } catch {
    return null;
  }
}

function verifySignature(spec: AlgSpec, key: KeyObject, data: Buffer, sig: Buffer): boolean {
  try {
    switch (spec.family) {
      case 'RSA':
        return cryptoVerify(spec.hash, data, key, sig);
      case 'PSS':
        return cryptoVerify(spec.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig);
      case 'EC':
        if (sig.length !== 2 * (spec.coordBytes as number)) return false;
        return cryptoVerify(spec.hash, data, { key, dsaEncoding: 'ieee-p1363' }, sig);
      case 'OKP':
        return cryptoVerify(null, data, key, sig);
    }
  } catch {
    return false;
  }
}

/** `https://a.example/` -> `a.example` (jwt_verify_lib's audience normalization). */
export function normalizeAudience(aud: string): string {
  let s = aud;
  if (s.startsWith('https://')) s = s.slice('https://'.length);
  else if (s.startsWith('http://')) s = s.slice('http://'.length);
  if (s.endsWith('/')) s = s.slice(0, -1);
  return s;
}

/** The `aud` claim as a list of strings (a string, or the strings of an array). */
export function audiencesOf(claims: Record<string, unknown>): string[] {
  const aud = claims.aud;
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud)) return aud.filter((a): a is string => typeof a === 'string');
  return [];
}

function checkTime(claims: Record<string, unknown>, nowSec: number, skew: number): string | null {
  const { exp, nbf, iat } = claims;
  if (exp !== undefined) {
    if (typeof exp !== 'number' || !Number.isFinite(exp)) return 'Jwt exp claim is not a number';
    if (nowSec - skew >= exp) return 'Jwt is expired';
  }
  if (nbf !== undefined) {
    if (typeof nbf !== 'number' || !Number.isFinite(nbf)) return 'Jwt nbf claim is not a number';
    if (nowSec + skew < nbf) return 'Jwt not yet valid';
  }
  if (iat !== undefined) {
    if (typeof iat !== 'number' || !Number.isFinite(iat)) return 'Jwt iat claim is not a number';
    if (nowSec + skew < iat) return 'Jwt issued in the future (iat)';
  }
  return null;
}

export function verifyJwt(token: string, jwks: Jwks, opts: VerifyJwtOptions): JwtVerdict {
  if (token.length > MAX_TOKEN_CHARS) return fail(`Jwt is longer than ${MAX_TOKEN_CHARS} characters`);
  const parts = token.split('.');
  if (parts.length !== 3) return fail('Jwt is not in the form of Header.Payload.Signature');
  const [h64, p64, s64] = parts as [string, string, string];
  const hBuf = b64urlDecode(h64);
  const pBuf = b64urlDecode(p64);
  const sig = b64urlDecode(s64);
  if (!hBuf || !pBuf || !sig) return fail('Jwt is not base64url encoded');
  const header = parseJsonObject(hBuf);
  if (!header) return fail('Jwt header is an invalid JSON object');
  const claims = parseJsonObject(pBuf);
  if (!claims) return fail('Jwt payload is an invalid JSON object');

  const alg = header.alg;
  if (typeof alg !== 'string') return fail('Jwt header has no alg');
  if (alg === 'none' || alg.startsWith('HS')) return fail(`Jwt alg ${alg} is refused (only asymmetric signatures are accepted)`);
  const spec = ALGS[alg];
  if (!spec) return fail(`Jwt alg ${alg} is not supported (supported: ${SUPPORTED_ALGS.join(', ')})`);
  if (header.crit !== undefined) return fail('Jwt header has crit extensions, which are not supported');
  if (sig.length === 0) return fail('Jwt has no signature');

  // Issuer before signature, so an operator reads "wrong issuer" rather than "bad signature".
  if (claims.iss !== opts.issuer) {
    return fail(typeof claims.iss === 'string' ? `Jwt issuer ${JSON.stringify(claims.iss)} is not configured` : 'Jwt has no iss claim');
  }

  const kid = header.kid;
  if (kid !== undefined && typeof kid !== 'string') return fail('Jwt kid is not a string');
  const keys = (Array.isArray(jwks?.keys) ? jwks.keys : []).filter(
    (k): k is JsonWebKey => k !== null && typeof k === 'object',
  );
  const byKid = kid === undefined ? keys : keys.filter((k) => k.kid === kid);
  if (byKid.length === 0) return fail(kid === undefined ? 'Jwks has no keys' : `Jwks doesn't have a key with kid ${JSON.stringify(kid)}`);
  const candidates = byKid.filter(
    (k) => keyFamilyFits(k, spec) && (k.alg === undefined || k.alg === alg) && (k.use === undefined || k.use === 'sig'),
  );
  if (candidates.length === 0) return fail(`Jwks doesn't have a key to match kid or alg ${alg} from Jwt`);

  const data = Buffer.from(`${h64}.${p64}`, 'ascii');
  let verified = false;
  for (const jwk of candidates) {
    const key = importKey(jwk);
    if (key && verifySignature(spec, key, data, sig)) {
      verified = true;
      break;
    }
  }
  if (!verified) return fail('Jwt verification fails');

  const timeProblem = checkTime(claims, opts.nowSec, opts.clockSkewSec ?? DEFAULT_CLOCK_SKEW_SEC);
  if (timeProblem) return fail(timeProblem);

  const wanted = opts.audiences ?? [];
  if (wanted.length > 0) {
    const have = new Set(audiencesOf(claims).map(normalizeAudience));
    if (!wanted.some((a) => have.has(normalizeAudience(a)))) return fail('Audiences in Jwt are not allowed');
  }
  return { ok: true, header, claims };
}
