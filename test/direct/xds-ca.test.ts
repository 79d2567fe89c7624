// The CA gRPC service and client over real gRPC on loopback, signing with a real MeshCA: a
// node proxy obtains a workload's certificate by impersonation; a workload on another node is
// PERMISSION_DENIED; bad tokens and malformed requests never reach the handler. Then the CA
// and ADS together on one TLS port, the client verifying the server's SPIFFE identity.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { AmbitError } from '../../src/core/errors.js';
import { memoryLogger } from '../../src/core/logger.js';
import { MeshCA } from '../../src/identity/ca.js';
import { generateKeyAndCsr } from '../../src/identity/csr.js';
import { formatSpiffe, mustParseSpiffe, parseSpiffe } from '../../src/identity/spiffe.js';
import { AdsServer } from '../../src/xds/ads-server.js';
import { CaClient } from '../../src/xds/ca-client.js';
import { registerCaService, type CaServiceRequest } from '../../src/xds/ca-service.js';
import { GrpcStatusError, type Authenticator } from '../../src/xds/call-auth.js';
import { addressResource, addressResourceType } from '../../src/xds/codec.js';
import { bindServer, serverCredentials, type ClientTlsOptions } from '../../src/xds/credentials.js';
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL } from '../../src/xds/workload-api.js';
import { workload } from '../helpers/xds-fixtures.js';
import { startClient } from '../helpers/xds.js';

const web = 'spiffe://cluster.local/ns/shop/sa/web';
const db = 'spiffe://cluster.local/ns/shop/sa/db';
/** Which node runs each identity's workloads (the control plane knows this from its model). */
const nodeOfIdentity = new Map([[web, 'node-a'], [db, 'node-b']]);
const tokens = new Map([['token-node-a', 'node-a'], ['token-node-b', 'node-b']]);

const authenticate: Authenticator = (ctx) => {
  const node = ctx.bearerToken ? tokens.get(ctx.bearerToken) : undefined;
  return node ? { ok: true, caller: { nodeId: node, identity: `spiffe://cluster.local/ns/istio-system/sa/ztunnel` } } : { ok: false, message: 'unknown bearer token' };
};

let ca: MeshCA;
let server: grpc.Server;
let address: string;
const seen: CaServiceRequest[] = [];
const cleanup: (() => void)[] = [];

before(async () => {
  ca = await MeshCA.create();
  server = new grpc.Server();
  const { logger } = memoryLogger();
  registerCaService(server, {
    logger,
    authenticate,
    handler: async (req) => {
      seen.push(req);
      const wanted = req.impersonatedIdentity;
      if (!wanted) throw new GrpcStatusError('INVALID_ARGUMENT', 'a node proxy must name the workload identity it asks for');
      if (nodeOfIdentity.get(wanted) !== req.caller.nodeId) {
        throw new GrpcStatusError('PERMISSION_DENIED', `${req.caller.nodeId} runs no workload with identity ${wanted}`);
      }
      const id = parseSpiffe(wanted);
      if (!id.ok) throw new GrpcStatusError('INVALID_ARGUMENT', id.error.message);
      const signed = await ca.sign({ csrPem: req.csrPem, identity: id.value, ...(req.ttlSeconds ? { ttlSeconds: req.ttlSeconds } : {}) });
      if (!signed.ok) throw signed.error;
      return signed.value.certChainPem;
    },
  });
  const port = await bindServer(server, '127.0.0.1:0', serverCredentials(undefined));
  address = `127.0.0.1:${port}`;
});

after(() => {
  for (const f of cleanup.reverse()) f();
  server.forceShutdown();
});

function client(token?: string): CaClient {
  const c = new CaClient({ address, ...(token ? { token } : {}) });
  cleanup.push(() => c.close());
  return c;
}

async function refusal(p: Promise<unknown>): Promise<AmbitError> {
  try {
    await p;
  } catch (e: unknown) {
    assert.ok(e instanceof AmbitError, String(e));
    assert.equal(e.code, 'AMBIT_ERR_CA');
    return e;
  }
  assert.fail('expected a refusal');
}

test('ca: a node proxy obtains a certificate for a workload on its node (ImpersonatedIdentity)', async () => {
  const { csrPem } = await generateKeyAndCsr(mustParseSpiffe(web));
  const chain = await client('token-node-a').createCertificate({ csrPem, ttlSeconds: 3600, impersonatedIdentity: web });
  assert.ok(chain.length >= 2, 'leaf and root');
  const leaf = new X509Certificate(chain[0]!);
  assert.equal(leaf.subjectAltName, `URI:${web}`);
  const lifetimeS = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 1000;
  assert.ok(lifetimeS <= 3600 + 5 * 60 + 1 && lifetimeS >= 3600, `lifetime ${lifetimeS}s`);
  assert.ok(leaf.verify(new X509Certificate(ca.rootPem).publicKey));
  const req = seen.at(-1)!;
  assert.equal(req.impersonatedIdentity, web);
  assert.equal(req.ttlSeconds, 3600);
  assert.deepEqual(req.metadata, { ImpersonatedIdentity: web });
  assert.equal(req.caller.nodeId, 'node-a');
  assert.match(req.peer, /127\.0\.0\.1/);
});

