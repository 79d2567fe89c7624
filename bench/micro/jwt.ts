// RequestAuthentication's cost per request at the waypoint: `authenticateRequest` over a valid
// bearer token (RS256, ES256, EdDSA), an expired one, and a request without a token, in one
// process. Prints requests per second (median of three runs) one at a time and with 16 in
// flight, and the main thread's CPU time per request (process.threadCpuUsage): signature
// checks that run on libuv's thread pool (WebCrypto) leave the main thread free for traffic.
//   node dist/bench/micro/jwt.js [--ms 1000]
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { RequestAuthenticationResource } from '../../src/config/resources.js';
import { authenticateRequest, compileRequestAuthn, type AuthnRequest, type JwtProvider } from '../../src/waypoint/request-authn.js';
import { fmtOps } from './bench-loop.js';

const { values } = parseArgs({ options: { ms: { type: 'string', default: '1000' } } });
const MS = Number(values.ms);
const ISS = 'https://issuer.example.com';
const NOW = Math.floor(Date.now() / 1000);

type Alg = 'RS256' | 'ES256' | 'EdDSA';
const keys: Record<Alg, KeyObject> = {
  RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  EdDSA: generateKeyPairSync('ed25519').privateKey,
};

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
function token(alg: Alg, claims: Record<string, unknown>): string {
  const input = `${b64({ alg, typ: 'JWT', kid: alg })}.${b64(claims)}`;
  const data = Buffer.from(input);
  const sig = alg === 'EdDSA' ? sign(null, data, keys[alg]) : sign('sha256', data, alg === 'ES256' ? { key: keys[alg], dsaEncoding: 'ieee-p1363' } : keys[alg]);
  return `${input}.${sig.toString('base64url')}`;
}

const jwks = JSON.stringify({ keys: (Object.keys(keys) as Alg[]).map((alg) => ({ ...keys[alg].export({ format: 'jwk' }), d: undefined, p: undefined, q: undefined, dp: undefined, dq: undefined, qi: undefined, kid: alg, use: 'sig' })) });
const ra: RequestAuthenticationResource = {
  apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'jwt', namespace: 'shop' },
  spec: { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], jwtRules: [{ issuer: ISS, jwks, audiences: ['shop'] }] },
};
const set = compileRequestAuthn([ra], () => '');
if (set.errors.length) throw new Error(set.errors.join('\n'));
const providers: JwtProvider[] = set.providersFor({ kind: 'Gateway', namespace: 'shop', name: 'waypoint' });
const claims = { iss: ISS, sub: 'alice', aud: 'shop', iat: NOW - 10, exp: NOW + 3600, groups: ['dev'] };

/** Median of three runs: requests per second and main-thread busy time per request. */
async function measure(req: AuthnRequest, want: string, concurrency: number): Promise<{ ops: number; busyUs: number }> {
  const first = await authenticateRequest(providers, req, NOW);
  if (first.kind !== want) throw new Error(`expected ${want}, got ${JSON.stringify(first)}`);
  const batch = Array.from({ length: concurrency });
  const once = async (budget: number): Promise<{ ops: number; busyUs: number }> => {
    let n = 0;
    const cpu = process.threadCpuUsage();
    const start = process.hrtime.bigint();
    const until = start + BigInt(budget) * 1_000_000n;
    while (process.hrtime.bigint() < until) {
      for (let k = 0; k < 16; k += concurrency) await Promise.all(batch.map(() => authenticateRequest(providers, req, NOW)));
      n += 16;
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const used = process.threadCpuUsage(cpu);
    return { ops: n / seconds, busyUs: (used.user + used.system) / n };
  };
  await once(Math.min(300, MS));
  const runs = [await once(MS), await once(MS), await once(MS)].sort((a, b) => a.ops - b.ops);
  return runs[1]!;
}

const bearer = (t: string): AuthnRequest => ({ headers: { authorization: `Bearer ${t}`, host: 'shop' }, path: '/cart' });
const cases: [string, AuthnRequest, string][] = [
  ['no token', { headers: { host: 'shop' }, path: '/cart' }, 'anonymous'],
  ['RS256 valid', bearer(token('RS256', claims)), 'authenticated'],
  ['ES256 valid', bearer(token('ES256', claims)), 'authenticated'],
  ['EdDSA valid', bearer(token('EdDSA', claims)), 'authenticated'],
  ['RS256 expired', bearer(token('RS256', { ...claims, exp: NOW - 3600 })), 'rejected'],
  ['wrong issuer', bearer(token('RS256', { ...claims, iss: 'https://other.example.com' })), 'rejected'],
];
process.stdout.write(`jwt micro-bench: node ${process.version}, ${new Date().toISOString()}\n`);
process.stdout.write(`${'case'.padEnd(16)} ${'one at a time'.padStart(24)} ${'16 in flight'.padStart(24)}  main-thread CPU µs/request (1 / 16)\n`);
for (const [name, req, want] of cases) {
  const one = await measure(req, want, 1);
  const many = await measure(req, want, 16);
  const fmt = (r: { ops: number }) => `${fmtOps(r.ops)} (${(1e6 / r.ops).toFixed(1)} µs)`;
  process.stdout.write(`${name.padEnd(16)} ${fmt(one).padStart(24)} ${fmt(many).padStart(24)}  ${one.busyUs.toFixed(1)} / ${many.busyUs.toFixed(1)}\n`);
}
