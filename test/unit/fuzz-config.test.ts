// Property tests of config reading: YAML/JSON text through the one validator, the mesh config
// (`data.mesh` of the istio ConfigMap) and access-log filter expressions. For any text: no
// throw, no hang, and every refusal is a diagnostic with a file, a line, a code and words;
// a valid config means the same in every YAML spelling; a filter evaluates as CEL says.
// `npm run fuzz` runs the same properties with random seeds for longer (test/helpers/fuzz.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parseAllDocuments, stringify } from 'yaml';
import { validateSources } from '../../src/config/validate.js';
import { parseMeshConfig, PATH_NORMALIZATIONS } from '../../src/config/mesh-config.js';
import { LogFilterSyntaxError, MAX_DEPTH, parseLogFilter, type AttributeName } from '../../src/config/log-filter.js';
import type { Diagnostic } from '../../src/config/diagnostics.js';
import { fuzz, quick } from '../helpers/fuzz.js';

const SLOW_MS = 2000;

// ---- a corpus of valid resources, each kind Ambit reads ----

const demo = ['00-namespaces.yaml', '10-apps.yaml', '20-policy.yaml']
  .flatMap((f) => parseAllDocuments(readFileSync(new URL(`../../../examples/demo/${f}`, import.meta.url), 'utf8')).map((d) => d.toJS() as object))
  .filter((v) => v !== null);

const more: object[] = [
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh: 'pathNormalization:\n  normalization: BASE\n' } },
  { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'waypoint', namespace: 'demo' }, spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] } },
  { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'r', namespace: 'demo' }, spec: { parentRefs: [{ group: '', kind: 'Service', name: 'echo' }], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/v2' } }], backendRefs: [{ name: 'echo', port: 8080 }] }] } },
  { apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name: 't', namespace: 'demo' }, spec: { accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression: "response.code >= 400 || request.headers['x-debug'] == '1'" } }] } },
  { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'demo' }, spec: { mtls: { mode: 'STRICT' } } },
  { apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'jwt', namespace: 'demo' }, spec: { selector: { matchLabels: { app: 'echo' } }, jwtRules: [{ issuer: 'https://issuer.example', jwksUri: 'file:///etc/ambit/jwks.json' }] } },
  { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'vs', namespace: 'demo' }, spec: { hosts: ['echo'], http: [{ route: [{ destination: { host: 'echo' } }] }] } },
];
const corpus = [...demo, ...more];

function checkDiagnostics(ds: Diagnostic[], file: string): void {
  for (const d of ds) {
    assert.ok(d.severity === 'error' || d.severity === 'warning', JSON.stringify(d));
    assert.equal(d.file, file);
    assert.ok(Number.isInteger(d.line) && d.line >= 0, `line ${d.line}`);
    assert.ok(typeof d.code === 'string' && /^[a-z][a-z-]*$/.test(d.code), `code ${d.code}`);
    assert.ok(typeof d.message === 'string' && d.message.trim().length > 0, 'no words');
  }
}

function validate(text: string) {
  return quick(() => validateSources([{ file: 'fuzz.yaml', text }]), SLOW_MS, 'validating');
}

// Text that looks like YAML: the structure tokens of the language and the words of a resource.
const yamlToken = fc.constantFrom(
  '\n', '\n  ', '\n    ', '  ', '- ', ': ', ':', '? ', ',', '{', '}', '[', ']', '"', "'", '#', '|', '>-', '---\n', '...\n', '&a ', '*a', '&b ', '*b', '<<: ', '!!str ', '!!map ', '!!binary ', '!foo ', '%YAML 1.2\n', '\t',
  'apiVersion', 'v1', 'kind', 'Pod', 'Service', 'AuthorizationPolicy', 'Telemetry', 'ConfigMap', 'List', 'items', 'metadata', 'name', 'namespace', 'spec', 'labels', 'selector',
  'matchLabels', 'rules', 'from', 'to', 'ports', 'containers', 'image', 'x', '1', '-1', '1e9', '0x10', 'true', 'null', '~', '__proto__', 'constructor', 'data', 'mesh', 'expression',
);
const yamlish = fc.array(yamlToken, { maxLength: 80 }).map((t) => t.join(''));

test('property: any text gets diagnostics with file, line, code and words — never a throw or a hang', () => {
  fuzz('config: any text through the validator', fc.property(fc.oneof(fc.string({ maxLength: 300 }), yamlish, fc.string({ unit: 'binary', maxLength: 200 })), (text) => {
    const r = validate(text);
    checkDiagnostics(r.diagnostics, 'fuzz.yaml');
  }), { seed: 1410, numRuns: 1500 });
});

