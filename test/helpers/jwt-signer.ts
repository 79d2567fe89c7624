// A tiny JWS signer for tests: real keys from node:crypto, compact tokens, JWKs for the set.
import { generateKeyPairSync, sign, constants, type KeyObject, type JsonWebKey } from 'node:crypto';

export type TestAlg = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'EdDSA';

export interface TestKey {
  alg: TestAlg;
  kid: string;
  privateKey: KeyObject;
  /** The public JWK, with kid (and alg when `withAlg`). */
  jwk: JsonWebKey;
}

const HASH: Record<TestAlg, string | null> = {
  RS256: 'sha256', RS384: 'sha384', RS512: 'sha512', PS256: 'sha256', PS384: 'sha384', PS512: 'sha512',
  ES256: 'sha256', ES384: 'sha384', EdDSA: null,
};

export function makeKey(alg: TestAlg, kid: string, opts: { withAlg?: boolean; rsaBits?: number } = {}): TestKey {
  let pair: { publicKey: KeyObject; privateKey: KeyObject };
  if (alg.startsWith('RS') || alg.startsWith('PS')) pair = generateKeyPairSync('rsa', { modulusLength: opts.rsaBits ?? 2048 });
  else if (alg === 'ES256') pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  else if (alg === 'ES384') pair = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  else pair = generateKeyPairSync('ed25519');
  const jwk: JsonWebKey = { ...pair.publicKey.export({ format: 'jwk' }), kid, use: 'sig' };
  if (opts.withAlg) jwk.alg = alg;
  return { alg, kid, privateKey: pair.privateKey, jwk };
}

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

export function signJws(key: TestKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}, dsaEncoding: 'ieee-p1363' | 'der' = 'ieee-p1363'): string {
  const h = { alg: key.alg, typ: 'JWT', kid: key.kid, ...header };
  const input = `${b64(h)}.${b64(claims)}`;
  const data = Buffer.from(input);
  const hash = HASH[key.alg];
  let sig: Buffer;
  if (key.alg.startsWith('PS')) {
    sig = sign(hash, data, { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
  } else if (key.alg.startsWith('ES')) {
    sig = sign(hash, data, { key: key.privateKey, dsaEncoding });
  } else {
    sig = sign(hash, data, key.privateKey);
  }
  return `${input}.${sig.toString('base64url')}`;
}

/** An unsigned token with any header (for alg none / HS256 tests). */
export function rawToken(header: Record<string, unknown>, claims: Record<string, unknown>, signature = ''): string {
  return `${b64(header)}.${b64(claims)}.${signature}`;
}
