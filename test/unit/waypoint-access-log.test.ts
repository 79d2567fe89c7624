// Telemetry accessLogging: the filter expressions, the merge of levels for waypoints and
// sidecars, and what `ambit validate` says about a Telemetry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duration, parseLogFilter, LogFilterSyntaxError, type AttributeName, type FilterInput } from '../../src/config/log-filter.js';
import { compileAccessLogConfig, requestFilterInput, shouldLog } from '../../src/waypoint/access-log-config.js';
import type { TelemetryResource, AccessLogging } from '../../src/config/resources.js';
import type { RequestRecord } from '../../src/telemetry/request-record.js';
import { validateYaml, yaml } from '../helpers/config.js';

function input(attrs: Partial<Record<AttributeName, string | number | boolean | Duration>>, headers: Record<string, string> = {}): FilterInput {
  return { attribute: (n) => attrs[n], header: (n) => headers[n] };
}

test('filter expressions: comparisons, logic, lists, strings, durations, headers', () => {
  const ok = input({ 'response.code': 200, 'request.method': 'GET', 'request.url_path': '/api/v1beta3/x', 'connection.mtls': true, 'request.duration': new Duration(2500) }, { 'x-debug': '1' });
  const cases: [string, boolean][] = [
    ['response.code >= 400', false],
    ['response.code < 400 && request.method == "GET"', true],
    ["request.method in ['POST', 'PUT']", false],
    ["!(request.method in ['POST', 'PUT'])", true],
    ["connection.mtls && request.url_path.contains('v1beta3')", true],
    ["request.url_path.startsWith('/api') && request.url_path.endsWith('/x')", true],
    ["request.url_path.matches('^/api/v[0-9]+')", true],
    ["request.headers['x-debug'] == '1'", true],
    ["request.headers['X-Debug'] == '1'", true],
    ["request.duration > duration('2s')", true],
    ["request.duration > duration('1m')", false],
    ['response.code == -1 || response.code == 200', true],
    ["!has(request.useragent) || !request.useragent.startsWith('kube-probe')", true],
    ['response.code == "200"', false],
  ];
  for (const [expr, want] of cases) assert.equal(parseLogFilter(expr).test(ok), want, expr);
});

test('filter expressions: a missing attribute or a type clash is false, and || / && absorb it when the other side decides', () => {
  const http = input({ 'response.code': 500 });
  assert.equal(parseLogFilter('response.grpc_status == 2').test(http), false);
  assert.equal(parseLogFilter('response.grpc_status != 2').test(http), false);
  assert.equal(parseLogFilter('response.grpc_status == 2 || response.code >= 500').test(http), true);
  assert.equal(parseLogFilter('response.code >= 500 || response.grpc_status == 2').test(http), true);
  assert.equal(parseLogFilter('response.grpc_status == 2 && response.code == 200').test(http), false);
  assert.equal(parseLogFilter("request.headers['x-missing'] == 'a'").test(http), false);
  assert.equal(parseLogFilter("response.code > 'a'").test(http), false);
  assert.equal(parseLogFilter('response.code').test(http), false, 'a non-bool result is not true');
});

test('filter expressions: what is not understood is refused with its column', () => {
  const bad: [string, RegExp][] = [
    ['response.code >=', /column 17: the expression ends too early/],
    ['resp.code > 400', /column 1: "resp.code" is not an attribute Ambit provides; known: request.method/],
    ['response.code > 400 ? true : false', /conditional operator/],
    ['request.path.size() > 3', /"size" is not a method Ambit evaluates/],
    ["request.path == 'abc", /the string is not closed/],
    ["request.path.matches('[')", /not an RE2 regular expression/],
    ["request.duration > duration('2 seconds')", /not a duration/],
    ['response.code >= 400 )', /column 22: unexpected "\)"/],
    ['', /empty/],
    ['request.headers.foo', /a header is named by a string/],
  ];
  for (const [expr, want] of bad) {
    assert.throws(() => parseLogFilter(expr), (e: unknown) => e instanceof LogFilterSyntaxError && want.test(e.message), expr);
  }
});

