// Request normalization before L7 authorization and routing: a table of path spellings ×
// normalization modes, the request-target forms, and properties over random paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isNormalMethod, normalizePath, normalizeRequestTarget, type PathNormalizationMode } from '../../src/core/http-request-target.js';

const MODES: PathNormalizationMode[] = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];
const REFUSED = null;

// path -> [NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES]
const TABLE: [string, (string | null)[]][] = [
  ['/admin', ['/admin', '/admin', '/admin', '/admin']],
  ['/./admin', ['/./admin', '/admin', '/admin', '/admin']],
  ['//admin', ['//admin', '//admin', '/admin', '/admin']],
  ['/%61dmin', ['/%61dmin', '/admin', '/admin', '/admin']],
  ['/%41DMIN', ['/%41DMIN', '/ADMIN', '/ADMIN', '/ADMIN']],
  ['/x/../admin', ['/x/../admin', '/admin', '/admin', '/admin']],
  ['/x/%2e%2e/admin', ['/x/%2e%2e/admin', '/admin', '/admin', '/admin']],
  ['/x/%2E./admin', ['/x/%2E./admin', '/admin', '/admin', '/admin']],
  ['/../../admin', ['/../../admin', '/admin', '/admin', '/admin']],
  ['/a/b/..', ['/a/b/..', '/a/', '/a/', '/a/']],
  ['/a/.', ['/a/.', '/a/', '/a/', '/a/']],
  ['\\admin', ['\\admin', '/admin', '/admin', '/admin']],
  ['/x\\..\\admin', ['/x\\..\\admin', '/admin', '/admin', '/admin']],
  ['/a//b///c', ['/a//b///c', '/a//b///c', '/a/b/c', '/a/b/c']],
  ['/a%2fb', ['/a%2fb', '/a%2fb', '/a%2fb', '/a/b']],
  ['/a%2F%2Fadmin', ['/a%2F%2Fadmin', '/a%2F%2Fadmin', '/a%2F%2Fadmin', '/a/admin']],
  ['/x%5c..%5cadmin', ['/x%5c..%5cadmin', '/x%5c..%5cadmin', '/x%5c..%5cadmin', '/admin']],
  ['/%2561dmin', ['/%2561dmin', '/%2561dmin', '/%2561dmin', '/%2561dmin']],
  ['/%7e%5F%2D', ['/%7e%5F%2D', '/~_-', '/~_-', '/~_-']],
  ['/a%20b', ['/a%20b', '/a%20b', '/a%20b', '/a%20b']],
  ['/admin%00', [REFUSED, REFUSED, REFUSED, REFUSED]],
  ['/%%36%31dmin', [REFUSED, REFUSED, REFUSED, REFUSED]],
  ['/50%', [REFUSED, REFUSED, REFUSED, REFUSED]],
  ['/%zz', [REFUSED, REFUSED, REFUSED, REFUSED]],
];

for (const [path, expected] of TABLE) {
  test(`path ${JSON.stringify(path)} in every mode`, () => {
    MODES.forEach((mode, i) => {
      const got = normalizePath(path, mode);
      assert.equal(got === undefined ? null : got, expected[i], `${mode}`);
    });
  });
}

test('request-target forms: origin, absolute (authority taken from it), asterisk; the query is kept untouched', () => {
  assert.deepEqual(normalizeRequestTarget('/a/../b?x=/../y', 'MERGE_SLASHES'), { ok: true, path: '/b', query: '?x=/../y', authority: undefined });
  assert.deepEqual(normalizeRequestTarget('http://echo/admin', 'MERGE_SLASHES'), { ok: true, path: '/admin', query: '', authority: 'echo' });
  assert.deepEqual(normalizeRequestTarget('HTTP://echo.demo:8080//x/./admin?q', 'MERGE_SLASHES'), { ok: true, path: '/x/admin', query: '?q', authority: 'echo.demo:8080' });
  assert.deepEqual(normalizeRequestTarget('http://echo', 'BASE'), { ok: true, path: '/', query: '', authority: 'echo' });
  assert.deepEqual(normalizeRequestTarget('http://echo?a=1', 'BASE'), { ok: true, path: '/', query: '?a=1', authority: 'echo' });
  assert.deepEqual(normalizeRequestTarget('*', 'BASE'), { ok: true, path: '*', query: '', authority: undefined });
  assert.deepEqual(normalizeRequestTarget('/a#frag', 'BASE'), { ok: true, path: '/a', query: '', authority: undefined });
});

test('request targets that are refused with 400', () => {
  for (const t of ['', 'admin', 'ftp://echo/admin', 'http:///admin', 'http://user@echo/admin', '/a b', '/a\tb', 'http://ec ho/', '/x%00', 'echo:80']) {
    const r = normalizeRequestTarget(t, 'MERGE_SLASHES');
    assert.equal(r.ok, false, JSON.stringify(t));
    if (!r.ok) assert.equal(r.status, 400);
  }
});

test('methods: an upper-case token passes; anything else is refused', () => {
  for (const m of ['GET', 'DELETE', 'PROPFIND', 'M-SEARCH']) assert.ok(isNormalMethod(m), m);
  for (const m of ['get', 'Delete', '', 'GET ', 'G\u0130T', '-X']) assert.ok(!isNormalMethod(m), m);
});

const pathChars = fc.constantFrom('/', '.', '..', '%2e', '%2E', '%2f', '%5c', '\\', 'a', 'b', '%61', '%41', '%25', '%7e', '%20', '~', '-', '%', '%0', '%00', '//', 'x');
const paths = fc.array(pathChars, { maxLength: 24 }).map((parts) => `/${parts.join('')}`);

test('property: normalizing twice changes nothing, in every mode', () => {
  fc.assert(fc.property(paths, fc.constantFrom(...MODES), (p, mode) => {
    const once = normalizePath(p, mode);
    if (once === undefined) return;
    assert.equal(normalizePath(once, mode), once);
  }), { seed: 1403, numRuns: 3000 });
});

test('property: BASE and stricter never yield a "." or ".." segment, always start with "/", and never hold %00', () => {
  fc.assert(fc.property(paths, fc.constantFrom<PathNormalizationMode>('BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'), (p, mode) => {
    const out = normalizePath(p, mode);
    if (out === undefined) return;
    assert.ok(out.startsWith('/'));
    assert.ok(!out.split('/').some((s) => s === '.' || s === '..'), out);
    // What an application that decodes once sees has no dot segments either.
    const decoded = out.replace(/%2e/gi, '.');
    assert.ok(!decoded.split('/').some((s) => s === '.' || s === '..'), `${p} -> ${out}`);
    assert.ok(!/%00/.test(out));
    if (mode !== 'BASE') assert.ok(!out.includes('//'), out);
  }), { seed: 1404, numRuns: 3000 });
});

test('property: any string gets an answer (never a throw), and an accepted target is a path or "*"', () => {
  fc.assert(fc.property(fc.string({ maxLength: 200 }), fc.constantFrom(...MODES), (s, mode) => {
    const r = normalizeRequestTarget(s, mode);
    if (r.ok) assert.ok(r.path === '*' || r.path.startsWith('/') || mode === 'NONE');
  }), { seed: 1405, numRuns: 5000 });
});
