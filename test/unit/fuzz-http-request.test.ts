// Property tests of request normalization (the path normalizer and the request-target parser
// that run before L7 authorization) and of the HBONE CONNECT authority parser. Whatever the
// input: an answer, never a throw or a slow case; normalizing is idempotent and never leaves a
// dot segment, also for an application that decodes the path once; the forms of one target
// mean one thing; an accepted CONNECT authority is exactly one IP and one port.
// The table tests live next to the code's own tests (http-request-target, hbone-decisions).
// `npm run fuzz` runs the same properties with random seeds for longer (test/helpers/fuzz.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { isNormalMethod, normalizePath, normalizeRequestTarget, type PathNormalizationMode } from '../../src/core/http-request-target.js';
import { parseConnectRequest } from '../../src/hbone/connect-request.js';
import { formatAuthority, parseAuthority } from '../../src/core/ip.js';
import { fuzz, quick } from '../helpers/fuzz.js';

const MODES: PathNormalizationMode[] = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];
const STRICT: PathNormalizationMode[] = ['BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];
/** Far above what these inputs take (microseconds): only a super-linear case gets there. */
const SLOW_MS = 250;

// Path pieces an attacker spells dot segments and slashes with, and some plain ones.
const pathPiece = fc.constantFrom(
  '/', '.', '..', '%2e', '%2E', '%2e%2e', '.%2E', '%2f', '%2F', '%5c', '%5C', '\\', '//', '/./', '/../', ';', '..;', '%3b',
  'a', 'b', 'admin', '%61', '%41', '%25', '%252e', '%252f', '%7e', '%20', '%u002e', '~', '-', '%', '%0', '%00', '%c0%ae', '%e2%80%ae', 'é', '\u2025', '?', '#',
);
const rawPath = fc.array(pathPiece, { maxLength: 24 }).map((parts) => `/${parts.join('')}`);
const anyPath = fc.oneof(rawPath, fc.string({ maxLength: 60 }).map((s) => `/${s}`));

/** An application's view: every %XX decoded once (as bytes), backslashes as slashes. */
function decodedOnce(p: string): string {
  return p.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}
const dotSegment = (p: string): boolean => p.split(/[/\\]/).some((s) => s === '.' || s === '..');

test('property: normalizing twice changes nothing, in every mode', () => {
  fuzz('path: idempotent', fc.property(anyPath, fc.constantFrom(...MODES), (p, mode) => {
    const once = quick(() => normalizePath(p, mode), SLOW_MS, 'normalizing');
    if (once === undefined) return;
    assert.equal(normalizePath(once, mode), once);
  }), { seed: 1420, numRuns: 4000 });
});

test('property: BASE and stricter never yield a "." or ".." segment, start with "/", and never hold %00 or a backslash', () => {
  fuzz('path: no dot segments', fc.property(anyPath, fc.constantFrom(...STRICT), (p, mode) => {
    const out = normalizePath(p, mode);
    if (out === undefined) {
      // Refused only for %00 or a "%" that starts no escape.
      assert.ok(/%00/.test(p) || /%(?![0-9a-fA-F]{2})/.test(p), `refused ${JSON.stringify(p)}`);
      return;
    }
    assert.ok(out.startsWith('/'), out);
    assert.ok(!dotSegment(out), `${JSON.stringify(p)} -> ${out}`);
    assert.ok(!/%00/.test(out) && !out.includes('\\'), out);
    // An application that decodes %2e once sees no dot segment either.
    assert.ok(!dotSegment(out.replace(/%2e/gi, '.')), `${JSON.stringify(p)} -> ${out}`);
    if (mode !== 'BASE') assert.ok(!out.includes('//'), out);
  }), { seed: 1421, numRuns: 4000 });
});

test('property: under DECODE_AND_MERGE_SLASHES, what an application decodes once has no dot segment, "//" or backslash', () => {
  fuzz('path: decoded once', fc.property(rawPath, (p) => {
    const out = normalizePath(p, 'DECODE_AND_MERGE_SLASHES');
    if (out === undefined) return;
    const app = decodedOnce(out);
    assert.ok(!dotSegment(app), `${JSON.stringify(p)} -> ${out} -> ${JSON.stringify(app)}`);
    assert.ok(!app.includes('//') && !app.includes('\\'), `${JSON.stringify(p)} -> ${out} -> ${JSON.stringify(app)}`);
  }), { seed: 1422, numRuns: 4000 });
});

test('property: decoding is one pass: "%25" is never decoded, so it never makes another escape; unreserved escapes never stay', () => {
  fuzz('path: one pass', fc.property(rawPath, fc.constantFrom(...STRICT), fc.integer({ min: 0, max: 255 }), (p, mode, byte) => {
    const out = normalizePath(p, mode);
    if (out !== undefined) {
      // Dot segments may take a "%25" away with them; nothing makes a new one.
      assert.ok((out.match(/%25/gi) ?? []).length <= (p.match(/%25/gi) ?? []).length, out);
      // Escapes of unreserved characters (ALPHA DIGIT - . _ ~) are all decoded.
      assert.ok(!/%(2[dDeE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|7[eE])/.test(out), out);
    }
    // "%25" then two hex digits is a literal "%" and two characters, whatever they are.
    const hex = byte.toString(16).padStart(2, '0');
    assert.equal(normalizePath(`/a/%25${hex}b`, mode), `/a/%25${hex}b`);
  }), { seed: 1423, numRuns: 3000 });
});

const host = fc.constantFrom('echo', 'echo.demo.svc.cluster.local', 'echo:8080', '10.0.0.1:80', '[fd00::1]:80', 'EXAMPLE.com');
const query = fc.option(fc.array(fc.constantFrom('a', '=', '&', '/', '..', '%2e', '?', '%00', '%'), { maxLength: 8 }).map((q) => `?${q.join('')}`), { nil: '' });

test('property: the absolute form means the origin form with that authority; the query is carried untouched', () => {
  fuzz('request target: forms', fc.property(rawPath, query, host, fc.constantFrom('http', 'HTTP', 'https'), fc.constantFrom(...MODES), (p, q, h, scheme, mode) => {
    const origin = normalizeRequestTarget(`${p}${q}`, mode);
    const absolute = normalizeRequestTarget(`${scheme}://${h}${p}${q}`, mode);
    assert.equal(absolute.ok, origin.ok);
    if (!origin.ok || !absolute.ok) return;
    assert.equal(absolute.path, origin.path);
    assert.equal(absolute.query, origin.query);
    assert.equal(absolute.authority, h);
    assert.equal(origin.authority, undefined);
    // The query is what followed the first "?", byte for byte (a fragment dropped).
    const raw = `${p}${q}`.split('#')[0]!;
    assert.equal(origin.query, raw.includes('?') ? raw.slice(raw.indexOf('?')) : '');
  }), { seed: 1424, numRuns: 3000 });
});

test('property: any string gets an answer, never a throw; what is accepted holds no space, control byte or user info', () => {
  fuzz('request target: any string', fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 100 }), rawPath.map((p) => `http://${p}`)), fc.constantFrom(...MODES), (s, mode) => {
    const r = quick(() => normalizeRequestTarget(s, mode), SLOW_MS, 'parsing a target');
    if (!r.ok) {
      assert.equal(r.status, 400);
      assert.ok(r.reason.length > 0);
      return;
    }
    assert.ok(r.path === '*' || r.path.startsWith('/') || mode === 'NONE', r.path);
    // eslint-disable-next-line no-control-regex
    assert.ok(!/[\x00-\x20\x7f]/.test(r.path + r.query), JSON.stringify(r));
    if (r.authority !== undefined) {
      assert.ok(r.authority.length > 0 && !r.authority.includes('@'), r.authority);
      assert.match(r.authority, /^[A-Za-z0-9._~!$&'()*+,;=:[\]%-]+$/);
    }
  }), { seed: 1425, numRuns: 5000 });
});

