// The workload API codec: round trips (IPv4/IPv6, waypoints by address and by hostname, every
// Match field), canonical bytes, the field numbers on the wire, and the rejection of malformed
// resources with a reason that names the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addressResource, decodeAddress, decodeAddressResource, decodeAuthorization, decodeAuthorizationResource, encodeAddress,
  encodeAuthorization, encodeService, encodeWorkload, XdsDecodeError,
} from '../../src/xds/codec.js';
import { workloadRoot } from '../../src/xds/protos.js';
import { emptyMatch, type Authorization, type Service, type Workload } from '../../src/xds/workload-api.js';
import { AmbitError } from '../../src/core/errors.js';
import { authorization, fullMatch, service, workload } from '../helpers/xds-fixtures.js';

function rawAddress(o: Record<string, unknown>): Uint8Array {
  const t = workloadRoot().lookupType('istio.workload.Address');
  return t.encode(o).finish();
}

function rawAuthorization(o: Record<string, unknown>): Uint8Array {
  return workloadRoot().lookupType('istio.security.Authorization').encode(o).finish();
}

function rejects(fn: () => unknown, pathAndReason: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof XdsDecodeError, `expected XdsDecodeError, got ${String(e)}`);
    assert.equal(e.code, 'AMBIT_ERR_XDS');
    assert.match(e.message, pathAndReason);
    return true;
  });
}

test('codec: a full workload round-trips (IPv4 + IPv6, waypoint by address, services map, locality)', () => {
  const w: Workload = workload(7, {
    addresses: ['10.1.2.3', 'fd00:10::7'],
    network: 'net-a',
    hostname: 'pod-7.example',
    waypoint: { address: { network: 'net-a', address: '10.1.0.9' }, hboneMtlsPort: 15008 },
    services: {
      'ns7/b.ns7.svc.cluster.local': { ports: [{ servicePort: 443, targetPort: 8443 }] },
      'ns7/a.ns7.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 0, appProtocol: 'http' }, { servicePort: 81, targetPort: 8081 }] },
    },
    locality: { region: 'eu', zone: 'eu-1', subzone: 'rack-3' },
    authorizationPolicies: ['ns7/a', 'ns7/b'],
    status: 'UNHEALTHY',
    workloadType: 'POD',
    tunnelProtocol: 'NONE',
  });
  const back = decodeAddress(encodeWorkload(w));
  assert.deepEqual(back, { workload: w });
});

test('codec: a workload with a waypoint by hostname and IPv6 waypoint address', () => {
  const byHost = workload(1, { waypoint: { hostname: { namespace: 'shop', hostname: 'waypoint.shop.svc.cluster.local' }, hboneMtlsPort: 15008 } });
  assert.deepEqual(decodeAddress(encodeWorkload(byHost)), { workload: byHost });
  const byV6 = workload(2, { addresses: ['2001:db8::2'], waypoint: { address: { network: '', address: '2001:db8::ff' }, hboneMtlsPort: 15008 } });
  assert.deepEqual(decodeAddress(encodeWorkload(byV6)), { workload: byV6 });
});

test('codec: a service round-trips (IPv6 address, waypoint, load balancing)', () => {
  const s: Service = service(3, {
    addresses: [{ network: '', address: '10.96.0.3' }, { network: 'net-b', address: 'fd00:96::3' }],
    ports: [{ servicePort: 80, targetPort: 8080, appProtocol: 'http' }, { servicePort: 9090, targetPort: 0 }],
    subjectAltNames: ['spiffe://cluster.local/ns/ns3/sa/web'],
    waypoint: { hostname: { namespace: 'ns3', hostname: 'wp.ns3.svc.cluster.local' }, hboneMtlsPort: 15008 },
    loadBalancing: { mode: 'FAILOVER', routingPreference: ['NETWORK', 'REGION', 'ZONE'] },
  });
  assert.deepEqual(decodeAddress(encodeService(s)), { service: s });
});

test('codec: an authorization with every Match field round-trips', () => {
  const a: Authorization = authorization(4, {
    scope: 'NAMESPACE',
    action: 'DENY',
    dryRun: true,
    rules: [
      { clauses: [{ matches: [fullMatch(), emptyMatch()] }, { matches: [] }] },
      { clauses: [] },
    ],
  });
  assert.deepEqual(decodeAuthorization(encodeAuthorization(a)), a);
  // A policy with no rules (matches nothing) stays one.
  const none = authorization(5, { rules: [] });
  assert.deepEqual(decodeAuthorization(encodeAuthorization(none)), none);
});

