// `ambit ca init` and `ambit ca issue`: make a mesh root CA and issue workload certificates
// from it (or from an operator's Istio `cacerts` directory) by hand.
import { access, chmod, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { systemClock } from '../../core/clock.js';
import { AmbitError, errnoCode } from '../../core/errors.js';
import { CACERTS_FILES, DEFAULT_ROOT_TTL_DAYS, MAX_WORKLOAD_TTL_SECONDS, MeshCA } from '../../identity/ca.js';
import { generateKeyAndCsr } from '../../identity/csr.js';
import { DEFAULT_TRUST_DOMAIN, formatSpiffe, parseSpiffe } from '../../identity/spiffe.js';
import { parseCommandArgs, usageError, type CliIO, type Command } from '../command.js';
import { CA_INIT, CA_ISSUE } from './specs.js';

export const DEFAULT_CA_DIR = '.ambit-ca';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `90s`, `30m`, `24h`, `90d`, `1h30m`, or a bare number of seconds. */
export function parseDurationSeconds(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  if (!/^(\d+[smhd])+$/.test(t)) return undefined;
  let total = 0;
  for (const m of t.matchAll(/(\d+)([smhd])/g)) total += Number(m[1]) * (UNIT_SECONDS[m[2] as string] as number);
  return total;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (e: unknown) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
}

function write(io: CliIO, lines: string[]): void {
  io.out(lines.join('\n') + '\n');
}

export const caInitCommand: Command = {
  ...CA_INIT,
  help: `Usage: ambit ca init --out DIR [--trust-domain TD] [--root-ttl DURATION] [--force]

Creates a self-signed ECDSA P-256 root CA for the mesh and writes it in Istio's
cacerts layout, so the same directory works for Ambit's control plane and for
'kubectl create secret generic cacerts --from-file=DIR' in Istio:

  ${CACERTS_FILES.caCert.padEnd(16)} the signing certificate (here: the root itself)
  ${CACERTS_FILES.caKey.padEnd(16)} its private key (PKCS#8, mode 0600)
  ${CACERTS_FILES.rootCert.padEnd(16)} the root workloads trust
  ${CACERTS_FILES.certChain.padEnd(16)} the signing chain, ending with the root

Options:
  --out DIR              directory to write (created if missing); required
  --trust-domain TD      trust domain of the identities it will sign (default ${DEFAULT_TRUST_DOMAIN})
  --root-ttl DURATION    lifetime of the root, e.g. 3650d, 8760h (default ${DEFAULT_ROOT_TTL_DAYS}d)
  --force                replace a CA already in DIR (certificates from the old root
                         stop being trusted)
  -h, --help             show this help

Examples:
  ambit ca init --out ${DEFAULT_CA_DIR}
  ambit ca init --out ./cacerts --trust-domain example.org --root-ttl 365d
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(caInitCommand, argv, {
      out: { type: 'string' },
      'trust-domain': { type: 'string' },
      'root-ttl': { type: 'string' },
      force: { type: 'boolean' },
    });
    if (!values.out) throw usageError(caInitCommand, '--out DIR is required');
    const dir = resolve(io.cwd, values.out);
    let rootTtlDays = DEFAULT_ROOT_TTL_DAYS;
    if (values['root-ttl'] !== undefined) {
      const s = parseDurationSeconds(values['root-ttl']);
      if (s === undefined || s <= 0) throw usageError(caInitCommand, `--root-ttl '${values['root-ttl']}' is not a duration like 3650d or 8760h`);
      rootTtlDays = s / 86400;
    }
    if (!values.force && (await exists(join(dir, CACERTS_FILES.caKey)))) {
      throw new AmbitError('AMBIT_ERR_CA', `${dir} already holds a CA (${CACERTS_FILES.caKey})`, {
        hint: 'use a new directory, or --force to replace it (workloads will stop trusting certificates from the old root)',
      });
    }
    const ca = await MeshCA.create({ trustDomain: values['trust-domain'] ?? DEFAULT_TRUST_DOMAIN, rootTtlDays, clock: systemClock });
    await ca.save(dir);
    const d = ca.describe();
    write(io, [
      `created a root CA for trust domain ${d.trustDomain} in ${dir}`,
      `  subject:  ${d.rootSubject}`,
      `  expires:  ${d.notAfter.toISOString()}`,
      `  files:    ${Object.values(CACERTS_FILES).join(', ')}`,
      `next: ambit ca issue --ca ${values.out} --identity spiffe://${d.trustDomain}/ns/default/sa/default --out ./certs`,
    ]);
    return 0;
  },
};