test('property: a method passes only as an upper-case token', () => {
  fuzz('request method', fc.property(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('GET', 'get', 'Get', 'M-SEARCH', 'PROPFIND', 'GET\u0130', '\u0130')), (m) => {
    assert.equal(isNormalMethod(m), /^[A-Z][A-Z0-9_-]*$/.test(m) && m.toUpperCase() === m);
  }), { seed: 1426, numRuns: 2000 });
});

// ---- HBONE CONNECT ----

const port = fc.integer({ min: 1, max: 65535 });

test('property: an authority made of any IPv4 or IPv6 address and port parses back to them', () => {
  fuzz('connect: round trip', fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), port, (ip, p) => {
    const a = formatAuthority(ip, p);
    const v = parseConnectRequest({ ':method': 'CONNECT', ':authority': a });
    assert.ok(v.ok, `${a}: ${v.ok ? '' : v.reason}`);
    assert.deepEqual(v.target, { ip, port: p });
  }), { seed: 1427, numRuns: 3000 });
});

// Near misses of an authority: the parts of a valid one, and what attackers put around them.
const authorityPiece = fc.constantFrom(
  '10.0.0.1', '127.0.0.1', '0.0.0.0', '255.255.255.255', '010.0.0.1', '10.0.0', '1.2.3.4.5', '::1', '[::1]', '[fd00::1]', '[::ffff:10.0.0.1]', '[fe80::1%eth0]', '[', ']',
  ':', ':15008', ':0', ':65535', ':65536', ':080', ':1e3', ':+80', ': 80', ':-1', ':99999', '@', 'user@', 'echo', 'echo.demo', ' ', '\t', '\n', '%', '/', '?', '#', 'x',
);
const nearAuthority = fc.array(authorityPiece, { minLength: 1, maxLength: 5 }).map((p) => p.join(''));

test('property: CONNECT headers of any shape get a verdict; an accepted authority is exactly ip:port, nothing around it', () => {
  const headerValue = fc.oneof(nearAuthority, fc.string({ maxLength: 40 }), fc.array(nearAuthority, { maxLength: 2 }), fc.integer(), fc.constant(undefined));
  fuzz('connect: any headers', fc.property(
    fc.record({ ':method': fc.oneof(fc.constantFrom('CONNECT', 'connect', 'GET', ''), fc.constant(undefined)), ':authority': headerValue, baggage: headerValue, forwarded: headerValue, traceparent: headerValue }, { requiredKeys: [] }),
    (h) => {
      const v = quick(() => parseConnectRequest(h as Record<string, string | string[] | number | undefined>), SLOW_MS, 'parsing CONNECT');
      if (!v.ok) {
        assert.equal(v.status, 400);
        assert.ok(v.reason.length > 0 && v.reason.length < 400, 'a reason, bounded in length');
        return;
      }
      assert.equal(h[':method'], 'CONNECT');
      const { ip, port: p } = v.target;
      assert.ok(isIP(ip) !== 0, ip);
      assert.ok(Number.isInteger(p) && p >= 1 && p <= 65535, String(p));
      // Nothing but the address, a colon and the port's digits.
      const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(v.authority);
      assert.ok(m, v.authority);
      assert.equal(m[1] ?? m[2], ip);
      assert.equal(Number(m[3]), p);
      assert.equal(isIP(ip), m[1] === undefined ? 4 : 6, 'IPv6 only in brackets, IPv4 never');
      assert.deepEqual(parseAuthority(v.authority), { ip, port: p, family: isIP(ip) });
    },
  ), { seed: 1428, numRuns: 4000 });
});
