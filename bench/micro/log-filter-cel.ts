// Access-log filters (Telemetry accessLogging[].filter.expression): Ambit's own parser and
// evaluator (src/config/log-filter.ts) against @marcbachmann/cel-js, a general CEL
// implementation, on the same filters and the same request attributes.
//   node dist/bench/micro/log-filter-cel.js [--ms 500]
// Prints, for each: compile time per filter, evaluation time per request (building what the
// evaluator reads from a finished request included: our FilterInput, cel-js's context object
// with CEL's int64 as BigInt), which expressions each accepts, and the error each gives for
// bad ones.
import { parseArgs } from 'node:util';
import { Environment } from '@marcbachmann/cel-js';
import { parseLogFilter, type FilterInput } from '../../src/config/log-filter.js';
import type { RequestRecord } from '../../src/telemetry/request-record.js';
import { requestFilterInput } from '../../src/waypoint/access-log-config.js';

const { values } = parseArgs({ options: { ms: { type: 'string', default: '500' } } });
const MS = Number(values.ms);

/** Filters as Istio's docs and users write them. */
const FILTERS = [
  'response.code >= 400',
  "response.code >= 500 || request.duration > duration('1s')",
  "request.headers['x-debug'] == 'true'",
  "request.method in ['POST', 'PUT', 'DELETE']",
  "request.url_path.startsWith('/api/') && response.code != 404",
  'has(response.grpc_status) && response.grpc_status != 0',
  '!connection.mtls',
  "request.path.matches('^/v[0-9]+/orders')",
  'response.code == 200 && request.total_size > 1024',
  "source.address.startsWith('10.1.') || upstream.address.endsWith(':8080')",
];

/** Expressions beyond what Ambit's parser reads (valid CEL): what each accepts. */
const BEYOND = [
  'response.code >= 400 ? true : false',
  'response.code / 100 == 5',
  'size(request.path) > 100',
  "request.headers['x-tenant'].lowerAscii() == 'acme'",
  "int(request.headers['x-retry']) > 2",
  "['a', 'b'].exists(x, request.path.contains(x))",
  "request.duration > duration('1s') && request.duration < duration('5s')",
];

/** Mistakes an operator makes: the message each gives. */
const BAD = [
  'response.code >=',
  'response.cod >= 400',
  "request.headers.x-debug == 'true'",
  "request.path.matches('[')",
  "request.duration > duration('fast')",
  "response.code >= 400 && request.method = 'GET'",
];

// ---- one finished request, as each evaluator reads it ----

interface Finished {
  method: string; path: string; authority: string; httpVersion: string; userAgent: string; requestId: string;
  durationMs: number; requestBytes: number; responseCode: number; grpcStatus: number | undefined; responseBytes: number;
  mtls: boolean; peer: string; sourceIp: string; sourcePort: number; upstream: string; headers: Record<string, string>;
}

const requests: Finished[] = Array.from({ length: 64 }, (_, i) => ({
  method: ['GET', 'POST', 'PUT'][i % 3]!, path: `/api/v${i % 3}/orders/${i}?page=${i}`, authority: 'shop.example.com', httpVersion: 'HTTP/1.1',
  userAgent: 'curl/8', requestId: `id-${i}`, durationMs: (i * 37) % 2000, requestBytes: i * 100, responseCode: [200, 404, 500, 503][i % 4]!,
  grpcStatus: i % 5 === 0 ? i % 3 : undefined, responseBytes: 512, mtls: i % 7 !== 0, peer: 'spiffe://cluster.local/ns/shop/sa/web',
  sourceIp: `10.1.0.${i}`, sourcePort: 40000 + i, upstream: `10.2.0.${i}:8080`, headers: i % 2 ? { 'x-debug': 'true' } : ({} as Record<string, string>),
}));

/** Our evaluator reads a request the way the waypoint does: requestFilterInput over its record. */
function ourInput(r: Finished): FilterInput {
  const record = {
    method: r.method, path: r.path, authority: r.authority, httpVersion: r.httpVersion, userAgent: r.userAgent, requestId: r.requestId,
    durationMs: r.durationMs, requestBytes: r.requestBytes, responseCode: r.responseCode, grpcStatus: r.grpcStatus, responseBytes: r.responseBytes,
    securityPolicy: r.mtls ? 'mutual_tls' : 'unknown', source: { ip: r.sourceIp, port: r.sourcePort, identity: r.peer }, upstreamHost: r.upstream,
  } as unknown as RequestRecord;
  return requestFilterInput(record, r.headers);
}

const env = new Environment({ limits: { maxAstNodes: 1000, maxDepth: 50 } })
  .registerVariable('request', 'map').registerVariable('response', 'map').registerVariable('connection', 'map')
  .registerVariable('source', 'map').registerVariable('upstream', 'map');