test('codec: IPs are canonical on the way back; bytes are 4 or 16 long on the wire', () => {
  const w = workload(1, { addresses: ['FD00:0:0::1', '::ffff:10.0.0.1'] });
  assert.deepEqual(decodeAddress(encodeWorkload(w)).workload?.addresses, ['fd00::1', '::ffff:a00:1']);
  const raw = workloadRoot().lookupType('istio.workload.Address').decode(encodeWorkload(w)) as unknown as { workload: { addresses: Uint8Array[] } };
  assert.deepEqual(raw.workload.addresses.map((b) => b.length), [16, 16]);
  const v4 = workloadRoot().lookupType('istio.workload.Address').decode(encodeWorkload(workload(1))) as unknown as { workload: { addresses: Uint8Array[] } };
  assert.deepEqual([...(v4.workload.addresses[0] ?? [])], [10, 0, 0, 1]);
});

test('codec: field numbers on the wire are Istio\'s', () => {
  // Address.workload = 1, Workload.uid = 20 (tag 0xa2 0x01), string "u".
  assert.equal(encodeAddress({ workload: { ...minimalWorkload(), uid: 'u' } }).toString('hex'), '0a04a2010175');
  // Address.service = 2, Service.hostname = 3.
  assert.equal(encodeAddress({ service: { ...minimalService(), hostname: 'h' } }).toString('hex'), '12031a0168');
  // Workload.tunnel_protocol = 5 (HBONE = 1), status = 17 (UNHEALTHY = 1).
  const w = encodeAddress({ workload: { ...minimalWorkload(), uid: 'u', tunnelProtocol: 'HBONE', status: 'UNHEALTHY' } }).toString('hex');
  assert.equal(w, '0a092801880101a2010175');
  // Authorization: name = 1, action = 4 (DENY = 1), dry_run = 6; Match.service_accounts = 11.
  const a = encodeAuthorization({
    name: 'p', namespace: '', scope: 'GLOBAL', action: 'DENY', dryRun: true,
    rules: [{ clauses: [{ matches: [{ ...emptyMatch(), serviceAccounts: [{ namespace: 'n', serviceAccount: 's' }] }] }] }],
  }).toString('hex');
  assert.equal(a, '0a01702001' + '2a0c' + '0a0a' + '1208' + '5a06' + '0a016e' + '120173' + '3001');
});

test('codec: encoding is canonical (defaults omitted, map order irrelevant)', () => {
  assert.equal(encodeAddress({ workload: minimalWorkload() }).toString('hex'), '0a00');
  const a = workload(1, { services: { 'x/a': { ports: [] }, 'x/b': { ports: [] } } });
  const b = workload(1, { services: { 'x/b': { ports: [] }, 'x/a': { ports: [] } } });
  assert.ok(encodeWorkload(a).equals(encodeWorkload(b)));
});

test('codec: resource names are checked against the content', () => {
  const w = workload(9);
  const r = addressResource({ workload: w });
  assert.equal(r.name, w.uid);
  assert.deepEqual(decodeAddressResource(r.body, w.uid), { workload: w });
  rejects(() => decodeAddressResource(r.body, 'Kubernetes//Pod/x/other'), /^workload\.uid: resource is named 'Kubernetes\/\/Pod\/x\/other' but its content is/);
  const s = service(1);
  rejects(() => decodeAddressResource(encodeService(s), 'ns1/other'), /^service: resource is named/);
  const p = authorization(1);
  assert.deepEqual(decodeAuthorizationResource(encodeAuthorization(p), 'ns1/policy-1'), p);
  rejects(() => decodeAuthorizationResource(encodeAuthorization(p), 'ns1/nope'), /^authorization: resource is named 'ns1\/nope'/);
});