export const caIssueCommand: Command = {
  ...CA_ISSUE,
  help: `Usage: ambit ca issue --identity SPIFFE_ID --out DIR [--ca DIR] [--ttl DURATION]

Generates a fresh ECDSA P-256 key, signs a certificate for the identity with the
CA in --ca, and writes:

  key.pem          the private key (PKCS#8, mode 0600)
  cert-chain.pem   the certificate chain, leaf first, root last
  root-cert.pem    the mesh root(s), to verify peers with

The certificate carries the identity as its only URI SAN, is valid for TLS server
and client authentication, and is backdated 5 minutes for clock skew. It never
outlives the CA's own certificate. The identity's trust domain is taken as the CA's.

Options:
  --identity SPIFFE_ID   spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>; required
  --out DIR              directory to write (created if missing); required
  --ca DIR               CA directory in Istio's cacerts layout (${CACERTS_FILES.rootCert} + ${CACERTS_FILES.caKey},
                         plus ${CACERTS_FILES.caCert} and ${CACERTS_FILES.certChain} for an intermediate)
                         (default ./${DEFAULT_CA_DIR})
  --ttl DURATION         lifetime, e.g. 1h, 24h, 30d, 3600 (seconds) (default 24h, at most ${MAX_WORKLOAD_TTL_SECONDS / 86400}d)
  -h, --help             show this help

Examples:
  ambit ca issue --identity spiffe://cluster.local/ns/default/sa/sleep --out ./certs/sleep
  ambit ca issue --ca ./cacerts --identity spiffe://cluster.local/ns/shop/sa/cart --ttl 1h --out /tmp/cart
  openssl x509 -in ./certs/sleep/cert-chain.pem -noout -text     # inspect the leaf
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(caIssueCommand, argv, {
      identity: { type: 'string' },
      out: { type: 'string' },
      ca: { type: 'string' },
      ttl: { type: 'string' },
    });
    if (!values.identity) throw usageError(caIssueCommand, '--identity SPIFFE_ID is required');
    if (!values.out) throw usageError(caIssueCommand, '--out DIR is required');
    const id = parseSpiffe(values.identity);
    if (!id.ok) throw id.error;
    const identity = id.value;
    let ttlSeconds: number | undefined;
    if (values.ttl !== undefined) {
      ttlSeconds = parseDurationSeconds(values.ttl);
      if (ttlSeconds === undefined || ttlSeconds <= 0) throw usageError(caIssueCommand, `--ttl '${values.ttl}' is not a duration like 24h, 30m or 3600`);
    }
    const caDir = resolve(io.cwd, values.ca ?? DEFAULT_CA_DIR);
    if (!(await exists(caDir))) {
      throw new AmbitError('AMBIT_ERR_CA', values.ca === undefined ? `no CA given and no ./${DEFAULT_CA_DIR} directory in ${io.cwd}` : `CA directory ${caDir} does not exist`, {
        hint: `create one with 'ambit ca init --out ${DEFAULT_CA_DIR}', or pass --ca DIR pointing at an Istio cacerts directory`,
      });
    }
    const ca = await MeshCA.load(caDir, { trustDomain: identity.trustDomain, clock: systemClock });
    const { keyPem, csrPem } = await generateKeyAndCsr(identity);
    const signed = await ca.sign({ csrPem, identity, ttlSeconds });
    if (!signed.ok) throw signed.error;

    const outDir = resolve(io.cwd, values.out);
    try {
      await mkdir(outDir, { recursive: true });
      const keyPath = join(outDir, 'key.pem');
      await writeFile(keyPath, keyPem, { mode: 0o600 });
      await chmod(keyPath, 0o600);
      await writeFile(join(outDir, 'cert-chain.pem'), signed.value.certChainPem.join(''));
      await writeFile(join(outDir, 'root-cert.pem'), ca.rootPem);
    } catch (e: unknown) {
      throw new AmbitError('AMBIT_ERR_CERT', `cannot write the certificate files to ${outDir}: ${e instanceof Error ? e.message : String(e)}`, {
        cause: e,
        hint: 'choose an --out directory you can write to',
      });
    }
    const v = signed.value;
    write(io, [
      `issued ${formatSpiffe(identity)}`,
      `  serial:   ${v.serialNumber}`,
      `  valid:    ${v.notBefore.toISOString()} .. ${v.notAfter.toISOString()}${v.clampedToCa ? ' (cut short: the CA certificate expires then)' : ''}`,
      `  chain:    ${v.certChainPem.length} certificates (leaf first, root last)`,
      `  files:    ${join(outDir, 'key.pem')}, ${join(outDir, 'cert-chain.pem')}, ${join(outDir, 'root-cert.pem')}`,
    ]);
    return 0;
  },
};
