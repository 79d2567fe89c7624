// Shapes of ServiceEntry, DestinationRule (networking.istio.io) and Secret (v1), in the schema
// language of schema.ts. kinds.ts wraps them with apiVersion/kind/metadata. Semantics (hosts,
// addresses, resolution rules, TLS settings, certificates) are checked in validate-egress.ts.
import { any, arr, bool, int, labels, map, obj, str, strList, type Schema } from './schema.js';
import { SERVICE_ENTRY_LOCATIONS, SERVICE_ENTRY_RESOLUTIONS, TLS_MODES } from './egress-resources.js';

const workloadSelector = obj({ matchLabels: labels }, [], 'a workload selector with matchLabels');

export const serviceEntrySpec: Schema = obj({
  hosts: arr(str({ nonEmpty: true }), 1),
  addresses: strList,
  ports: arr(obj({
    number: int(1, 65535),
    protocol: str({ nonEmpty: true }),
    name: str({ nonEmpty: true }),
    targetPort: int(1, 65535),
  }, ['number', 'name'], 'a port {number, name, protocol}')),
  location: str({ enum: SERVICE_ENTRY_LOCATIONS }),
  resolution: str({ enum: SERVICE_ENTRY_RESOLUTIONS }),
  endpoints: arr(obj({
    address: str({ nonEmpty: true }),
    ports: map(int(1, 65535), 'port name: number'),
    labels,
    network: str(),
    locality: str(),
    weight: int(0, 4294967295),
    serviceAccount: str(),
  }, [], 'an endpoint {address, ports, labels}')),
  workloadSelector: obj({ labels }, [], 'a workload selector {labels}'),
  exportTo: strList,
  subjectAltNames: strList,
}, ['hosts']);

const duration = str({ nonEmpty: true });

const loadBalancer = obj({
  simple: str({ enum: ['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'] }),
  consistentHash: obj({
    httpHeaderName: str({ nonEmpty: true }),
    httpCookie: obj({ name: str({ nonEmpty: true }), path: str(), ttl: duration, attributes: any }, ['name']),
    useSourceIp: bool,
    httpQueryParameterName: str({ nonEmpty: true }),
    ringHash: obj({ minimumRingSize: int(0) }),
    maglev: obj({ tableSize: int(0) }),
    minimumRingSize: int(0),
  }),
  localityLbSetting: any,
  warmupDurationSecs: duration,
  warmup: any,
});

const connectionPool = obj({
  tcp: obj({
    maxConnections: int(0, 2147483647),
    connectTimeout: duration,
    tcpKeepalive: obj({ probes: int(0), time: duration, interval: duration }),
    maxConnectionDuration: duration,
    idleTimeout: duration,
  }),
  http: obj({
    http1MaxPendingRequests: int(0, 2147483647),
    http2MaxRequests: int(0, 2147483647),
    maxRequestsPerConnection: int(0, 2147483647),
    maxRetries: int(0, 2147483647),
    idleTimeout: duration,
    h2UpgradePolicy: str({ enum: ['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'] }),
    useClientProtocol: bool,
    maxConcurrentStreams: int(0, 2147483647),
  }),
});

const outlierDetection = obj({
  splitExternalLocalOriginErrors: bool,
  consecutiveLocalOriginFailures: int(0),
  consecutiveGatewayErrors: int(0),
  consecutive5xxErrors: int(0),
  consecutiveErrors: int(0),
  interval: duration,
  baseEjectionTime: duration,
  maxEjectionPercent: int(0, 100),
  minHealthPercent: int(0, 100),
});

const clientTls = obj({
  mode: str({ enum: TLS_MODES }),
  clientCertificate: str(),
  privateKey: str(),
  caCertificates: str(),
  credentialName: str({ nonEmpty: true }),
  subjectAltNames: strList,
  sni: str({ nonEmpty: true }),
  insecureSkipVerify: bool,
  caCrl: str(),
});

const policyFields = { loadBalancer, connectionPool, outlierDetection, tls: clientTls };

const trafficPolicy = obj({
  ...policyFields,
  portLevelSettings: arr(obj({ port: obj({ number: int(1, 65535) }, ['number']), ...policyFields }, ['port'])),
  tunnel: any,
  proxyProtocol: any,
});

export const destinationRuleSpec: Schema = obj({
  host: str({ nonEmpty: true }),
  trafficPolicy,
  subsets: arr(obj({ name: str({ nonEmpty: true }), labels, trafficPolicy }, ['name'])),
  exportTo: strList,
  workloadSelector,
}, ['host']);

/** The fields of a Secret beside apiVersion/kind/metadata. */
export const secretFields: Record<string, Schema> = {
  type: str(),
  data: map(str(), 'key: base64 value'),
  stringData: map(str(), 'key: text'),
  immutable: bool,
};
