// The one crypto policy of every Ambit process: only FIPS-approved algorithms on every TLS
// surface (HBONE, xDS and the CA, the admin clients), whether or not OpenSSL runs with a
// FIPS provider:
// - TLS 1.3 only, with AES-256-GCM and AES-128-GCM (no ChaCha20-Poly1305);
// - key exchange on P-256 or P-384 (no X25519, no hybrid groups built on it);
// - handshake signatures with ECDSA (P-256, P-384) or RSA-PSS (no Ed25519).
// Applied once at start, process-wide (Node's tls defaults), so libraries that make their own
// TLS contexts (grpc-js) follow it too; HBONE also sets it on its own contexts.
//
// With FIPS required (`--fips`, AMBIT_FIPS=1) a process refuses to start unless Node's
// OpenSSL runs with a FIPS provider (crypto.getFips()).
import { createHash, getFips, setFips } from 'node:crypto';
import tls from 'node:tls';
import { AmbitError } from './errors.js';

export const APPROVED_TLS13_CIPHERS = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256';
export const APPROVED_GROUPS = 'P-256:P-384';
export const APPROVED_SIGALGS = 'ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384:rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512';

export interface CryptoMode {
  /** Algorithms restricted to FIPS-approved ones (always, in Ambit). */
  approvedAlgorithmsOnly: true;
  /** OpenSSL runs with a FIPS provider. */
  fipsProvider: boolean;
  /** The operator asked for FIPS (and the process would have refused to start without it). */
  fipsRequired: boolean;
  openssl: string;
}

let applied: CryptoMode | undefined;

/** Apply the policy to this process; with `requireFips`, refuse without a FIPS provider. Idempotent. */
export function applyCryptoPolicy(requireFips: boolean): CryptoMode {
  tls.DEFAULT_MIN_VERSION = 'TLSv1.3';
  tls.DEFAULT_MAX_VERSION = 'TLSv1.3';
  tls.DEFAULT_CIPHERS = APPROVED_TLS13_CIPHERS;
  tls.DEFAULT_ECDH_CURVE = APPROVED_GROUPS;
  let fips = getFips() === 1 && providerWorks();
  if (requireFips && !fips) {
    try {
      setFips(true);
      // Turning FIPS mode on succeeds even when no FIPS provider is installed; every
      // algorithm is then unsupported. Only a working approved algorithm says it is there.
      fips = getFips() === 1 && providerWorks();
    } catch {
      fips = false;
    }
    if (!fips) {
      try { setFips(false); } catch { /* it was never on */ }
      throw new AmbitError('AMBIT_ERR_FIPS', `FIPS mode was asked for, but this Node.js (OpenSSL ${process.versions.openssl}) has no FIPS provider`, {
        hint: 'install an OpenSSL 3 FIPS provider (openssl fipsinstall), point OPENSSL_CONF at a config that activates it (or start node with --enable-fips), then try again; without --fips Ambit still negotiates only FIPS-approved algorithms',
      });
    }
  }
  applied = { approvedAlgorithmsOnly: true, fipsProvider: fips, fipsRequired: requireFips, openssl: process.versions.openssl ?? 'unknown' };
  return applied;
}

/** The mode applied to this process (the policy is applied on demand if it was not yet). */
export function cryptoMode(): CryptoMode {
  return applied ?? applyCryptoPolicy(false);
}

function providerWorks(): boolean {
  try {
    createHash('sha256').update('ambit').digest();
    return true;
  } catch {
    return false;
  }
}

export function fipsRequested(env: NodeJS.ProcessEnv): boolean {
  return env.AMBIT_FIPS === '1' || env.AMBIT_FIPS === 'true';
}