let age = 0;
function telemetry(ns: string, name: string, spec: { selector?: Record<string, string>; targetRefs?: { kind: string; name: string; group?: string }[]; accessLogging?: AccessLogging[] }): TelemetryResource {
  return {
    apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry',
    metadata: { name, namespace: ns, creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, age++)).toISOString() },
    spec: { ...(spec.selector ? { selector: { matchLabels: spec.selector } } : {}), ...(spec.targetRefs ? { targetRefs: spec.targetRefs } : {}), accessLogging: spec.accessLogging },
  };
}
const off = (extra: AccessLogging = {}): AccessLogging[] => [{ disabled: true, ...extra }];
const waypoint = { namespace: 'shop', name: 'waypoint' };
const ROOT = { rootNamespace: 'istio-system' };

test('access log resolution: on by default; mesh-wide off; a namespace turns it back on only with disabled: false', () => {
  assert.equal(compileAccessLogConfig([], ROOT).forWaypoint({ waypoint }).enabled, true);
  const root = telemetry('istio-system', 'mesh-default', { accessLogging: off() });
  let cfg = compileAccessLogConfig([root], ROOT);
  const d = cfg.forWaypoint({ waypoint });
  assert.deepEqual([d.enabled, d.from], [false, ['istio-system/mesh-default']]);
  cfg = compileAccessLogConfig([root, telemetry('shop', 'ns', { accessLogging: [{ providers: [{ name: 'envoy' }] }] })], ROOT);
  assert.equal(cfg.forWaypoint({ waypoint }).enabled, false, 'naming the provider does not undo a parent disabled: true');
  cfg = compileAccessLogConfig([root, telemetry('shop', 'ns', { accessLogging: [{ disabled: false }] })], ROOT);
  assert.equal(cfg.forWaypoint({ waypoint }).enabled, true);
  assert.equal(cfg.forWaypoint({ waypoint: { namespace: 'other', name: 'waypoint' } }).enabled, false);
});

test('access log resolution at a waypoint: Gateway and Service targetRefs, CLIENT entries do not apply, selectors are ignored', () => {
  const cfg = compileAccessLogConfig([
    telemetry('shop', 'quiet-reviews', { targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }], accessLogging: off() }),
    telemetry('shop', 'errors-only', { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression: 'response.code >= 400' } }] }),
    telemetry('shop', 'client-only', { targetRefs: [{ kind: 'Service', name: 'ratings' }], accessLogging: [{ match: { mode: 'CLIENT' }, disabled: true }] }),
    telemetry('shop', 'by-selector', { selector: { app: 'details' }, accessLogging: off() }),
  ], ROOT);
  assert.equal(cfg.forWaypoint({ waypoint, service: { namespace: 'shop', name: 'reviews' } }).enabled, false);
  const other = cfg.forWaypoint({ waypoint, service: { namespace: 'shop', name: 'details' } });
  assert.equal(other.enabled, true);
  assert.equal(other.filter?.expression, 'response.code >= 400');
  assert.deepEqual(cfg.forWaypoint({ waypoint, service: { namespace: 'shop', name: 'ratings' } }).from, ['shop/errors-only']);
  assert.equal(cfg.forWaypoint({ waypoint: { namespace: 'shop', name: 'other-waypoint' } }).filter, undefined);
});

test('access log resolution at a sidecar: selectors (root namespace ones too), CLIENT outbound, SERVER inbound; the oldest namespace-wide wins', () => {
  const cfg = compileAccessLogConfig([
    telemetry('shop', 'first', { accessLogging: [{ match: { mode: 'SERVER' }, disabled: true }] }),
    telemetry('shop', 'second', { accessLogging: off() }),
    telemetry('istio-system', 'details', { selector: { app: 'details' }, accessLogging: [{ match: { mode: 'CLIENT' }, filter: { expression: 'response.code >= 500' } }] }),
  ], ROOT);
  const details = { namespace: 'shop', labels: { app: 'details' } };
  assert.equal(cfg.forWorkload(details, 'SERVER').enabled, false);
  const out = cfg.forWorkload(details, 'CLIENT');
  assert.deepEqual([out.enabled, out.filter?.expression, out.from], [true, 'response.code >= 500', ['istio-system/details']]);
  assert.equal(cfg.forWorkload({ namespace: 'shop', labels: {} }, 'CLIENT').enabled, true, '"second" is not the oldest namespace-wide Telemetry');
});

