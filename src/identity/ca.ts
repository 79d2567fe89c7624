// The mesh CA: signs workload certificates for SPIFFE identities.
//
// Files (Istio's `cacerts` names, so an Istio operator's plugged-in CA works unchanged):
//   ca-cert.pem     the signing CA certificate (an intermediate, or the root itself)
//   ca-key.pem      its private key (PKCS#8, SEC1 "EC PRIVATE KEY" or PKCS#1 RSA; mode 0600)
//   root-cert.pem   the trust anchor(s) workloads verify peers against
//   cert-chain.pem  the signing CA's chain: ca-cert first, then intermediates, then the root
// A directory with only root-cert.pem + ca-key.pem is a self-signed root that signs directly.
//
// Invariants:
// - A loaded CA is consistent: ca-key matches ca-cert, ca-cert may sign (CA:true, keyCertSign
//   when key usage is present), every link of the chain verifies, and the chain ends in a
//   certificate of root-cert.pem. A directory that breaks any of these is refused at load.
// - sign() issues only the identity the caller is authorized for: the CSR must carry exactly
//   one URI SAN, a SPIFFE ID equal to that identity, in this CA's trust domain; otherwise
//   AMBIT_ERR_CSR_IDENTITY naming both. The leaf carries only that URI SAN (other CSR
//   fields are ignored), an ECDSA P-256 key, and is never a CA.
// - Lifetimes: default 24 h; a request above 90 days is refused (as Istio's CA does), not
//   clamped, so a misconfigured client finds out. The leaf never outlives any certificate
//   of its chain: notAfter is clamped to the earliest notAfter above it (the result says so).
//   notBefore is backdated by CLOCK_SKEW_MS (not before the signing cert's notBefore).
// - Serial numbers are 127 random bits (positive, never zero).
import { randomBytes, createPrivateKey, X509Certificate as NodeX509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock, type Clock } from '../core/clock.js';
import { AmbitError, err, errnoCode, ok, type Result } from '../core/errors.js';
import { generateKeyAndCsr, parseAndVerifyCsr } from './csr.js';
import { DEFAULT_TRUST_DOMAIN, checkTrustDomain, formatSpiffe, identityEquals, parseSpiffe, type Identity } from './spiffe.js';
import {
  crypto, ECDSA_P256, exportPkcs8Pem, generateP256KeyPair, issuedBy, normalizePem, publicKeyDerOfCert, publicKeyDerOfPrivateKey,
  splitCertificates, x509, type CryptoKey,
} from './x509.js';
import { workloadCertificateFromChain, type WorkloadCertificate } from './workload-certificate.js';

export const CACERTS_FILES = {
  caCert: 'ca-cert.pem',
  caKey: 'ca-key.pem',
  rootCert: 'root-cert.pem',
  certChain: 'cert-chain.pem',
} as const;

export const DEFAULT_WORKLOAD_TTL_SECONDS = 24 * 3600;
export const MAX_WORKLOAD_TTL_SECONDS = 90 * 24 * 3600;
export const DEFAULT_ROOT_TTL_DAYS = 3650;
/** How far notBefore is set in the past, so that peers whose clocks lag accept a new cert. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

const DAY_MS = 24 * 3600 * 1000;

export interface MeshCACreateOptions {
  trustDomain?: string;
  clock?: Clock;
  rootTtlDays?: number;
}

export interface MeshCALoadOptions {
  /** The trust domain this CA issues for; default cluster.local. */
  trustDomain?: string;
  clock?: Clock;
}

export interface SignRequest {
  csrPem: string;
  /** The identity the caller is authorized for (from its own credentials, never from the CSR). */
  identity: Identity;
  ttlSeconds?: number;
  /** Extra server names for the leaf (the control plane's own certificate: its address). */
  serverNames?: { dns?: readonly string[]; ips?: readonly string[] };
}

