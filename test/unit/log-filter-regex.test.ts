// Access-log filters' matches() is RE2, as CEL's is: linear time whatever the pattern (no
// catastrophic backtracking from a config author or from a request), RE2's syntax (inline
// flags such as (?i) work; backreferences and lookaround are refused when the config is
// validated, with file, line and field), and bounded input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_MATCH_INPUT_CHARS, parseLogFilter, LogFilterSyntaxError, type AttributeName, type FilterInput } from '../../src/config/log-filter.js';
import { validateYaml, yaml } from '../helpers/config.js';
import { fuzz, quick } from '../helpers/fuzz.js';

function input(attrs: Partial<Record<AttributeName, string | number>>, headers: Record<string, string> = {}): FilterInput {
  return { attribute: (n) => attrs[n], header: (n) => headers[n] };
}

/** Milliseconds one call takes. */
function timed(f: () => unknown): number {
  const t = performance.now();
  f();
  return performance.now() - t;
}

// Patterns that backtrack exponentially (or polynomially) in a backtracking engine on a
// near-miss input; JavaScript's RegExp took minutes on the 40-character inputs below.
const evil: [string, string][] = [
  ['^(a+)+$', `${'a'.repeat(40)}!`],
  ['^(a|a)*$', `${'a'.repeat(40)}!`],
  ['^(a|aa)+$', `${'a'.repeat(60)}!`],
  ['^(.*a){20}$', 'a'.repeat(40)],
  ['^(\\w+\\s?)*$', `${'word '.repeat(12)}!`],
];

for (const [pattern, text] of evil) {
  test(`matches() is linear: ${JSON.stringify(pattern)} on a near-miss of ${text.length} characters answers at once`, () => {
    const f = parseLogFilter(`request.path.matches(${JSON.stringify(pattern)})`);
    const ms = timed(() => f.test(input({ 'request.path': text })));
    assert.ok(ms < 200, `took ${ms.toFixed(0)} ms`);
  });
}

test('matches() with a pattern from the request (a header) is linear too, and bounded in length', () => {
  const f = parseLogFilter("request.path.matches(request.headers['x-re'])");
  const ms = timed(() => assert.equal(f.test(input({ 'request.path': `${'a'.repeat(40)}!` }, { 'x-re': '^(a+)+$' })), false));
  assert.ok(ms < 200, `took ${ms.toFixed(0)} ms`);
  assert.equal(f.test(input({ 'request.path': '/abc' }, { 'x-re': 'b' })), true);
  assert.equal(f.test(input({ 'request.path': '/abc' }, { 'x-re': `b|${'x'.repeat(2000)}` })), false, 'a pattern over the bound is an evaluation error (false)');
  assert.equal(f.test(input({ 'request.path': '/abc' }, { 'x-re': '(a)\\1' })), false, 'not RE2: an evaluation error (false)');
});

test('matches() reads at most MAX_MATCH_INPUT_CHARS: longer text is an evaluation error (false)', () => {
  const f = parseLogFilter("request.path.matches('z$')");
  assert.equal(f.test(input({ 'request.path': `${'a'.repeat(MAX_MATCH_INPUT_CHARS - 1)}z` })), true);
  assert.equal(f.test(input({ 'request.path': `${'a'.repeat(MAX_MATCH_INPUT_CHARS)}z` })), false);
  assert.equal(parseLogFilter("!request.path.matches('z$')").test(input({ 'request.path': `${'a'.repeat(MAX_MATCH_INPUT_CHARS)}z` })), false, 'an error, not a non-match');
});

test('RE2 semantics: a match anywhere, inline flags, RE2 classes', () => {
  const cases: [string, string, boolean][] = [
    ['v[0-9]+', '/api/v2/x', true],
    ['^/api$', '/api/v2', false],
    ['(?i)^/ADMIN', '/admin/x', true],
    ['\\pL+', 'é', true],
    ['[[:digit:]]{3}', 'a123', true],
    ['^\\Q/a.b\\E$', '/a.b', true],
    ['^\\Q/a.b\\E$', '/axb', false],
  ];
  for (const [pattern, path, want] of cases) {
    assert.equal(parseLogFilter(`request.path.matches(${JSON.stringify(pattern)})`).test(input({ 'request.path': path })), want, `${pattern} on ${path}`);
  }
});

const notRe2: [string, RegExp][] = [
  ['(a)\\1', /not an RE2 regular expression[^]*backreferences/],
  ['a(?=b)', /not an RE2 regular expression/],
  ['a(?!b)', /not an RE2 regular expression/],
  ['(?<=a)b', /not an RE2 regular expression/],
  ['(?<!a)b', /not an RE2 regular expression/],
  ['a++', /not an RE2 regular expression/],
  ['[', /not an RE2 regular expression/],
];

for (const [pattern, want] of notRe2) {
  test(`matches(${JSON.stringify(pattern)}) is refused when parsed, with its column`, () => {
    const expr = `response.code >= 400 && request.path.matches(${JSON.stringify(pattern)})`;
    assert.throws(() => parseLogFilter(expr), (e: unknown) => e instanceof LogFilterSyntaxError && want.test(e.message) && /column 38/.test(e.message), expr);
  });
}

test('a Telemetry whose filter uses a backreference is an error with file, line and field', () => {
  const doc = yaml`
    apiVersion: telemetry.istio.io/v1
    kind: Telemetry
    metadata: {name: t, namespace: shop}
    spec:
      accessLogging:
      - filter:
          expression: 'request.path.matches("^/(a+)\\\\1$")'
  `;
  const ds = validateYaml(doc).diagnostics;
  const bad = ds.find((d) => d.code === 'bad-expression');
  assert.ok(bad, JSON.stringify(ds));
  assert.deepEqual([bad.severity, bad.file, bad.line, bad.path], ['error', 'test.yaml', 7, 'spec.accessLogging[0].filter.expression']);
  assert.match(bad.message, /not an RE2 regular expression/);
});

test('property: any pattern the parser accepts evaluates on any text quickly (never a throw)', () => {
  const atom = fc.constantFrom('a', 'b', '.', '\\w', '\\s', '[ab]', '(a|aa)', '(a+)', '(.*a)', 'x?');
  const quant = fc.constantFrom('', '*', '+', '?', '{2,5}', '{1,20}');
  const pattern = fc.array(fc.tuple(atom, quant).map(([a, q]) => a + q), { minLength: 1, maxLength: 8 }).map((xs) => `^(${xs.join('')})+$`);
  const text = fc.tuple(fc.stringMatching(/^[ab ]{0,60}$/), fc.constantFrom('', '!', 'a')).map(([t, e]) => t + e);
  fuzz('log filter: RE2 patterns over any text', fc.property(pattern, text, (p, t) => {
    let f;
    try {
      f = parseLogFilter(`request.path.matches(${JSON.stringify(p)})`);
    } catch (e: unknown) {
      assert.ok(e instanceof LogFilterSyntaxError, String(e));
      return;
    }
    quick(() => f.test(input({ 'request.path': t })), 100, `matching ${p} on ${JSON.stringify(t)}`);
  }), { seed: 1470, numRuns: 400 });
});