test('access log resolution: a level that names only another provider turns envoy off', () => {
  const cfg = compileAccessLogConfig([telemetry('shop', 'otel', { accessLogging: [{ providers: [{ name: 'otel' }] }] })], ROOT);
  assert.equal(cfg.forWaypoint({ waypoint }).enabled, false);
});

test('shouldLog reads the request record and headers', () => {
  const cfg = compileAccessLogConfig([telemetry('shop', 'errors', { accessLogging: [{ filter: { expression: "response.code >= 400 || request.headers['x-log'] == 'yes'" } }] })], ROOT);
  const d = cfg.forWaypoint({ waypoint });
  const record = (code: number): RequestRecord => ({
    reporter: 'waypoint', startMs: 0, durationMs: 3, source: { ip: '10.0.0.1', port: 4000 }, protocol: 'http', httpVersion: 'HTTP/1.1',
    method: 'GET', path: '/a?b=1', authority: 'web', responseCode: code, requestBytes: 0, responseBytes: 10, responseFlags: '-', securityPolicy: 'mutual_tls',
  });
  assert.equal(shouldLog(d, record(200), {}), false);
  assert.equal(shouldLog(d, record(503), {}), true);
  assert.equal(shouldLog(d, record(200), { 'x-log': 'yes' }), true);
  const attrs = requestFilterInput(record(200), {});
  assert.deepEqual([attrs.attribute('request.url_path'), attrs.attribute('source.address'), attrs.attribute('connection.mtls')], ['/a', '10.0.0.1:4000', true]);
});

const tel = (spec: string) => yaml`
  apiVersion: telemetry.istio.io/v1
  kind: Telemetry
  metadata: {name: t, namespace: shop}
  spec:
${spec.split('\n').map((l) => '    ' + l).join('\n')}
`;

test('Telemetry validation: a bad filter, a selector with targetRefs, a foreign provider, metrics and tracing', () => {
  let ds = validateYaml(tel('accessLogging:\n- filter:\n    expression: "response.code >> 400"')).diagnostics;
  const bad = ds.find((d) => d.code === 'bad-expression');
  assert.ok(bad, JSON.stringify(ds));
  assert.deepEqual([bad.severity, bad.file, bad.line, bad.path], ['error', 'test.yaml', 7, 'spec.accessLogging[0].filter.expression']);
  assert.match(bad.message, /column 16: unexpected ">"/);

  ds = validateYaml(tel('selector: {matchLabels: {app: a}}\ntargetRefs: [{kind: Gateway, name: waypoint}]\naccessLogging: [{disabled: true}]')).diagnostics;
  assert.ok(ds.some((d) => d.code === 'conflict' && d.severity === 'error' && d.path === 'spec.selector'), JSON.stringify(ds));

  ds = validateYaml(tel('accessLogging: [{providers: [{name: otel}]}]\nmetrics: [{providers: [{name: prometheus}]}]')).diagnostics;
  assert.deepEqual(ds.map((d) => [d.severity, d.code, d.path]).sort(), [
    ['warning', 'not-applied', 'spec.metrics'],
    ['warning', 'unknown-provider', 'spec.accessLogging[0].providers[0].name'],
  ]);

  ds = validateYaml(tel('accessLogging: [{match: {mode: INBOUND}}]')).diagnostics;
  assert.ok(ds.some((d) => d.severity === 'error' && d.path === 'spec.accessLogging[0].match.mode'), JSON.stringify(ds));

  ds = validateYaml(`${tel('accessLogging: [{disabled: true}]')}\n---\n${tel('accessLogging: [{disabled: false}]').replace('name: t,', 'name: u,')}`).diagnostics;
  const dup = ds.find((d) => d.code === 'conflict');
  assert.ok(dup && dup.severity === 'warning' && /only the oldest applies/.test(dup.message), JSON.stringify(ds));
});