export interface SignedCertificate {
  /** PEM blocks: the leaf first, the root last. */
  certChainPem: string[];
  notBefore: Date;
  notAfter: Date;
  /** Hex serial number of the leaf. */
  serialNumber: string;
  /** True when notAfter was cut short to the end of the CA's own validity. */
  clampedToCa: boolean;
}

export interface MeshCADescription {
  trustDomain: string;
  selfSigned: boolean;
  signingSubject: string;
  rootSubject: string;
  notBefore: Date;
  notAfter: Date;
  chainLength: number;
}

interface SigningKey {
  key: CryptoKey;
  algorithm: { name: string; hash: string; namedCurve?: string };
  /** The key as it was loaded or made, written back unchanged by save(). */
  pem: string;
}

interface MeshCAParts {
  trustDomain: string;
  clock: Clock;
  signingCertPem: string;
  signingKey: SigningKey;
  /** The signing cert, then its issuers, ending with the root. */
  chainPem: string[];
  /** Every trust anchor of root-cert.pem. */
  rootsPem: string[];
}

export class MeshCA {
  readonly trustDomain: string;
  private readonly clock: Clock;
  private readonly signingCert: x509.X509Certificate;
  private readonly signingKey: SigningKey;
  private readonly chainPem: string[];
  private readonly rootsPem: string[];

  private constructor(parts: MeshCAParts) {
    this.trustDomain = parts.trustDomain;
    this.clock = parts.clock;
    this.signingCert = new x509.X509Certificate(parts.signingCertPem);
    this.signingKey = parts.signingKey;
    this.chainPem = parts.chainPem;
    this.rootsPem = parts.rootsPem;
  }

