// The demo's external partner API (`ambit up --demo`): `https://api.partner.example` on the
// outside host, with a certificate from a CA of its own (not the mesh's), and the Secret the
// egress waypoint verifies it with (DestinationRule tls SIMPLE, credentialName partner-ca).
// The material is made at `ambit up` and kept in the state directory; the Secret file is
// added to the control plane's config files.
import https from 'node:https';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { crypto, ECDSA_P256, exportPkcs8Pem, generateP256KeyPair, x509 } from '../identity/x509.js';
import { listenInNetns, NetnsHandle } from '../sys/netns-socket.js';
import { outsideNetnsName } from './outside-host.js';

export const DEMO_PARTNER_HOST = 'api.partner.example';
export const DEMO_EGRESS_NAMESPACE = 'egress';
export const DEMO_PARTNER_SECRET = 'partner-ca';

const DAY = 86_400_000;

function dir(stateDir: string): string {
  return join(stateDir, 'outside');
}

/** Makes the partner CA, its server certificate and the Secret; returns the Secret's file. */
export async function writeDemoPartnerMaterial(stateDir: string): Promise<string> {
  const d = dir(stateDir);
  await mkdir(d, { recursive: true, mode: 0o700 });
  const caKeys = await generateP256KeyPair();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'), name: 'CN=Partner Example Root CA', keys: caKeys, signingAlgorithm: ECDSA_P256,
    notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 365 * DAY),
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  }, crypto);
  const keys = await generateP256KeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex'), subject: `CN=${DEMO_PARTNER_HOST}`, issuer: ca.subject,
    notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 90 * DAY),
    signingKey: caKeys.privateKey, publicKey: keys.publicKey, signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: DEMO_PARTNER_HOST }]),
    ],
  }, crypto);
  await writeFile(join(d, 'partner-ca.pem'), ca.toString('pem'));
  await writeFile(join(d, 'partner-server.pem'), cert.toString('pem'));
  await writeFile(join(d, 'partner-server-key.pem'), await exportPkcs8Pem(keys.privateKey), { mode: 0o600 });
  const secret = [
    '# Made by `ambit up --demo`: the CA of the demo partner API, for the egress waypoint to verify it.',
    'apiVersion: v1', 'kind: Secret', `metadata: {name: ${DEMO_PARTNER_SECRET}, namespace: ${DEMO_EGRESS_NAMESPACE}}`, 'type: Opaque', 'data:',
    `  ca.crt: ${Buffer.from(ca.toString('pem')).toString('base64')}`, '',
  ].join('\n');
  const file = join(d, 'partner-secret.yaml');
  await writeFile(file, secret, { mode: 0o600 });
  return file;
}

/** Serves the partner API (HTTPS on 443) inside the outside host; answers what it received, as JSON. */
export async function startDemoPartner(stateDir: string, prefix: string, ip: string): Promise<https.Server> {
  const d = dir(stateDir);
  const server = https.createServer({ cert: await readFile(join(d, 'partner-server.pem')), key: await readFile(join(d, 'partner-server-key.pem')) }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ partner: DEMO_PARTNER_HOST, method: req.method, path: req.url, host: req.headers.host, tls: true }) + '\n';
      res.writeHead(req.method === 'DELETE' ? 204 : 200, { 'content-type': 'application/json' });
      res.end(req.method === 'DELETE' ? undefined : body);
    });
  });
  const handle = NetnsHandle.open(outsideNetnsName(prefix));
  try {
    return await listenInNetns(handle, { host: ip, port: 443, server });
  } finally {
    handle.close();
  }
}
