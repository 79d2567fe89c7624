// `ambit ca init` / `ambit ca issue`, run in-process through the CLI's main().
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import type { CliIO } from '../../src/cli/command.js';
import { parseDurationSeconds } from '../../src/cli/commands/ca.js';
import { splitCertificates } from '../../src/identity/x509.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function run(argv: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { out: (t) => { out += t; }, err: (t) => { err += t; }, env: {}, cwd };
  const code = await main(argv, io);
  return { code, out, err };
}

test('ca init then ca issue write a verifiable key, chain and root', async () => {
  const cwd = await mkdtemp(join(tmpdir(), 'ambit-cli-ca-'));
  dirs.push(cwd);
  const init = await run(['ca', 'init', '--out', '.ambit-ca', '--trust-domain', 'example.org'], cwd);
  assert.equal(init.code, 0, init.err);
  assert.match(init.out, /created a root CA for trust domain example\.org/);
  assert.equal((await stat(join(cwd, '.ambit-ca', 'ca-key.pem'))).mode & 0o777, 0o600);

  // Refuses to overwrite without --force.
  const again = await run(['ca', 'init', '--out', '.ambit-ca'], cwd);
  assert.equal(again.code, 1);
  assert.match(again.err, /already holds a CA[\s\S]*hint: .*--force/);

  // --ca defaults to ./.ambit-ca
  const issue = await run(['ca', 'issue', '--identity', 'spiffe://example.org/ns/shop/sa/cart', '--out', 'certs', '--ttl', '2h'], cwd);
  assert.equal(issue.code, 0, issue.err);
  assert.match(issue.out, /issued spiffe:\/\/example\.org\/ns\/shop\/sa\/cart/);

  const keyPem = await readFile(join(cwd, 'certs', 'key.pem'), 'utf8');
  const chain = splitCertificates(await readFile(join(cwd, 'certs', 'cert-chain.pem'), 'utf8'));
  const root = await readFile(join(cwd, 'certs', 'root-cert.pem'), 'utf8');
  assert.equal((await stat(join(cwd, 'certs', 'key.pem'))).mode & 0o777, 0o600);
  assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----/);
  assert.equal(chain.length, 2, 'leaf then root');
  assert.equal(chain[1]?.trim(), root.trim(), 'root last');
  assert.equal(root, await readFile(join(cwd, '.ambit-ca', 'root-cert.pem'), 'utf8'));

  const leaf = new X509Certificate(chain[0] as string);
  const rootCert = new X509Certificate(root);
  assert.ok(leaf.checkIssued(rootCert) && leaf.verify(rootCert.publicKey));
  assert.equal(leaf.subjectAltName, 'URI:spiffe://example.org/ns/shop/sa/cart');
  assert.ok(leaf.publicKey.equals(createPublicKey(createPrivateKey(keyPem))));
  const lifeMs = new Date(leaf.validTo).getTime() - new Date(leaf.validFrom).getTime();
  assert.equal(lifeMs, 2 * 3600 * 1000 + 5 * 60 * 1000, '2h plus the 5 minute backdate');
});

test('ca issue explains what is wrong', async () => {
  const cwd = await mkdtemp(join(tmpdir(), 'ambit-cli-ca-'));
  dirs.push(cwd);
  const noCa = await run(['ca', 'issue', '--identity', 'spiffe://cluster.local/ns/a/sa/b', '--out', 'x'], cwd);
  assert.equal(noCa.code, 1);
  assert.match(noCa.err, /no CA given and no \.\/\.ambit-ca[\s\S]*hint: create one with 'ambit ca init --out \.ambit-ca'/);

  assert.equal((await run(['ca', 'init', '--out', 'ca'], cwd)).code, 0);
  const badId = await run(['ca', 'issue', '--ca', 'ca', '--identity', 'cluster.local/ns/a/sa/b', '--out', 'x'], cwd);
  assert.equal(badId.code, 1);
  assert.match(badId.err, /invalid SPIFFE identity[\s\S]*hint: .*spiffe:\/\/cluster\.local\/ns\/a\/sa\/b/);

  const tooLong = await run(['ca', 'issue', '--ca', 'ca', '--identity', 'spiffe://cluster.local/ns/a/sa/b', '--out', 'x', '--ttl', '100d'], cwd);
  assert.equal(tooLong.code, 1);
  assert.match(tooLong.err, /greater than the maximum of 90d/);

  const badTtl = await run(['ca', 'issue', '--ca', 'ca', '--identity', 'spiffe://cluster.local/ns/a/sa/b', '--out', 'x', '--ttl', 'soon'], cwd);
  assert.equal(badTtl.code, 2, 'usage error');
  assert.match(badTtl.err, /--ttl 'soon'/);

  const missing = await run(['ca', 'issue', '--out', 'x'], cwd);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /--identity SPIFFE_ID is required[\s\S]*ambit ca issue --help/);

  const help = await run(['ca', 'issue', '--help'], cwd);
  assert.equal(help.code, 0);
  assert.match(help.out, /^Usage: ambit ca issue/);
  assert.match(help.out, /Options:[\s\S]*--ttl[\s\S]*Examples:/);
  const top = await run(['--help'], cwd);
  assert.match(top.out, /ca init .*create a mesh root CA[\s\S]*ca issue/);
});

test('durations', () => {
  const table: [string, number | undefined][] = [
    ['24h', 86400], ['90d', 90 * 86400], ['30m', 1800], ['45s', 45], ['1h30m', 5400], ['3600', 3600],
    ['', undefined], ['h', undefined], ['1.5h', undefined], ['-1h', undefined], ['1w', undefined],
  ];
  for (const [text, want] of table) assert.equal(parseDurationSeconds(text), want, text);
});
