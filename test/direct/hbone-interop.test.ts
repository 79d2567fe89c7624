// Interop with an independent HTTP/2 stack: Python's ssl + the `h2` library (Debian
// python3-h2, run with /usr/bin/python3), with certificates made by the `ambit ca` CLI.
//   (1) a Python h2 client -> HboneServer -> TCP echo
//   (2) HbonePool -> a Python h2 server that terminates CONNECT (and upper-cases the echo)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MeshCA } from '../../src/identity/ca.js';
import { mustParseSpiffe } from '../../src/identity/spiffe.js';
import { workloadCertificateFromChain, type WorkloadCertificate } from '../../src/identity/workload-certificate.js';
import { splitCertificates } from '../../src/identity/x509.js';
import { HbonePool } from '../../src/hbone/pool.js';
import { CLIENT_ID, Cleanup, SERVER_ID, quietLogger, readAll, startEcho, startHboneServer } from '../helpers/hbone.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURES = join(ROOT, 'test', 'fixtures');
const PY_CLIENT_ID = 'spiffe://cluster.local/ns/py/sa/client';
const PY_SERVER_ID = 'spiffe://cluster.local/ns/py/sa/server';

const cleanup = new Cleanup();
let dir: string;
let ca: MeshCA;

async function ambit(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [join(ROOT, 'bin', 'ambit.js'), ...args], { cwd: dir });
  return stdout;
}

/** `ambit ca issue` into dir/name: key.pem, cert-chain.pem, root-cert.pem. */
async function issueWithCli(identity: string, name: string): Promise<{ dir: string; cert: WorkloadCertificate }> {
  const out = join(dir, name);
  await ambit('ca', 'issue', '--ca', join(dir, 'ca'), '--identity', identity, '--out', out);
  const keyPem = await readFile(join(out, 'key.pem'), 'utf8');
  const chain = splitCertificates(await readFile(join(out, 'cert-chain.pem'), 'utf8'));
  const rootPem = await readFile(join(out, 'root-cert.pem'), 'utf8');
  const r = workloadCertificateFromChain({ identity: mustParseSpiffe(identity), keyPem, certChainPem: chain, rootPem });
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return { dir: out, cert: r.value };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ambit-hbone-interop-'));
  cleanup.add(() => rm(dir, { recursive: true, force: true }), undefined);
  await ambit('ca', 'init', '--out', join(dir, 'ca'));
  ca = await MeshCA.load(join(dir, 'ca'));
});
after(() => cleanup.run());

