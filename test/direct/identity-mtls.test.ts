// Certificates from MeshCA in a real TLS 1.3 handshake on loopback: both sides verify the
// other against the mesh root, and peerIdentity() reads the verified SPIFFE ID.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { MeshCA } from '../../src/identity/ca.js';
import { mustParseSpiffe, type Identity } from '../../src/identity/spiffe.js';
import { peerIdentity, tlsOptions, type WorkloadCertificate } from '../../src/identity/workload-certificate.js';

const client = mustParseSpiffe('spiffe://cluster.local/ns/shop/sa/client');
const server = mustParseSpiffe('spiffe://cluster.local/ns/shop/sa/server');

const servers: tls.Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function issue(ca: MeshCA, id: Identity): Promise<WorkloadCertificate> {
  const r = await ca.issueWorkloadCertificate(id);
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return r.value;
}

interface Seen { identity: Identity | undefined; authorized: boolean; error?: string }

async function startServer(cert: WorkloadCertificate, rejectUnauthorized: boolean): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const srv = tls.createServer({ ...tlsOptions(cert), requestCert: true, rejectUnauthorized, minVersion: 'TLSv1.3' }, (socket) => {
    seen.push({ identity: peerIdentity(socket), authorized: socket.authorized, error: socket.authorizationError?.toString() });
    socket.end('hello');
  });
  servers.push(srv);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return { port: (srv.address() as AddressInfo).port, seen };
}

function connect(port: number, cert: WorkloadCertificate, trust?: string): Promise<{ identity: Identity | undefined; data: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      ...tlsOptions(cert), ...(trust ? { ca: trust } : {}), host: '127.0.0.1', port, minVersion: 'TLSv1.3', rejectUnauthorized: true,
      // No hostnames in the mesh: the SPIFFE ID is checked instead (below).
      checkServerIdentity: () => undefined,
    });
    let data = '';
    socket.on('secureConnect', () => {
      const identity = peerIdentity(socket);
      socket.on('data', (d: Buffer) => { data += d.toString(); });
      socket.on('end', () => resolve({ identity, data }));
    });
    socket.on('error', reject);
  });
}

test('two issued certificates complete mutual TLS and see each other\'s SPIFFE identity', async () => {
  const ca = await MeshCA.create();
  const serverCert = await issue(ca, server);
  const clientCert = await issue(ca, client);
  const { port, seen } = await startServer(serverCert, true);
  const r = await connect(port, clientCert);
  assert.equal(r.data, 'hello');
  assert.deepEqual(r.identity, server);
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0]?.identity, client);
  assert.equal(seen[0]?.authorized, true);
});

test('a client certificate from another CA is refused; an unverified peer has no identity', async () => {
  const ca = await MeshCA.create();
  const foreign = await MeshCA.create();
  const serverCert = await issue(ca, server);
  const strict = await startServer(serverCert, true);
  // TLS 1.3: the client may finish its side before the server's alert arrives; either way no data flows.
  const outcome = await connect(strict.port, await issue(foreign, client), ca.rootPem).then((r) => r.data, (e: unknown) => e);
  assert.notEqual(outcome, 'hello', 'the foreign client must not reach the application');
  assert.equal(strict.seen.length, 0, 'the server never accepted the foreign client');

  // A server that does not reject still must not attribute an identity to an unverified peer.
  const lax = await startServer(serverCert, false);
  const r = await connect(lax.port, await issue(foreign, client), ca.rootPem);
  assert.equal(r.data, 'hello');
  assert.equal(lax.seen[0]?.authorized, false);
  assert.equal(lax.seen[0]?.identity, undefined);
});
