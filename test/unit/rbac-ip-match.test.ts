// IP parsing and CIDR containment used by ipBlocks, remoteIpBlocks and the ip condition keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrContains, parseCidr, parseIp } from '../../src/rbac/index.js';

const contains: [string, string, boolean][] = [
  ['10.0.0.0/8', '10.255.1.1', true],
  ['10.0.0.0/8', '11.0.0.1', false],
  ['10.0.1.5', '10.0.1.5', true],
  ['10.0.1.5', '10.0.1.4', false],
  ['0.0.0.0/0', '203.0.113.9', true],
  ['10.0.0.0/9', '10.128.0.1', false],
  ['10.0.0.0/9', '10.127.255.255', true],
  ['fd00::/8', 'fdff::1', true],
  ['fd00::/8', 'fe80::1', false],
  ['2001:db8::/127', '2001:db8::1', true],
  ['2001:db8::/127', '2001:db8::2', false],
  ['::/0', '::1', true],
  ['::/0', '10.0.0.1', false],
  ['10.0.0.0/8', '::ffff:10.1.2.3', true],
  ['10.0.0.0/8', '[::ffff:10.1.2.3]', true],
  ['fe80::1', 'fe80::1%eth0', true],
];

for (const [cidr, ip, want] of contains) {
  test(`ip: ${cidr} ${want ? 'contains' : 'does not contain'} ${ip}`, () => {
    const c = parseCidr(cidr);
    assert.ok(c, `parse ${cidr}`);
    assert.equal(cidrContains(c, ip), want);
  });
}

test('ip: invalid values are rejected', () => {
  for (const bad of ['', '10.0.0', '10.0.0.256', '10.0.0.01', '10.0.0.0/33', 'fd00::/129', '1:2:3:4:5:6:7:8:9', 'fd00:::1', 'x', '10.0.0.0/-1', '10.0.0.0/']) {
    assert.equal(parseCidr(bad), null, bad);
  }
  assert.equal(cidrContains({ address: '10.0.0.0', length: 8 }, 'garbage'), false);
  assert.equal(cidrContains({ address: '10.0.0.0', length: 8 }, undefined), false);
});

test('ip: IPv6 forms parse to the same 16 bytes', () => {
  assert.deepEqual(parseIp('2001:db8::1'), parseIp('2001:0db8:0000:0000:0000:0000:0000:0001'));
  assert.deepEqual(parseIp('::ffff:1.2.3.4'), parseIp('::ffff:102:304'));
  assert.equal(parseIp('::')?.length, 16);
});
