// Every TLS surface negotiates only FIPS-approved algorithms, checked with an independent
// client (openssl s_client): TLS 1.3 with AES-GCM, ECDHE on P-256/P-384; ChaCha20, X25519 and
// TLS 1.2 are refused. Surfaces: a ztunnel's HBONE listener, the control plane's xDS and CA.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { applyCryptoPolicy, cryptoMode } from '../../src/core/crypto-policy.js';
import { memoryLogger } from '../../src/core/logger.js';
import { HboneServer } from '../../src/hbone/index.js';
import { mustParseSpiffe } from '../../src/identity/spiffe.js';
import type { WorkloadCertificate } from '../../src/identity/workload-certificate.js';
import { startXdsMesh, type XdsMesh } from '../helpers/xds-mesh.js';

let mesh: XdsMesh;
let hbone: HboneServer;
let hbonePort = 0;

before(async () => {
  applyCryptoPolicy(false);
  mesh = await startXdsMesh('', []);
  const r = await mesh.ca.issueWorkloadCertificate(mustParseSpiffe('spiffe://cluster.local/ns/shop/sa/server'));
  if (!r.ok) throw r.error;
  const cert: WorkloadCertificate = r.value;
  hbone = new HboneServer({ certificate: () => cert, trustDomain: 'cluster.local', logger: memoryLogger({ level: 'error' }).logger, onRequest: (req) => req.reject(503, 'test') });
  hbonePort = (await hbone.listen('127.0.0.1', 0)).port;
});

after(async () => {
  await hbone?.close(100);
  await mesh?.close();
});

/** What openssl s_client negotiated (or the alert it got). */
function sClient(port: number, extra: string[]): Promise<{ protocol?: string; cipher?: string; group?: string; failed: boolean; text: string }> {
  return new Promise((resolve) => {
    const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-alpn', 'h2', '-brief', ...extra], { timeout: 10_000 }, (_e, out, err) => {
      const text = `${out}${err}`;
      const protocol = /Protocol version: (\S+)/.exec(text)?.[1];
      resolve({
        protocol, cipher: /Ciphersuite: (\S+)/.exec(text)?.[1], group: /Server Temp Key: ECDH, ([^,]+)/.exec(text)?.[1],
        failed: protocol === undefined, text,
      });
    });
    child.stdin?.end(); // nothing to send: s_client quits after the handshake
  });
}

const surfaces = (): [string, number][] => [['HBONE (15008)', hbonePort], ['xDS and CA', Number(mesh.xdsAddress.split(':')[1])]];

test('each surface negotiates TLS 1.3, AES-GCM and P-256 by default, and P-384 when the client offers only it', async () => {
  for (const [name, port] of surfaces()) {
    const d = await sClient(port, []);
    assert.deepEqual([d.protocol, d.cipher, d.group], ['TLSv1.3', 'TLS_AES_256_GCM_SHA384', 'prime256v1'], `${name}: ${d.text}`);
    const p384 = await sClient(port, ['-groups', 'P-384']);
    assert.equal(p384.group, 'secp384r1', `${name}: ${p384.text}`);
    const aes128 = await sClient(port, ['-ciphersuites', 'TLS_AES_128_GCM_SHA256']);
    assert.equal(aes128.cipher, 'TLS_AES_128_GCM_SHA256', `${name}: ${aes128.text}`);
  }
});

test('each surface refuses ChaCha20-Poly1305, X25519 and TLS 1.2', async () => {
  for (const [name, port] of surfaces()) {
    for (const extra of [['-ciphersuites', 'TLS_CHACHA20_POLY1305_SHA256'], ['-groups', 'X25519'], ['-tls1_2']]) {
      const r = await sClient(port, extra);
      assert.ok(r.failed, `${name} with ${extra.join(' ')} must fail: ${r.text}`);
    }
  }
});

test('--fips: a process with a FIPS provider runs in FIPS mode (MD5 gone); without one it refuses to start, saying how to enable one', async () => {
  assert.equal(cryptoMode().approvedAlgorithmsOnly, true);
  // In a child: FIPS mode cannot be left once entered.
  const script = `import('${new URL('../../src/core/crypto-policy.js', import.meta.url).href}').then((m) => {
    try { const mode = m.applyCryptoPolicy(true); let md5 = 'available'; try { require('node:crypto').createHash('md5'); } catch { md5 = 'refused'; } console.log(JSON.stringify({ mode, md5 })); }
    catch (e) { console.log(JSON.stringify({ error: e.code, explain: e.explain() })); }
  });`;
  const out = await new Promise<string>((resolve) => execFile(process.execPath, ['--input-type=commonjs', '-e', script], (_e, stdout) => resolve(stdout)));
  const r = JSON.parse(out) as { mode?: { fipsProvider: boolean; fipsRequired: boolean }; md5?: string; error?: string; explain?: string };
  if (r.mode) {
    assert.deepEqual([r.mode.fipsProvider, r.mode.fipsRequired, r.md5], [true, true, 'refused']);
  } else {
    assert.equal(r.error, 'AMBIT_ERR_FIPS');
    assert.match(r.explain!, /OPENSSL_CONF|fipsinstall/);
  }
});