test('a Python h2 client tunnels through HboneServer (TLS 1.3, ALPN h2, CONNECT, 1 MiB each way)', async () => {
  const py = await issueWithCli(PY_CLIENT_ID, 'py-client');
  const serverCert = await ca.issueWorkloadCertificate(mustParseSpiffe(SERVER_ID));
  assert.ok(serverCert.ok);
  const echo = await startEcho(cleanup);
  const hbone = await startHboneServer(cleanup, serverCert.value);
  const { stdout } = await run(PYTHON, [
    join(FIXTURES, 'hbone_h2_client.py'),
    '--port', String(hbone.port),
    '--cert', join(py.dir, 'cert-chain.pem'), '--key', join(py.dir, 'key.pem'), '--ca', join(py.dir, 'root-cert.pem'),
    '--authority', `127.0.0.1:${echo.port}`,
    '--expect-identity', SERVER_ID,
    '--bytes', String(1 << 20),
  ], { timeout: 30_000 }).catch((e: { stdout?: string; stderr?: string; message: string }) => {
    throw new Error(`python client failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  });
  const result = JSON.parse(stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
  assert.equal(result.ok, true, stdout);
  assert.equal(result.tls, 'TLSv1.3');
  assert.equal(result.alpn, 'h2');
  assert.match(String(result.cipher), /^TLS_AES_(256|128)_GCM/);
  assert.equal(result.status, '200');
  assert.equal(result.responseBaggage, 'k8s.namespace.name=shop');
  assert.equal(result.received, 1 << 20);
  assert.equal(result.sha256Match, true);
  assert.equal(hbone.requests.length, 1);
  assert.equal(hbone.requests[0]!.peerIdentity, PY_CLIENT_ID);
  assert.deepEqual(hbone.requests[0]!.headers, { baggage: 'k8s.namespace.name=py' });
  const relayed = await hbone.relays[0]!;
  assert.equal(relayed.bytesOutbound, 1 << 20);
  assert.equal(relayed.bytesInbound, 1 << 20);
  assert.equal(relayed.error, undefined);
});

interface PyServer {
  proc: ChildProcess;
  port: number;
  events: Record<string, unknown>[];
}

async function startPythonServer(certDir: string): Promise<PyServer> {
  const proc = spawn(PYTHON, [join(FIXTURES, 'hbone_h2_server.py'),
    '--cert', join(certDir, 'cert-chain.pem'), '--key', join(certDir, 'key.pem'), '--ca', join(certDir, 'root-cert.pem')],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.add(() => proc.kill('SIGKILL'), undefined);
  const events: Record<string, unknown>[] = [];
  const lines = createInterface({ input: proc.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`python server exited with ${code}`)));
    lines.on('line', (line) => {
      const ev = JSON.parse(line) as Record<string, unknown>;
      events.push(ev);
      if (ev.event === 'listening') resolve(ev.port as number);
    });
  });
  return { proc, port, events };
}

test('HbonePool tunnels to a Python h2 server terminating CONNECT (bytes both ways, half-close, two tunnels on one connection)', async () => {
  const pyServer = await issueWithCli(PY_SERVER_ID, 'py-server');
  const client = await ca.issueWorkloadCertificate(mustParseSpiffe(CLIENT_ID));
  assert.ok(client.ok);
  const py = await startPythonServer(pyServer.dir);
  const pool = new HbonePool({ logger: quietLogger() });
  cleanup.add(() => pool.destroy(), undefined);
  const connect = (authority: string) => pool.connect({
    sourceIdentity: CLIENT_ID,
    certificate: () => client.value,
    destination: { ip: '127.0.0.1', port: py.port },
    expectedIdentities: [PY_SERVER_ID],
    authority,
    headers: { baggage: 'k8s.namespace.name=shop', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' },
  });
  const a = await connect('10.0.0.7:8080');
  const b = await connect('[fd00::7]:8080');
  const gotA = readAll(a, 4 << 20);
  const gotB = readAll(b);
  const big = Buffer.alloc(2 << 20, 'x');
  a.write(big);
  b.end('hello python');
  a.end('!');
  assert.equal((await gotB).text, 'HELLO PYTHON');
  const ra = await gotA;
  assert.equal(ra.bytes, (2 << 20) + 1);
  assert.equal(ra.text, 'X'.repeat(2 << 20) + '!');
  assert.equal(pool.stats().handshakes, 1, 'both tunnels on one connection');
  const connects = py.events.filter((e) => e.event === 'connect');
  assert.deepEqual(connects.map((e) => e.authority).sort(), ['10.0.0.7:8080', '[fd00::7]:8080']);
  for (const e of connects) {
    assert.deepEqual(e.peer, [CLIENT_ID], 'the Python server saw our SPIFFE identity');
    assert.equal(e.tls, 'TLSv1.3');
    assert.equal(e.alpn, 'h2');
    assert.equal(e.sni, null, 'no SNI');
    assert.equal(e.baggage, 'k8s.namespace.name=shop');
  }
  const wrong = await pool.connect({
    sourceIdentity: CLIENT_ID, certificate: () => client.value, destination: { ip: '127.0.0.1', port: py.port },
    expectedIdentities: ['spiffe://cluster.local/ns/py/sa/not-the-server'], authority: '10.0.0.7:8080',
  }).then(() => 'connected', (e: { code?: string }) => e.code);
  assert.equal(wrong, 'AMBIT_ERR_IDENTITY');
});
