// The waypoint's protocol sniffing and endpoint picking (pure).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sniffProtocol } from '../../src/waypoint/sniff.js';
import { EndpointPicker } from '../../src/waypoint/endpoint-picker.js';

test('sniff: HTTP/2 preface, HTTP/1 request lines, partial input, TCP', () => {
  assert.equal(sniffProtocol(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')), 'h2');
  assert.equal(sniffProtocol(Buffer.from('PRI * HTTP/2')), 'need-more');
  assert.equal(sniffProtocol(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), 'http1');
  assert.equal(sniffProtocol(Buffer.from('DELETE /a?b=c HTTP/1.0\n')), 'http1');
  assert.equal(sniffProtocol(Buffer.from('GET /a')), 'need-more');
  assert.equal(sniffProtocol(Buffer.from('POST /x HTTP/1.')), 'need-more');
  // Any-case methods are HTTP/1.1 (the codec answers 400 to a lower-case one; it never slips through as TCP).
  assert.equal(sniffProtocol(Buffer.from('get / HTTP/1.1\r\n')), 'http1');
  assert.equal(sniffProtocol(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n')), 'tcp');
  assert.equal(sniffProtocol(Buffer.from([0x16, 0x03, 0x01, 0x00])), 'tcp');
  // Looks like HTTP but is not HTTP/1.x: the codec answers 505; it is never relayed as TCP past L7 policy.
  assert.equal(sniffProtocol(Buffer.from('GET /admin HTTP/2.0\r\n')), 'http1');
  assert.equal(sniffProtocol(Buffer.from('GET / HTTP/0.9\r\n')), 'http1');
  assert.equal(sniffProtocol(Buffer.from('GET / HTTP/3\n')), 'http1');
  assert.equal(sniffProtocol(Buffer.from('GET / HTTP/2.0')), 'need-more');
  assert.equal(sniffProtocol(Buffer.from('GET / HTTP/2.0\r')), 'need-more');
  // Other text protocols with a request line of the same shape stay TCP.
  assert.equal(sniffProtocol(Buffer.from('OPTIONS rtsp://cam/s RTSP/1.0\r\n')), 'tcp');
  assert.equal(sniffProtocol(Buffer.from('INVITE sip:bob@example.com SIP/2.0\r\n')), 'tcp');
  assert.equal(sniffProtocol(Buffer.from(`GET /${'a'.repeat(9000)}`)), 'tcp');
});

const eps = ['a', 'b', 'c'].map((uid) => ({ uid, healthy: true }));

test('picker: round robin when idle, least request under load, unhealthy never', () => {
  const p = new EndpointPicker({ now: () => 0 });
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => p.pick('s', eps)!.uid), ['a', 'b', 'c', 'a', 'b', 'c']);
  p.started('a');
  p.started('b');
  assert.equal(p.pick('s', eps)!.uid, 'c');
  p.started('c');
  p.started('c');
  const next = p.pick('s', eps)!.uid;
  assert.ok(next === 'a' || next === 'b');
  assert.equal(p.pick('t', [{ uid: 'x', healthy: false }]), undefined);
  assert.equal(p.pick('t', eps, new Set(['a', 'b', 'c'])), undefined);
});

test('picker: a failed endpoint cools down, and comes back when every one has failed', () => {
  let now = 0;
  const p = new EndpointPicker({ now: () => now, failureCooldownMs: 1000 });
  p.connectFailed('a');
  assert.ok([1, 2, 3, 4].every(() => p.pick('s', eps)!.uid !== 'a'));
  p.connectFailed('b');
  p.connectFailed('c');
  assert.ok(p.pick('s', eps), 'all cooling down: still try one');
  now = 1500;
  assert.deepEqual(new Set([1, 2, 3].map(() => p.pick('s', eps)!.uid)), new Set(['a', 'b', 'c']));
});

test('config warnings are reported once, when they appear', async () => {
  const { WarningLatch } = await import('../../src/waypoint/waypoint-config.js');
  const w = new WarningLatch();
  assert.deepEqual(w.fresh(['a', 'b']), ['a', 'b']);
  assert.deepEqual(w.fresh(['a', 'b']), []);
  assert.deepEqual(w.fresh(['b', 'c']), ['c']);
  assert.deepEqual(w.fresh(['a']), ['a'], 'a warning that went away and came back is new again');
});