  /** A new self-signed root (ECDSA P-256, CA:true, keyCertSign) that signs workloads directly. */
  static async create(options: MeshCACreateOptions = {}): Promise<MeshCA> {
    const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    const tdProblem = checkTrustDomain(trustDomain);
    if (tdProblem) throw new AmbitError('AMBIT_ERR_CA', `cannot create a CA: ${tdProblem}`, { hint: `use a trust domain like ${DEFAULT_TRUST_DOMAIN}` });
    const rootTtlDays = options.rootTtlDays ?? DEFAULT_ROOT_TTL_DAYS;
    if (!Number.isFinite(rootTtlDays) || rootTtlDays <= 0) {
      throw new AmbitError('AMBIT_ERR_CA', `cannot create a CA: root TTL must be a positive number of days, got ${rootTtlDays}`);
    }
    const clock = options.clock ?? systemClock;
    const now = clock.now();
    const keys = await generateP256KeyPair();
    const root = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: randomSerial(),
        name: [{ O: [trustDomain] }, { CN: ['Ambit Root CA'] }],
        notBefore: new Date(now - CLOCK_SKEW_MS),
        notAfter: new Date(now + rootTtlDays * DAY_MS),
        keys,
        signingAlgorithm: ECDSA_P256,
        extensions: [
          new x509.BasicConstraintsExtension(true, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        ],
      },
      crypto,
    );
    const rootPem = normalizePem(root.toString('pem'));
    return new MeshCA({
      trustDomain,
      clock,
      signingCertPem: rootPem,
      signingKey: { key: keys.privateKey, algorithm: ECDSA_P256, pem: await exportPkcs8Pem(keys.privateKey) },
      chainPem: [rootPem],
      rootsPem: [rootPem],
    });
  }

  /** Loads a CA from an Istio-style cacerts directory (see the top of this file). */
  static async load(dir: string, options: MeshCALoadOptions = {}): Promise<MeshCA> {
    const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    const tdProblem = checkTrustDomain(trustDomain);
    if (tdProblem) throw new AmbitError('AMBIT_ERR_CA', `cannot load the CA: ${tdProblem}`);
    const clock = options.clock ?? systemClock;
    const rootText = await readCaFile(dir, CACERTS_FILES.rootCert, true);
    const keyText = await readCaFile(dir, CACERTS_FILES.caKey, true);
    const caCertText = await readCaFile(dir, CACERTS_FILES.caCert, false);
    const chainText = await readCaFile(dir, CACERTS_FILES.certChain, false);

    const rootsPem = certsOf(dir, CACERTS_FILES.rootCert, rootText as string);
    const signingCertPem = caCertText === undefined ? rootsPem[0] as string : certsOf(dir, CACERTS_FILES.caCert, caCertText)[0] as string;
    let chainPem = chainText === undefined || chainText.trim() === '' ? [signingCertPem] : certsOf(dir, CACERTS_FILES.certChain, chainText);
    if (chainPem[0] !== signingCertPem) chainPem = [signingCertPem, ...chainPem];

    const chain = completeChain(dir, chainPem, rootsPem);
    if (!chain.ok) throw chain.error;
    checkSigningCert(dir, signingCertPem, clock.now());
    const signingKey = await importSigningKey(dir, keyText as string, signingCertPem);
    return new MeshCA({ trustDomain, clock, signingCertPem, signingKey, chainPem: chain.value, rootsPem });
  }

  /** Writes the cacerts files (key mode 0600) into dir, creating it (mode 0700) if needed. */
  async save(dir: string): Promise<void> {
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const keyPath = join(dir, CACERTS_FILES.caKey);
      await writeFile(keyPath, this.signingKey.pem, { mode: 0o600 });
      await chmod(keyPath, 0o600);
      await writeFile(join(dir, CACERTS_FILES.caCert), this.signingCertPem);
      await writeFile(join(dir, CACERTS_FILES.rootCert), this.rootPem);
      await writeFile(join(dir, CACERTS_FILES.certChain), this.chainPem.join(''));
    } catch (e: unknown) {
      throw new AmbitError('AMBIT_ERR_CA', `cannot write the CA files to ${dir}: ${e instanceof Error ? e.message : String(e)}`, {
        cause: e,
        hint: errnoCode(e) === 'EACCES' ? 'choose a directory you can write to' : undefined,
      });
    }
  }

  /** The trust bundle (every certificate of root-cert.pem), PEM. */
  get rootPem(): string {
    return this.rootsPem.join('');
  }

  get signingCertPem(): string {
    return this.chainPem[0] as string;
  }

  /** The CA's own chain: signing cert first, root last. */
  get caChainPem(): string[] {
    return [...this.chainPem];
  }

  describe(): MeshCADescription {
    const root = new x509.X509Certificate(this.chainPem[this.chainPem.length - 1] as string);
    return {
      trustDomain: this.trustDomain,
      selfSigned: this.chainPem.length === 1,
      signingSubject: this.signingCert.subject,
      rootSubject: root.subject,
      notBefore: this.signingCert.notBefore,
      notAfter: this.signingCert.notAfter,
      chainLength: this.chainPem.length,
    };
  }

  /** Signs a workload CSR for the identity the caller is authorized for (see the invariants). */
  async sign(request: SignRequest): Promise<Result<SignedCertificate, AmbitError>> {
    const ttlSeconds = request.ttlSeconds ?? DEFAULT_WORKLOAD_TTL_SECONDS;
    const ttlProblem = checkTtl(ttlSeconds);
    if (ttlProblem) return err(ttlProblem);

    const authorized = formatSpiffe(request.identity);
    if (request.identity.trustDomain !== this.trustDomain) {
      return err(new AmbitError('AMBIT_ERR_CSR_IDENTITY', `cannot issue ${authorized}: it is outside this CA's trust domain '${this.trustDomain}'`, {
        hint: 'the identity and the CA must share one trust domain; check the trust domain configured for the mesh',
        details: { authorized, trustDomain: this.trustDomain },
      }));
    }

    const parsed = await parseAndVerifyCsr(request.csrPem);
    if (!parsed.ok) return parsed;
    const { request: csr, uriSans } = parsed.value;

    if (uriSans.length !== 1) {
      const got = uriSans.length === 0 ? 'no URI SAN' : `${uriSans.length} URI SANs (${uriSans.join(', ')})`;
      return err(new AmbitError('AMBIT_ERR_CSR_IDENTITY', `the CSR has ${got}; it must have exactly one, the authorized identity ${authorized}`, {
        hint: `generate the CSR with the single URI SAN ${authorized}`,
        details: { authorized, requested: uriSans },
      }));
    }
    const requested = uriSans[0] as string;
    const requestedId = parseSpiffe(requested);
    if (!requestedId.ok || !identityEquals(requestedId.value, request.identity)) {
      return err(new AmbitError('AMBIT_ERR_CSR_IDENTITY', `the CSR asks for ${requested} but the caller is authorized only for ${authorized}`, {
        hint: 'a workload can obtain a certificate only for its own identity; check the pod\'s service account and namespace',
        details: { authorized, requested },
      }));
    }

    const keyAlg = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
    if (keyAlg.name !== 'ECDSA' || keyAlg.namedCurve !== 'P-256') {
      return err(new AmbitError('AMBIT_ERR_CA', `the CSR's key is ${keyAlg.name ?? 'unknown'}${keyAlg.namedCurve ? ' ' + keyAlg.namedCurve : ''}; workload keys must be ECDSA P-256`, {
        hint: 'generate the workload key on curve P-256 (prime256v1)',
      }));
    }

    const now = this.clock.now();
    const caNotAfter = Math.min(...this.chainPem.map((p) => new x509.X509Certificate(p).notAfter.getTime()));
    if (caNotAfter <= now) {
      return err(new AmbitError('AMBIT_ERR_CA', `the CA certificate expired at ${new Date(caNotAfter).toISOString()}`, {
        hint: 'rotate the CA: create or plug in a new signing certificate',
      }));
    }
    const wantedNotAfter = now + ttlSeconds * 1000;
    const notAfter = new Date(Math.min(wantedNotAfter, caNotAfter));
    const notBefore = new Date(Math.max(now - CLOCK_SKEW_MS, this.signingCert.notBefore.getTime()));
    const serialNumber = randomSerial();

    try {
      const aki = this.signingCert.getExtension(x509.SubjectKeyIdentifierExtension);
      const leaf = await x509.X509CertificateGenerator.create(
        {
          serialNumber,
          subject: '',
          issuer: this.signingCert.subjectName,
          notBefore,
          notAfter,
          publicKey: csr.publicKey,
          signingKey: this.signingKey.key,
          signingAlgorithm: this.signingKey.algorithm,
          extensions: [
            new x509.BasicConstraintsExtension(false, undefined, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
            new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
            // Critical because the subject is empty (RFC 5280 4.2.1.6), as in Istio's certificates.
            new x509.SubjectAlternativeNameExtension([
              { type: 'url', value: authorized },
              ...(request.serverNames?.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
              ...(request.serverNames?.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
            ], true),
            aki
              ? new x509.AuthorityKeyIdentifierExtension(aki.keyId, false)
              : await x509.AuthorityKeyIdentifierExtension.create(this.signingCert.publicKey, false, crypto),
          ],
        },
        crypto,
      );
      return ok({
        certChainPem: [normalizePem(leaf.toString('pem')), ...this.chainPem],
        notBefore,
        notAfter,
        serialNumber: leaf.serialNumber,
        clampedToCa: notAfter.getTime() < wantedNotAfter,
      });
    } catch (e: unknown) {
      return err(new AmbitError('AMBIT_ERR_CA', `signing the certificate for ${authorized} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
    }
  }

  /** Makes a key and CSR for the identity and signs it here: a complete WorkloadCertificate (tests, local tools). */
  async issueWorkloadCertificate(identity: Identity, ttlSeconds?: number, serverNames?: SignRequest['serverNames']): Promise<Result<WorkloadCertificate, AmbitError>> {
    const { keyPem, csrPem } = await generateKeyAndCsr(identity);
    const signed = await this.sign({ csrPem, identity, ttlSeconds, serverNames });
    if (!signed.ok) return signed;
    return workloadCertificateFromChain({ identity, keyPem, certChainPem: signed.value.certChainPem, rootPem: this.rootPem });
  }
}

function checkTtl(ttlSeconds: number): AmbitError | undefined {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    return new AmbitError('AMBIT_ERR_CA', `requested certificate TTL must be a positive number of seconds, got ${ttlSeconds}`, {
      hint: `omit it for the default of ${DEFAULT_WORKLOAD_TTL_SECONDS / 3600}h`,
    });
  }
  if (ttlSeconds > MAX_WORKLOAD_TTL_SECONDS) {
    return new AmbitError('AMBIT_ERR_CA', `requested certificate TTL ${formatSeconds(ttlSeconds)} is greater than the maximum of ${formatSeconds(MAX_WORKLOAD_TTL_SECONDS)}`, {
      hint: 'ask for a shorter lifetime; workload certificates are renewed automatically at half life',
      details: { ttlSeconds, maxTtlSeconds: MAX_WORKLOAD_TTL_SECONDS },
    });
  }
  return undefined;
}

function formatSeconds(s: number): string {
  if (s % 86400 === 0) return `${s / 86400}d`;
  if (s % 3600 === 0) return `${s / 3600}h`;
  return `${s}s`;
}

/** 16 random bytes as hex, top bit clear (positive) and second bit set (never zero, fixed length). */
function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] as number) & 0x7f) | 0x40;
  return b.toString('hex');
}

async function readCaFile(dir: string, name: string, required: boolean): Promise<string | undefined> {
  try {
    return await readFile(join(dir, name), 'utf8');
  } catch (e: unknown) {
    if (errnoCode(e) === 'ENOENT' && !required) return undefined;
    const missing = errnoCode(e) === 'ENOENT';
    throw new AmbitError('AMBIT_ERR_CA', missing ? `CA directory ${dir} has no ${name}` : `cannot read ${join(dir, name)}: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
      hint: missing
        ? `a CA directory holds ${CACERTS_FILES.rootCert} and ${CACERTS_FILES.caKey} (plus ${CACERTS_FILES.caCert} and ${CACERTS_FILES.certChain} for an intermediate); create one with 'ambit ca init --out ${dir}'`
        : undefined,
    });
  }
}

function certsOf(dir: string, name: string, text: string): string[] {
  const certs = splitCertificates(text).map(normalizePem);
  if (certs.length === 0) {
    throw new AmbitError('AMBIT_ERR_CA', `${join(dir, name)} holds no PEM certificate`, {
      hint: 'the file must contain -----BEGIN CERTIFICATE----- blocks',
    });
  }
  for (const pem of certs) {
    try {
      new NodeX509Certificate(pem);
    } catch (e: unknown) {
      throw new AmbitError('AMBIT_ERR_CA', `${join(dir, name)} holds a certificate that cannot be decoded: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  return certs;
}

/** Checks every link of chain and appends the root from roots when the chain stops short of it. */
function completeChain(dir: string, chainPem: string[], rootsPem: string[]): Result<string[], AmbitError> {
  for (let i = 0; i + 1 < chainPem.length; i++) {
    if (!issuedBy(chainPem[i] as string, chainPem[i + 1] as string)) {
      return err(new AmbitError('AMBIT_ERR_CA', `in ${dir}: certificate ${i + 1} of the CA chain ('${subjectOf(chainPem[i] as string)}') is not signed by the next one ('${subjectOf(chainPem[i + 1] as string)}')`, {
        hint: `${CACERTS_FILES.certChain} must list ${CACERTS_FILES.caCert} first, then each issuer in order, ending with the root`,
      }));
    }
  }
  const top = chainPem[chainPem.length - 1] as string;
  if (rootsPem.includes(top)) return ok(chainPem);
  const root = rootsPem.find((r) => issuedBy(top, r));
  if (root === undefined) {
    return err(new AmbitError('AMBIT_ERR_CA', `in ${dir}: the CA chain ends with '${subjectOf(top)}', which is neither in nor signed by ${CACERTS_FILES.rootCert}`, {
      hint: `${CACERTS_FILES.rootCert} must hold the root that issued ${CACERTS_FILES.caCert} (directly or through ${CACERTS_FILES.certChain})`,
    }));
  }
  return ok([...chainPem, root]);
}

function subjectOf(pem: string): string {
  return new NodeX509Certificate(pem).subject.replace(/\n/g, ', ');
}

function checkSigningCert(dir: string, pem: string, nowMs: number): void {
  const cert = new x509.X509Certificate(pem);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc || !bc.ca) {
    throw new AmbitError('AMBIT_ERR_CA', `in ${dir}: the signing certificate '${cert.subject}' is not a CA (basicConstraints CA:true is missing)`, {
      hint: `${CACERTS_FILES.caCert} (or ${CACERTS_FILES.rootCert} for a self-signed CA) must be a CA certificate`,
    });
  }
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (ku && (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new AmbitError('AMBIT_ERR_CA', `in ${dir}: the signing certificate '${cert.subject}' may not sign certificates (keyUsage lacks keyCertSign)`, {
      hint: 'issue the intermediate with keyUsage keyCertSign',
    });
  }
  if (cert.notAfter.getTime() <= nowMs) {
    throw new AmbitError('AMBIT_ERR_CA', `in ${dir}: the signing certificate '${cert.subject}' expired at ${cert.notAfter.toISOString()}`, {
      hint: 'plug in a new signing certificate',
    });
  }
  if (cert.notBefore.getTime() > nowMs) {
    throw new AmbitError('AMBIT_ERR_CA', `in ${dir}: the signing certificate '${cert.subject}' is not valid before ${cert.notBefore.toISOString()}`, {
      hint: "check this machine's clock",
    });
  }
}

async function importSigningKey(dir: string, keyPem: string, certPem: string): Promise<SigningKey> {
  const path = join(dir, CACERTS_FILES.caKey);
  let keyObject;
  try {
    keyObject = createPrivateKey(keyPem);
  } catch (e: unknown) {
    throw new AmbitError('AMBIT_ERR_CA', `cannot decode the private key in ${path}: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
      hint: 'the key must be an unencrypted PEM private key (PKCS#8, EC or RSA)',
    });
  }
  if (!publicKeyDerOfPrivateKey(keyPem).equals(publicKeyDerOfCert(certPem))) {
    throw new AmbitError('AMBIT_ERR_CA', `${path} is not the key of the signing certificate '${subjectOf(certPem)}'`, {
      hint: `${CACERTS_FILES.caKey} must be the private key of ${CACERTS_FILES.caCert} (or of ${CACERTS_FILES.rootCert} when there is no ${CACERTS_FILES.caCert})`,
    });
  }
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  let algorithm: SigningKey['algorithm'];
  if (keyObject.asymmetricKeyType === 'ec') {
    const curve = keyObject.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    else if (curve === 'secp384r1') algorithm = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
    else throw new AmbitError('AMBIT_ERR_CA', `${path}: EC curve ${curve ?? 'unknown'} is not supported`, { hint: 'use P-256 (prime256v1) or P-384' });
  } else if (keyObject.asymmetricKeyType === 'rsa') {
    algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  } else {
    throw new AmbitError('AMBIT_ERR_CA', `${path}: ${keyObject.asymmetricKeyType ?? 'unknown'} keys are not supported`, { hint: 'use an ECDSA (P-256) or RSA CA key' });
  }
  try {
    const key = await crypto.subtle.importKey('pkcs8', der, algorithm, true, ['sign']);
    return { key, algorithm, pem: keyPem };
  } catch (e: unknown) {
    throw new AmbitError('AMBIT_ERR_CA', `cannot use the key in ${path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
