// Workload API values for the xds tests and the fan-out bench.
import {
  emptyMatch, type Authorization, type Match, type Service, type Workload,
} from '../../src/xds/workload-api.js';

export function workload(i: number, overrides: Partial<Workload> = {}): Workload {
  const ns = `ns${i % 50}`;
  return {
    uid: `Kubernetes//Pod/${ns}/pod-${i}`,
    name: `pod-${i}`,
    namespace: ns,
    addresses: [`10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`],
    network: '',
    tunnelProtocol: 'HBONE',
    trustDomain: 'cluster.local',
    serviceAccount: `sa-${i % 20}`,
    node: `node-${i % 100}`,
    canonicalName: `app-${i % 300}`,
    canonicalRevision: 'v1',
    workloadType: 'DEPLOYMENT',
    workloadName: `app-${i % 300}`,
    authorizationPolicies: i % 3 === 0 ? [`${ns}/policy-${i % 7}`] : [],
    status: 'HEALTHY',
    clusterId: 'Kubernetes',
    services: { [`${ns}/svc-${i % 2000}.${ns}.svc.cluster.local`]: { ports: [{ servicePort: 80, targetPort: 8080 }] } },
    ...overrides,
  };
}

export function service(i: number, overrides: Partial<Service> = {}): Service {
  const ns = `ns${i % 50}`;
  return {
    name: `svc-${i}`,
    namespace: ns,
    hostname: `svc-${i}.${ns}.svc.cluster.local`,
    addresses: [{ network: '', address: `10.96.${(i >> 8) & 0xff}.${i & 0xff}` }],
    ports: [{ servicePort: 80, targetPort: 8080, appProtocol: 'http' }],
    subjectAltNames: [],
    ...overrides,
  };
}

export function authorization(i: number, overrides: Partial<Authorization> = {}): Authorization {
  const ns = `ns${i % 50}`;
  const m: Match = { ...emptyMatch(), principals: [{ exact: `cluster.local/ns/${ns}/sa/client-${i}` }], destinationPorts: [8080] };
  return {
    name: `policy-${i}`,
    namespace: ns,
    scope: 'WORKLOAD_SELECTOR',
    action: 'ALLOW',
    rules: [{ clauses: [{ matches: [m] }] }],
    dryRun: false,
    ...overrides,
  };
}

/** A match with every field set, IPv4 and IPv6 CIDRs, and each StringMatch kind. */
export function fullMatch(): Match {
  return {
    namespaces: [{ exact: 'shop' }, { prefix: 'team-' }],
    notNamespaces: [{ suffix: '-test' }],
    principals: [{ exact: 'cluster.local/ns/shop/sa/web' }, { presence: {} }],
    notPrincipals: [{ prefix: 'cluster.local/ns/evil/' }],
    sourceIps: [{ address: '10.0.0.0', length: 8 }, { address: 'fd00::', length: 64 }],
    notSourceIps: [{ address: '10.9.0.1', length: 32 }],
    destinationIps: [{ address: '2001:db8::1', length: 128 }],
    notDestinationIps: [{ address: '192.168.0.0', length: 16 }],
    destinationPorts: [80, 65535],
    notDestinationPorts: [22],
    serviceAccounts: [{ namespace: 'shop', serviceAccount: 'web' }],
    notServiceAccounts: [{ namespace: 'shop', serviceAccount: 'batch' }],
  };
}