/** CEL's context: int64 attributes as BigInt, the duration as a cel-js Duration (seconds, nanos). */
function celContext(r: Finished, durationOf: (ms: number) => unknown): Record<string, unknown> {
  const q = r.path.indexOf('?');
  const response: Record<string, unknown> = { code: BigInt(r.responseCode), total_size: BigInt(r.responseBytes) };
  if (r.grpcStatus !== undefined) response.grpc_status = BigInt(r.grpcStatus);
  return {
    request: {
      method: r.method, path: r.path, url_path: q < 0 ? r.path : r.path.slice(0, q), host: r.authority, protocol: r.httpVersion,
      useragent: r.userAgent, id: r.requestId, duration: durationOf(r.durationMs), total_size: BigInt(r.requestBytes), headers: r.headers,
    },
    response,
    connection: { mtls: r.mtls, uri_san_peer_certificate: r.peer },
    source: { address: `${r.sourceIp}:${r.sourcePort}`, port: BigInt(r.sourcePort) },
    upstream: { address: r.upstream },
  };
}

// cel-js's Duration type, taken from a value it made.
const celDurationCtor = (env.evaluate("duration('1s')") as object).constructor as new (seconds: bigint, nanos: number) => unknown;
const celDuration = (ms: number): unknown => new celDurationCtor(BigInt(Math.floor(ms / 1000)), (ms % 1000) * 1e6);

function perOp(fn: () => void): number {
  const once = (budget: number): number => {
    let n = 0;
    const start = process.hrtime.bigint();
    const until = start + BigInt(budget) * 1_000_000n;
    while (process.hrtime.bigint() < until) { for (let k = 0; k < 32; k++) fn(); n += 32; }
    return Number(process.hrtime.bigint() - start) / n;
  };
  once(Math.min(200, MS));
  return [once(MS), once(MS), once(MS)].sort((a, b) => a - b)[1]!;
}

const celTest = (compiled: (ctx: Record<string, unknown>) => unknown, ctx: Record<string, unknown>): boolean => {
  try {
    return compiled(ctx) === true;
  } catch {
    return false; // an evaluation error (a missing attribute) makes the filter false, as in Envoy
  }
};

process.stdout.write(`log-filter micro-bench: node ${process.version}, ${new Date().toISOString()}\n\n`);
process.stdout.write(`${'filter'.padEnd(72)} ${'compile ours'.padStart(13)} ${'compile cel-js'.padStart(15)} ${'eval ours'.padStart(10)} ${'eval cel-js'.padStart(12)}  agree\n`);
let sums = [0, 0, 0, 0];
for (const f of FILTERS) {
  const ours = parseLogFilter(f);
  const cel = env.parse(f);
  const checked = cel.check();
  if (!checked.valid) throw new Error(`cel-js refused ${f}: ${checked.error?.message}`);
  const agree = requests.every((r) => ours.test(ourInput(r)) === celTest(cel, celContext(r, celDuration)));
  let i = 0;
  const t = [
    perOp(() => parseLogFilter(f)),
    perOp(() => env.parse(f).check()),
    perOp(() => { ours.test(ourInput(requests[i++ & 63]!)); }),
    perOp(() => { celTest(cel, celContext(requests[i++ & 63]!, celDuration)); }),
  ];
  sums = sums.map((s, k) => s + t[k]!);
  const us = (ns: number) => `${(ns / 1000).toFixed(2)} µs`;
  process.stdout.write(`${f.padEnd(72)} ${us(t[0]!).padStart(13)} ${us(t[1]!).padStart(15)} ${us(t[2]!).padStart(10)} ${us(t[3]!).padStart(12)}  ${agree ? 'yes' : 'NO'}\n`);
}
const n = FILTERS.length;
process.stdout.write(`${'mean'.padEnd(72)} ${((sums[0]! / n) / 1000).toFixed(2).padStart(10)} µs ${((sums[1]! / n) / 1000).toFixed(2).padStart(12)} µs ${((sums[2]! / n) / 1000).toFixed(2).padStart(7)} µs ${((sums[3]! / n) / 1000).toFixed(2).padStart(9)} µs\n`);

process.stdout.write('\ncoverage beyond the filters above (valid CEL):\n');
for (const f of BEYOND) {
  let ours = 'accepts';
  try { parseLogFilter(f); } catch (e: unknown) { ours = `refuses: ${(e as Error).message}`; }
  let cel = 'accepts';
  try { const c = env.parse(f).check(); if (!c.valid) cel = `refuses: ${c.error?.message.split('\n')[0]}`; } catch (e: unknown) { cel = `refuses: ${(e as Error).message.split('\n')[0]}`; }
  process.stdout.write(`  ${f}\n    ours:   ${ours}\n    cel-js: ${cel}\n`);
}

process.stdout.write('\nmistakes (the message each gives):\n');
for (const f of BAD) {
  let ours = 'accepted';
  try { parseLogFilter(f); } catch (e: unknown) { ours = (e as Error).message; }
  let cel = 'accepted';
  try { const c = env.parse(f).check(); if (!c.valid) cel = c.error?.message ?? 'invalid'; } catch (e: unknown) { cel = (e as Error).message; }
  process.stdout.write(`  ${f}\n    ours:   ${ours}\n    cel-js: ${cel.replace(/\n+/g, ' | ')}\n`);
}