test('ca: a workload on another node is PERMISSION_DENIED', async () => {
  const { csrPem } = await generateKeyAndCsr(mustParseSpiffe(db));
  const e = await refusal(client('token-node-a').createCertificate({ csrPem, ttlSeconds: 3600, impersonatedIdentity: db }));
  assert.equal(e.details?.grpcStatus, 'PERMISSION_DENIED');
  assert.match(e.message, /PERMISSION_DENIED: node-a runs no workload with identity spiffe:\/\/cluster\.local\/ns\/shop\/sa\/db/);
  // The CA's own check (CSR names another identity than the one authorized) is PERMISSION_DENIED too.
  const other = await generateKeyAndCsr(mustParseSpiffe(db));
  const e2 = await refusal(client('token-node-a').createCertificate({ csrPem: other.csrPem, ttlSeconds: 3600, impersonatedIdentity: web }));
  assert.equal(e2.details?.grpcStatus, 'PERMISSION_DENIED');
  assert.match(e2.message, /the CSR asks for spiffe:\/\/cluster\.local\/ns\/shop\/sa\/db/);
});

test('ca: bad tokens are UNAUTHENTICATED and malformed requests INVALID_ARGUMENT, before the handler', async () => {
  const before = seen.length;
  const { csrPem } = await generateKeyAndCsr(mustParseSpiffe(web));
  const noToken = await refusal(client().createCertificate({ csrPem, ttlSeconds: 60, impersonatedIdentity: web }));
  assert.equal(noToken.details?.grpcStatus, 'UNAUTHENTICATED');
  const badToken = await refusal(client('nope').createCertificate({ csrPem, ttlSeconds: 60, impersonatedIdentity: web }));
  assert.equal(badToken.details?.grpcStatus, 'UNAUTHENTICATED');
  assert.match(badToken.message, /unknown bearer token/);
  const noCsr = await refusal(client('token-node-a').createCertificate({ csrPem: '', ttlSeconds: 60, impersonatedIdentity: web }));
  assert.equal(noCsr.details?.grpcStatus, 'INVALID_ARGUMENT');
  assert.equal(seen.length, before, 'the handler saw none of them');
  const down = new CaClient({ address: '127.0.0.1:1', timeoutMs: 2000 });
  cleanup.push(() => down.close());
  const unreachable = await refusal(down.createCertificate({ csrPem, ttlSeconds: 60 }));
  assert.equal(unreachable.details?.grpcStatus, 'UNAVAILABLE');
  assert.match(unreachable.hint ?? '', /control plane running/);
});

test('ca + ads on one TLS port: the client verifies the server\'s SPIFFE identity', async () => {
  const istiod = 'spiffe://cluster.local/ns/istio-system/sa/istiod';
  const cert = await ca.issueWorkloadCertificate(mustParseSpiffe(istiod));
  assert.ok(cert.ok);
  const { logger } = memoryLogger();
  const tlsServer = new grpc.Server();
  const ads = new AdsServer({ logger });
  ads.register(tlsServer);
  registerCaService(tlsServer, { logger, handler: async () => [cert.value.certChainPem.join('')] });
  const port = await bindServer(tlsServer, '127.0.0.1:0', serverCredentials({
    certChainPem: cert.value.certChainPem.join(''), privateKeyPem: cert.value.keyPem,
  }));
  cleanup.push(() => { ads.close(); tlsServer.forceShutdown(); });
  ads.setResources(ADDRESS_TYPE_URL, [addressResource({ workload: workload(1) })]);
  ads.setResources(AUTHORIZATION_TYPE_URL, []);

  const expect = (id: string) => (_host: string, c: PeerCertificate): Error | undefined =>
    (c.subjectaltname === `URI:${id}` ? undefined : new Error(`server is ${c.subjectaltname}, expected ${id}`));
  const tls: ClientTlsOptions = { rootCertPem: ca.rootPem, checkServerIdentity: expect(istiod) };

  const c = startClient(`127.0.0.1:${port}`, { tls });
  cleanup.push(() => c.client.close());
  await c.client.waitForSync();
  assert.equal(c.client.resources(addressResourceType).size, 1);
  const caClient = new CaClient({ address: `127.0.0.1:${port}`, tls });
  cleanup.push(() => caClient.close());
  const chain = await caClient.createCertificate({ csrPem: 'x', ttlSeconds: 60 });
  assert.equal(new X509Certificate(chain[0]!).subjectAltName, `URI:${istiod}`);

  // Expecting another identity: the handshake is refused, nothing is received.
  const wrong = startClient(`127.0.0.1:${port}`, { tls: { ...tls, checkServerIdentity: expect(formatSpiffe(mustParseSpiffe(web))) } });
  cleanup.push(() => wrong.client.close());
  const ev = await new Promise<{ code: string }>((resolve) => wrong.client.on('state', (e) => { if (e.error) resolve(e.error); }));
  assert.equal(ev.code, 'UNAVAILABLE');
  assert.equal(wrong.client.resources(addressResourceType).size, 0);
});