test('codec: malformed resources are rejected with the field and the reason', () => {
  rejects(() => decodeAddress(Buffer.from([0x0a, 0x05, 0x01])), /^address: malformed protobuf/);
  rejects(() => decodeAddress(new Uint8Array()), /^address: neither workload nor service is set/);
  rejects(() => decodeAddress(Buffer.concat([encodeWorkload(workload(1)), encodeService(service(1))])), /^address: both workload and service/);
  rejects(() => decodeAddress(rawAddress({ workload: { uid: 'u', addresses: [Buffer.from([10, 0, 0, 1]), Buffer.from([1, 2, 3, 4, 5])] } })),
    /^workload\.addresses\[1\]: 5 bytes is not an IP address \(4 or 16 bytes\)/);
  rejects(() => decodeAddress(rawAddress({ workload: { uid: 'u', tunnelProtocol: 7 } })), /^workload\.tunnel_protocol: unknown istio\.workload\.TunnelProtocol value 7/);
  rejects(() => decodeAddress(rawAddress({ workload: { name: 'no-uid' } })), /^workload\.uid: is empty/);
  rejects(() => decodeAddress(rawAddress({ workload: { uid: 'u', waypoint: { hboneMtlsPort: 15008 } } })), /^workload\.waypoint: neither hostname nor address/);
  rejects(() => decodeAddress(rawAddress({ workload: { uid: 'u', services: { nokey: { ports: [] } } } })), /^workload\.services\[nokey\]: key is not namespace\/hostname/);
  rejects(() => decodeAddress(rawAddress({ service: { hostname: 'h', ports: [{ servicePort: 70000 }] } })), /^service\.ports\[0\]\.service_port: 70000 is not a port/);
  rejects(() => decodeAddress(rawAddress({ service: { hostname: 'h', loadBalancing: { mode: 3 } } })), /^service\.load_balancing\.mode: .*PASSTHROUGH is not supported/);
  rejects(() => decodeAddress(rawAddress({ service: { name: 'no-hostname' } })), /^service\.hostname: is empty/);
  rejects(() => decodeAuthorization(rawAuthorization({ name: 'p', rules: [{ clauses: [{ matches: [{ principals: [{}] }] }] }] })),
    /^authorization\.rules\[0\]\.clauses\[0\]\.matches\[0\]\.principals\[0\]: none of exact, prefix, suffix, presence/);
  rejects(() => decodeAuthorization(rawAuthorization({ name: 'p', rules: [{ clauses: [{ matches: [{ sourceIps: [{ address: Buffer.from([10, 0, 0, 0]), length: 33 }] }] }] }] })),
    /^authorization\.rules\[0\]\.clauses\[0\]\.matches\[0\]\.source_ips\[0\]\.length: 33 is longer than the 32 bits/);
  rejects(() => decodeAuthorization(rawAuthorization({ name: 'p', action: 9 })), /^authorization\.action: unknown istio\.security\.Action value 9/);
  rejects(() => decodeAuthorization(rawAuthorization({ namespace: 'x' })), /^authorization\.name: is empty/);
});

test('codec: values the wire cannot carry are refused at encoding', () => {
  const bad = (fn: () => unknown, re: RegExp): void => {
    assert.throws(fn, (e: unknown) => e instanceof AmbitError && e.code === 'AMBIT_ERR_XDS' && re.test(e.message));
  };
  bad(() => encodeWorkload(workload(1, { addresses: ['10.0.0.300'] })), /workload\.addresses\[0\]: '10\.0\.0\.300' is not an IP address/);
  bad(() => encodeWorkload(workload(1, { tunnelProtocol: 'QUIC' as 'HBONE' })), /workload\.tunnel_protocol: 'QUIC' is not a/);
  bad(() => encodeService(service(1, { ports: [{ servicePort: 65536, targetPort: 1 }] })), /service\.ports\[0\]\.service_port: 65536 is not a port/);
  bad(() => encodeAuthorization(authorization(1, { rules: [{ clauses: [{ matches: [{ ...emptyMatch(), sourceIps: [{ address: 'fd00::', length: 129 }] }] }] }] })),
    /source_ips\[0\]\.length: 129 is not a prefix length/);
  bad(() => encodeWorkload(workload(1, { waypoint: { hboneMtlsPort: 15008 } })), /workload\.waypoint: neither hostname nor address/);
});

function minimalWorkload(): Workload {
  return {
    uid: '', name: '', namespace: '', addresses: [], network: '', tunnelProtocol: 'NONE', trustDomain: '', serviceAccount: '', node: '',
    canonicalName: '', canonicalRevision: '', workloadType: 'DEPLOYMENT', workloadName: '', authorizationPolicies: [], status: 'HEALTHY',
    clusterId: '', services: {},
  };
}

function minimalService(): Service {
  return { name: '', namespace: '', hostname: '', addresses: [], ports: [], subjectAltNames: [] };
}