// A valid resource with one part replaced by anything: a wrong type, a missing field, junk.
const mutated = fc.tuple(fc.constantFrom(...corpus), fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), fc.oneof(fc.anything({ maxDepth: 2 }), fc.constant(undefined)))
  .map(([base, path, value]) => {
    const copy = structuredClone(base) as Record<string, unknown>;
    let node: Record<string, unknown> = copy;
    for (const step of path) {
      const keys = Object.keys(node);
      if (keys.length === 0) break;
      const k = keys[step % keys.length]!;
      const next = node[k];
      if (next === null || typeof next !== 'object' || step % 3 === 0) {
        if (value === undefined) delete node[k];
        else node[k] = value;
        break;
      }
      node = next as Record<string, unknown>;
    }
    return copy;
  });

test('property: a resource with any part broken is either accepted or refused with an error diagnostic', () => {
  fuzz('config: mutated resources', fc.property(mutated, fc.boolean(), (value, asJson) => {
    const text = asJson ? JSON.stringify(value) : stringify(value);
    const r = validate(text);
    checkDiagnostics(r.diagnostics, 'fuzz.yaml');
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    // One document in: one resource out, or at least one error saying why not.
    assert.ok(r.added.length === 1 || errors.length > 0, `dropped without a word: ${text.slice(0, 300)}`);
    if (r.added.length === 1) assert.equal(r.added[0]!.source.file, 'fuzz.yaml');
  }), { seed: 1411, numRuns: 1500 });
});

// The same data in other spellings: flow or block style, quoting, indentation, JSON. (Lines are
// not folded: the yaml library's writer folds a double-quoted string deep in a flow collection
// into text that reads back with "undefined" in it; its reader is what is under test here.)
const spelling = fc.record({
  flow: fc.boolean(),
  indent: fc.integer({ min: 1, max: 6 }),
  quote: fc.constantFrom('PLAIN', 'QUOTE_DOUBLE', 'QUOTE_SINGLE') as fc.Arbitrary<'PLAIN' | 'QUOTE_DOUBLE' | 'QUOTE_SINGLE'>,
  json: fc.boolean(),
  leadingComment: fc.boolean(),
});

function spell(docs: object[], s: { flow: boolean; indent: number; quote: 'PLAIN' | 'QUOTE_DOUBLE' | 'QUOTE_SINGLE'; json: boolean; leadingComment: boolean }): string {
  const body = docs.map((d) => (s.json ? JSON.stringify(d, null, s.indent) : stringify(d, { indent: s.indent, collectionStyle: s.flow ? 'flow' : 'block', defaultStringType: s.quote, defaultKeyType: 'PLAIN', lineWidth: 0 }))).join('\n---\n');
  return s.leadingComment ? `# generated\n${body}` : body;
}

const essence = (ds: Diagnostic[]): string[] => ds.map((d) => `${d.severity} ${d.code} ${d.resource ?? ''} ${d.path ?? ''} ${d.message}`).sort();

test('property: valid config means the same in every YAML spelling (same resources, same warnings)', () => {
  fuzz('config: spellings of valid config', fc.property(fc.subarray(corpus, { minLength: 1 }), spelling, (docs, s) => {
    const plain = validate(spell(docs, { flow: false, indent: 2, quote: 'PLAIN', json: false, leadingComment: false }));
    const other = validate(spell(docs, s));
    assert.deepEqual(plain.diagnostics.filter((d) => d.severity === 'error'), [], 'the corpus is valid');
    assert.deepEqual(other.added.map((l) => l.resource), plain.added.map((l) => l.resource));
    assert.deepEqual(essence(other.diagnostics), essence(plain.diagnostics));
  }), { seed: 1412, numRuns: 150 });
});

test('YAML aliases: an expansion bomb and a value that contains itself are diagnostics, not exceptions', () => {
  const bomb = `a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n`;
  const circular = 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i}]\n  affinity: &a {x: *a}\n';
  for (const [text, words] of [[bomb, /fewer YAML aliases/], [`kind: Namespace\n---\n${circular}`, /contains itself|inside the node it names/]] as const) {
    const r = validate(text);
    assert.ok(!r.added.some((l) => l.resource.kind === 'Pod'));
    const e = r.diagnostics.find((d) => d.code === 'syntax');
    assert.ok(e, JSON.stringify(r.diagnostics));
    assert.match(e.message, words);
    assert.ok(e.line >= 1);
  }
  // The diagnostic points at the line where the document starts.
  assert.equal(validate(`kind: Namespace\napiVersion: v1\n---\n${circular}`).diagnostics.find((d) => d.code === 'syntax')!.line, 4);
  for (const text of [bomb, 'defaultConfig: &a {x: *a}\n']) {
    const m = parseMeshConfig(text);
    assert.equal(m.issues[0]!.severity, 'error');
    assert.equal(m.issues[0]!.code, 'syntax');
  }
});

