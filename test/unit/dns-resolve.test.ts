// The DNS proxy's decision (Istio ztunnel's rules): aliases, search domains, wildcards,
// namespace preference, exportTo, empty NOERROR for a family the host lacks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aliasesOf, decideDns, DnsRegistry, wildcardsOf } from '../../src/dns/resolve.js';

const reg = new DnsRegistry([
  { hostname: 'echo.shop.svc.cluster.local', namespace: 'shop', addresses: ['10.96.0.10'] },
  { hostname: 'echo.legacy.svc.cluster.local', namespace: 'legacy', addresses: ['10.96.0.11'] },
  { hostname: 'api.partner.example', namespace: 'egress', addresses: ['240.240.0.1'] },
  { hostname: 'api.partner.example', namespace: 'shop', addresses: ['240.240.0.9'] },
  { hostname: '*.cdn.example', namespace: 'egress', addresses: ['240.240.0.2', '2001:2::2'] },
  { hostname: 'private.example', namespace: 'egress', addresses: ['240.240.0.3'], visibleTo: ['egress'] },
  { hostname: 'novip.example', namespace: 'egress', addresses: [] },
]);
const opts = { clusterDomain: 'cluster.local', random: () => 0 };
const shop = { namespace: 'shop' };
const other = { namespace: 'web' };

const cases: { name: string; client: { namespace: string }; q: string; type: string; want: 'forward' | [string, string, string][] }[] = [
  { name: 'short name in the own namespace', client: shop, q: 'echo', type: 'A', want: [['echo', 'A', '10.96.0.10']] },
  { name: 'name.ns', client: other, q: 'echo.legacy', type: 'A', want: [['echo.legacy', 'A', '10.96.0.11']] },
  { name: 'name.ns.svc', client: other, q: 'echo.shop.svc', type: 'A', want: [['echo.shop.svc', 'A', '10.96.0.10']] },
  { name: 'the FQDN', client: other, q: 'echo.shop.svc.cluster.local', type: 'A', want: [['echo.shop.svc.cluster.local', 'A', '10.96.0.10']] },
  { name: 'search domain stripped: CNAME to the stripped name', client: other, q: 'api.partner.example.web.svc.cluster.local', type: 'A',
    want: [['api.partner.example.web.svc.cluster.local', 'CNAME', 'api.partner.example'], ['api.partner.example', 'A', '240.240.0.1']] },
  { name: 'ServiceEntry host: the client namespace wins', client: shop, q: 'api.partner.example', type: 'A', want: [['api.partner.example', 'A', '240.240.0.9']] },
  { name: 'AAAA of an IPv4-only host: empty NOERROR', client: other, q: 'api.partner.example', type: 'AAAA', want: [] },
  { name: 'wildcard host', client: other, q: 'img.cdn.example', type: 'AAAA', want: [['img.cdn.example', 'AAAA', '2001:2::2']] },
  { name: 'wildcard through a search domain: no CNAME', client: other, q: 'img.cdn.example.cluster.local', type: 'A', want: [['img.cdn.example.cluster.local', 'A', '240.240.0.2']] },
  { name: 'exportTo: visible in its namespace', client: { namespace: 'egress' }, q: 'private.example', type: 'A', want: [['private.example', 'A', '240.240.0.3']] },
  { name: 'exportTo: not visible elsewhere', client: other, q: 'private.example', type: 'A', want: 'forward' },
  { name: 'a host without VIP is forwarded', client: other, q: 'novip.example', type: 'A', want: 'forward' },
  { name: 'unknown names are forwarded', client: other, q: 'www.example.org', type: 'A', want: 'forward' },
  { name: 'other types are forwarded', client: shop, q: 'echo', type: 'MX', want: 'forward' },
  { name: 'a service of another namespace by short name is not answered', client: other, q: 'echo', type: 'A', want: 'forward' },
];

for (const c of cases) {
  test(`decideDns: ${c.name}`, () => {
    const d = decideDns(reg, c.client, { name: c.q, type: c.type }, opts);
    if (c.want === 'forward') return assert.equal(d.kind, 'forward');
    assert.equal(d.kind, 'answer');
    if (d.kind !== 'answer') return;
    assert.deepEqual(d.records.map((r) => [r.name, r.type, r.data]), c.want);
    for (const r of d.records) assert.equal(r.ttl, 30);
  });
}

test('aliases and wildcards, in order', () => {
  assert.deepEqual(aliasesOf('a.b.shop.svc.cluster.local', shop, opts).map((a) => a.name), ['a.b.shop.svc.cluster.local', 'a.b', 'a.b.svc.cluster.local', 'a.b.shop', 'a.b.shop.svc']);
  assert.deepEqual(wildcardsOf('www.example.com'), ['www.example.com', '*.example.com', '*.com']);
});