// ---- mesh config ----

const meshValue = fc.record({
  pathNormalization: fc.option(fc.record({ normalization: fc.oneof(fc.constantFrom(...PATH_NORMALIZATIONS), fc.string({ maxLength: 12 })) }, { requiredKeys: [] }), { nil: undefined }),
  outboundTrafficPolicy: fc.option(fc.record({ mode: fc.constantFrom('ALLOW_ANY', 'REGISTRY_ONLY', 'allow_any', 'NONE') }), { nil: undefined }),
  defaultConfig: fc.option(fc.anything({ maxDepth: 2 }), { nil: undefined }),
  unknownField: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
}, { requiredKeys: [] });

test('property: mesh config text of any shape gets a config or issues with lines, never a throw', () => {
  fuzz('mesh config: any text', fc.property(fc.oneof(fc.string({ maxLength: 200 }), yamlish, meshValue.map((v) => stringify(v)), meshValue.map((v) => JSON.stringify(v))), (text) => {
    const r = quick(() => parseMeshConfig(text), SLOW_MS, 'parsing mesh config');
    for (const i of r.issues) {
      assert.ok(Number.isInteger(i.line) && i.line >= 1, `line ${i.line}`);
      assert.ok(i.message.trim().length > 0);
    }
    assert.ok((PATH_NORMALIZATIONS as readonly string[]).includes(r.config.pathNormalization));
    assert.ok(['ALLOW_ANY', 'REGISTRY_ONLY'].includes(r.config.outboundTrafficPolicy));
  }), { seed: 1413, numRuns: 1500 });
});

test('property: a valid mesh config applies what it says, in any spelling', () => {
  fuzz('mesh config: valid values', fc.property(fc.constantFrom(...PATH_NORMALIZATIONS), fc.constantFrom('ALLOW_ANY', 'REGISTRY_ONLY'), spelling, (normalization, mode, s) => {
    const r = parseMeshConfig(spell([{ pathNormalization: { normalization }, outboundTrafficPolicy: { mode } }], s));
    assert.deepEqual(r.issues.filter((i) => i.severity === 'error'), []);
    assert.deepEqual(r.config, { pathNormalization: normalization, outboundTrafficPolicy: mode });
  }), { seed: 1414, numRuns: 200 });
});

// ---- access-log filters ----

const filterToken = fc.constantFrom(
  'response.code', 'request.method', 'request.path', 'request.headers', "['x-a']", '"x"', "'y'", 'has(', 'duration(', "'1.5s'", 'true', 'false', 'null',
  '&&', '||', '!', '-', '==', '!=', '<', '<=', '>', '>=', 'in', '[', ']', '(', ')', '.', ',', '?', ':', '.startsWith(', '.matches(', "'^a+$'", '1', '200', '2.5', '1e3', ' ', '\\', '"', "'", 'connection.mtls', 'request.headers.x', 'bogus', '#', '@',
);
const filterish = fc.array(filterToken, { maxLength: 30 }).map((t) => t.join(' '));

test('property: any filter text parses or throws a LogFilterSyntaxError with a column inside it — nothing else', () => {
  fuzz('log filter: any text', fc.property(fc.oneof(fc.string({ maxLength: 120 }), filterish, fc.nat({ max: 300 }).map((n) => '('.repeat(n) + '1' + ')'.repeat(n)), fc.nat({ max: 3000 }).map((n) => '!'.repeat(n) + 'true')), (text) => {
    try {
      const f = quick(() => parseLogFilter(text), SLOW_MS, 'parsing a filter');
      // A filter that parses runs on any input without throwing.
      assert.equal(typeof f.test({ attribute: () => undefined, header: () => undefined }), 'boolean');
      assert.equal(typeof f.test({ attribute: (n) => (n === 'request.duration' ? undefined : n.startsWith('response') ? 200 : 'GET'), header: () => 'v' }), 'boolean');
    } catch (e: unknown) {
      if (!(e instanceof LogFilterSyntaxError)) throw e;
      assert.ok(e.column >= 1 && e.column <= text.length + 1, `column ${e.column} of ${text.length}`);
      assert.ok(e.message.length > 'column 1: '.length);
    }
  }), { seed: 1415, numRuns: 3000 });
});

// Boolean expressions with a known meaning: CEL's logic, where a missing attribute is an error
// that `&&` / `||` absorb when the other side decides, and the filter is true only when true.
type Truth = true | false | 'error';
interface Expr { text: string; value: Truth; depth: number }

const env = { 'response.code': 503, 'request.method': 'POST' } as Record<string, string | number>;
const headers: Record<string, string> = { 'x-debug': '1' };

const atom: fc.Arbitrary<Expr> = fc.oneof(
  fc.constantFrom<Expr>(
    { text: 'true', value: true, depth: 1 }, { text: 'false', value: false, depth: 1 },
    { text: 'response.code >= 500', value: true, depth: 2 }, { text: 'response.code < 400', value: false, depth: 2 },
    { text: "request.method == 'POST'", value: true, depth: 2 }, { text: "request.method in ['GET', 'HEAD']", value: false, depth: 3 },
    { text: "request.headers['X-Debug'] == '1'", value: true, depth: 2 }, { text: "has(request.headers['x-none'])", value: false, depth: 2 },
    { text: 'response.grpc_status == 0', value: 'error', depth: 2 }, { text: "request.headers['x-none'] == 'a'", value: 'error', depth: 2 },
    { text: "request.method.startsWith('PO')", value: true, depth: 2 }, { text: "request.method.matches('^G')", value: false, depth: 2 },
    { text: '1 < "a"', value: 'error', depth: 2 }, { text: "'a' == 1", value: false, depth: 2 },
  ),
);

const expr: fc.Arbitrary<Expr> = fc.letrec<{ e: Expr }>((tie) => ({
  e: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    atom,
    fc.tuple(tie('e'), tie('e')).map(([a, b]): Expr => ({ text: `(${a.text}) && (${b.text})`, value: and(a.value, b.value), depth: Math.max(a.depth, b.depth) + 1 })),
    fc.tuple(tie('e'), tie('e')).map(([a, b]): Expr => ({ text: `${a.text} || ${b.text}`.replace(/^(.*)$/, '($1)'), value: or(a.value, b.value), depth: Math.max(a.depth, b.depth) + 1 })),
    tie('e').map((a): Expr => ({ text: `!(${a.text})`, value: a.value === 'error' ? 'error' : !a.value, depth: a.depth + 1 })),
  ),
})).e;

function and(a: Truth, b: Truth): Truth {
  if (a === false || b === false) return false;
  return a === 'error' || b === 'error' ? 'error' : true;
}
function or(a: Truth, b: Truth): Truth {
  if (a === true || b === true) return true;
  return a === 'error' || b === 'error' ? 'error' : false;
}

test('property: a filter is true exactly when CEL says true (errors absorbed by && and || when the other side decides)', () => {
  fuzz('log filter: meaning', fc.property(expr, (e) => {
    if (e.depth > MAX_DEPTH) return;
    const f = parseLogFilter(e.text);
    const got = f.test({ attribute: (n: AttributeName) => env[n], header: (n) => headers[n] });
    assert.equal(got, e.value === true, `${e.text} is ${String(e.value)}`);
  }), { seed: 1416, numRuns: 1500 });
});

test('filters nested past the limit are a syntax error, at parse time, and never a stack overflow at evaluation', () => {
  for (const text of ['('.repeat(5000) + 'true' + ')'.repeat(5000), '!'.repeat(100_000) + 'true', Array(20_000).fill('response.code == 200').join(' && '), '['.repeat(500) + ']'.repeat(500)]) {
    assert.throws(() => parseLogFilter(text), (e: unknown) => e instanceof LogFilterSyntaxError && /nests deeper than 64 levels/.test(e.message));
  }
  // A chain of n comparisons is n + 1 deep (the ||s, the comparison, its operands).
  assert.ok(parseLogFilter(Array(MAX_DEPTH - 1).fill('response.code == 200').join(' || ')));
  // Through the validator, it is the Telemetry's diagnostic.
  const t = (expression: string) => stringify({ apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name: 't', namespace: 'demo' }, spec: { accessLogging: [{ filter: { expression } }] } });
  const r = validate(t('('.repeat(5000) + 'true' + ')'.repeat(5000)));
  const d = r.diagnostics.find((x) => x.code === 'bad-expression');
  assert.ok(d, JSON.stringify(r.diagnostics));
  assert.equal(d.path, 'spec.accessLogging[0].filter.expression');
});
