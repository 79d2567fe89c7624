// The workload API codec: TypeScript values of workload-api.ts <-> protobuf bytes (the
// `value` of the google.protobuf.Any carried in each ADS Resource).
//
// Invariants:
// - Messages, field numbers and enums are the code generated from proto/istio/*.proto
//   (src/xds/gen, @bufbuild/protobuf); this file maps them to and from workload-api.ts's values
//   (IP strings, enum names) and checks what the generated code cannot (see below). Enum names
//   are the .proto's names, which are also the TypeScript union members.
// - IP addresses are strings in TypeScript and 4 or 16 bytes on the wire. Encoding writes the
//   canonical bytes; decoding formats them canonically (IPv6 compressed per RFC 5952), so
//   `FD00::1` comes back as `fd00::1`.
// - Encoding is canonical proto3: default values (empty strings and lists, 0, false, the first
//   enum value) are not written, so equal values give equal bytes (versions may hash them).
// - Optional TypeScript fields (`hostname`, `waypoint`, `locality`, `nativeTunnel`, `appProtocol`,
//   `loadBalancing`) are absent after decoding when the wire has the default, never present
//   with `undefined`.
// - Decoding rejects a malformed resource with an XdsDecodeError whose message starts with the
//   path of the bad field (`workload.addresses[1]: ...`): bytes that are not protobuf, an IP
//   that is not 4/16 bytes, an enum number this build does not know, a port above 65535, a
//   CIDR length above 32/128, a oneof with no (or, for Address, both — seen on the wire, as a
//   decoder keeps only the last) members set, a missing
//   uid/hostname/name, a resource whose name does not match its content. The ADS client NACKs
//   just that resource with this message.
// - Encoding throws AmbitError AMBIT_ERR_XDS on a value the wire cannot carry (an IP string
//   that does not parse, an unknown enum name, a port out of range): that is a bug upstream of
//   the codec, found before anything is sent.
// - Fields the .proto has but workload-api.ts does not (network_gateway,
//   application_tunnel, network_mode, ip_families, canonical, health_policy) are ignored when
//   decoding and never written.
import type { DescEnum, Message, MessageInitShape } from '@bufbuild/protobuf';
import { create, fromBinary, toBinary } from './protobuf-runtime.js';
import type { GenMessage } from '@bufbuild/protobuf/codegenv2';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { AmbitError } from '../core/errors.js';
import { formatIp, parseIp } from '../core/ip.js';
import type { ResourceType } from './ads-client.js';
import * as Pb from './gen/istio/workload_pb.js';
import {
  AddressSchema, LoadBalancing_ModeSchema, LoadBalancing_ScopeSchema, TunnelProtocolSchema, WorkloadStatusSchema, WorkloadTypeSchema,
} from './gen/istio/workload_pb.js';
import * as PbSec from './gen/istio/authorization_pb.js';
import { ActionSchema, AuthorizationSchema, ScopeSchema } from './gen/istio/authorization_pb.js';
import {
  ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, authorizationResourceName, serviceResourceName, workloadResourceName,
  type Address, type AddressMatch, type Authorization, type Clause, type GatewayAddress, type LoadBalancing,
  type Match, type NetworkAddress, type Port, type PortList, type Rule, type Service, type ServiceAccountMatch,
  type StringMatch, type Workload,
} from './workload-api.js';

export class XdsDecodeError extends AmbitError {
  readonly path: string;
  constructor(path: string, reason: string, cause?: unknown) {
    super('AMBIT_ERR_XDS', `${path}: ${reason}`, {
      cause,
      details: { path },
      hint: 'the control plane sent a resource this ztunnel cannot use; it is NACKed and the previous version kept',
    });
    this.name = 'XdsDecodeError';
    this.path = path;
  }
}

// ---------------------------------------------------------------- schema

/** An enum of the generated code, by the .proto's names (which are also the TypeScript union members). */
interface EnumTable {
  name: string;
  byName: Record<string, number>;
  byId: Record<number, string>;
}

function table(e: DescEnum): EnumTable {
  const byName: Record<string, number> = {};
  const byId: Record<number, string> = {};
  for (const v of e.values) {
    byName[v.name] = v.number;
    byId[v.number] = v.name;
  }
  return { name: e.typeName, byName, byId };
}

const ENUMS = {
  tunnelProtocol: table(TunnelProtocolSchema),
  workloadStatus: table(WorkloadStatusSchema),
  workloadType: table(WorkloadTypeSchema),
  lbScope: table(LoadBalancing_ScopeSchema),
  lbMode: table(LoadBalancing_ModeSchema),
  scope: table(ScopeSchema),
  action: table(ActionSchema),
};

type PbWorkload = Pb.Workload;
type PbService = Pb.Service;
type PbGatewayAddress = Pb.GatewayAddress;
type PbNetworkAddress = Pb.NetworkAddress;
type PbPort = Pb.Port;
type PbLoadBalancing = Pb.LoadBalancing;
type PbAuthorization = PbSec.Authorization;
type PbMatch = PbSec.Match;
type PbStringMatch = PbSec.StringMatch;
type PbCidr = PbSec.Address;

// ---------------------------------------------------------------- public API

/** istio.workload.Address bytes for a workload or a service. */
export function encodeAddress(a: Address): Buffer {
  const type: MessageInitShape<typeof AddressSchema>['type'] = a.workload
    ? { case: 'workload', value: workloadToPb(a.workload) }
    : { case: 'service', value: serviceToPb(a.service) };
  return toBuffer(toBinary(AddressSchema, create(AddressSchema, { type })));
}

export function encodeWorkload(w: Workload): Buffer {
  return encodeAddress({ workload: w });
}

export function encodeService(svc: Service): Buffer {
  return encodeAddress({ service: svc });
}

/** Decodes istio.workload.Address bytes; throws XdsDecodeError on a malformed resource. */
export function decodeAddress(bytes: Uint8Array): Address {
  const m = decodeMessage(() => fromBinary(AddressSchema, bytes), 'address');
  // A decoder keeps the last member of a oneof; both on the wire is a malformed Address.
  const fields = decodeMessage(() => topLevelFields(bytes), 'address');
  if (fields.has(1) && fields.has(2)) throw new XdsDecodeError('address', 'both workload and service are set; an Address carries exactly one');
  if (m.type.case === 'workload') return { workload: workloadFromPb(m.type.value, 'workload') };
  if (m.type.case === 'service') return { service: serviceFromPb(m.type.value, 'service') };
  throw new XdsDecodeError('address', 'neither workload nor service is set');
}

/** decodeAddress, and the resource name must be the workload's uid or the service's namespace/hostname. */
export function decodeAddressResource(bytes: Uint8Array, name: string): Address {
  const a = decodeAddress(bytes);
  const expected = a.workload ? workloadResourceName(a.workload) : serviceResourceName(a.service);
  if (expected !== name) {
    throw new XdsDecodeError(a.workload ? 'workload.uid' : 'service', `resource is named '${name}' but its content is '${expected}'`);
  }
  return a;
}

/** istio.security.Authorization bytes. */
export function encodeAuthorization(a: Authorization): Buffer {
  return toBuffer(toBinary(AuthorizationSchema, create(AuthorizationSchema, authorizationToPb(a))));
}

/** Decodes istio.security.Authorization bytes; throws XdsDecodeError on a malformed resource. */
export function decodeAuthorization(bytes: Uint8Array): Authorization {
  return authorizationFromPb(decodeMessage(() => fromBinary(AuthorizationSchema, bytes), 'authorization'), 'authorization');
}

/** decodeAuthorization, and the resource name must be namespace/name. */
export function decodeAuthorizationResource(bytes: Uint8Array, name: string): Authorization {
  const a = decodeAuthorization(bytes);
  const expected = authorizationResourceName(a);
  if (expected !== name) throw new XdsDecodeError('authorization', `resource is named '${name}' but its content is '${expected}'`);
  return a;
}

/** A workload or service as an ADS resource: its name and encoded body. */
export function addressResource(a: Address): { name: string; body: Buffer } {
  return { name: a.workload ? workloadResourceName(a.workload) : serviceResourceName(a.service), body: encodeAddress(a) };
}

export function authorizationResource(a: Authorization): { name: string; body: Buffer } {
  return { name: authorizationResourceName(a), body: encodeAuthorization(a) };
}

/** The ADS client's decoders for the workload API's two type URLs. */
export const addressResourceType: ResourceType<Address> = { typeUrl: ADDRESS_TYPE_URL, decode: decodeAddressResource };
export const authorizationResourceType: ResourceType<Authorization> = { typeUrl: AUTHORIZATION_TYPE_URL, decode: decodeAuthorizationResource };

// ---------------------------------------------------------------- helpers

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function decodeMessage<T>(decode: () => T, path: string): T {
  try {
    return decode();
  } catch (e: unknown) {
    throw new XdsDecodeError(path, `malformed protobuf (${e instanceof Error ? e.message : String(e)})`, e);
  }
}

/** The field numbers present at the top level of a message (throws on bytes that end early). */
function topLevelFields(bytes: Uint8Array): Set<number> {
  const seen = new Set<number>();
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wireType] = r.tag();
    seen.add(no);
    r.skip(wireType, no);
  }
  return seen;
}

function encodeError(path: string, reason: string): AmbitError {
  return new AmbitError('AMBIT_ERR_XDS', `cannot encode ${path}: ${reason}`, {
    hint: 'this is a bug in the translation to the workload API; the value never left the control plane',
    details: { path },
  });
}

function enumToPb(t: EnumTable, name: string | undefined, path: string): number {
  if (name === undefined) return 0;
  const n = t.byName[name];
  if (n === undefined) throw encodeError(path, `'${name}' is not a ${t.name} (${Object.keys(t.byName).join(', ')})`);
  return n;
}

function enumFromPb<T extends string>(t: EnumTable, n: number, path: string, allowed?: readonly T[]): T {
  const name = t.byId[n];
  if (name === undefined) throw new XdsDecodeError(path, `unknown ${t.name} value ${n}`);
  if (allowed && !allowed.includes(name as T)) throw new XdsDecodeError(path, `${t.name} ${name} is not supported`);
  return name as T;
}

function ipToPb(ip: string, path: string): Uint8Array {
  const p = parseIp(ip);
  if (!p) throw encodeError(path, `'${ip}' is not an IP address`);
  return p.bytes;
}

function ipFromPb(b: Uint8Array, path: string): string {
  if (b.length !== 4 && b.length !== 16) throw new XdsDecodeError(path, `${b.length} bytes is not an IP address (4 or 16 bytes)`);
  return formatIp(b);
}

function portToPbNumber(n: number, path: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw encodeError(path, `${n} is not a port (0-65535)`);
  return n;
}

function portFromPbNumber(n: number, path: string): number {
  if (n > 65535) throw new XdsDecodeError(path, `${n} is not a port (0-65535)`);
  return n;
}

// ---------------------------------------------------------------- istio.workload
// Encoding builds the generated messages' init shapes; proto3 leaves default values (empty
// strings and lists, 0, false) off the wire, which keeps the bytes canonical.

type Init<T extends Message> = MessageInitShape<GenMessage<T>>;
type WorkloadInit = Init<PbWorkload>;

function networkAddressToPb(a: NetworkAddress, path: string): Init<PbNetworkAddress> {
  return { network: a.network, address: ipToPb(a.address, `${path}.address`) };
}

function networkAddressFromPb(m: PbNetworkAddress, path: string): NetworkAddress {
  return { network: m.network, address: ipFromPb(m.address, `${path}.address`) };
}

function gatewayToPb(g: GatewayAddress, path: string): Init<PbGatewayAddress> {
  if (g.hostname && g.address) throw encodeError(path, 'both hostname and address are set; a GatewayAddress has one');
  const hboneMtlsPort = portToPbNumber(g.hboneMtlsPort, `${path}.hbone_mtls_port`);
  if (g.hostname) return { destination: { case: 'hostname', value: { namespace: g.hostname.namespace, hostname: g.hostname.hostname } }, hboneMtlsPort };
  if (g.address) return { destination: { case: 'address', value: networkAddressToPb(g.address, `${path}.address`) }, hboneMtlsPort };
  throw encodeError(path, 'neither hostname nor address is set');
}

function gatewayFromPb(m: PbGatewayAddress, path: string): GatewayAddress {
  const hboneMtlsPort = portFromPbNumber(m.hboneMtlsPort, `${path}.hbone_mtls_port`);
  const d = m.destination;
  if (d.case === 'hostname') {
    if (!d.value.hostname) throw new XdsDecodeError(`${path}.hostname.hostname`, 'is empty');
    return { hostname: { namespace: d.value.namespace, hostname: d.value.hostname }, hboneMtlsPort };
  }
  if (d.case === 'address') return { address: networkAddressFromPb(d.value, `${path}.address`), hboneMtlsPort };
  throw new XdsDecodeError(path, 'neither hostname nor address is set');
}

function portToPb(p: Port, path: string): Init<PbPort> {
  return {
    servicePort: portToPbNumber(p.servicePort, `${path}.service_port`),
    targetPort: portToPbNumber(p.targetPort, `${path}.target_port`),
    appProtocol: p.appProtocol ?? '',
  };
}

function portFromPb(m: PbPort, path: string): Port {
  const p: Port = {
    servicePort: portFromPbNumber(m.servicePort, `${path}.service_port`),
    targetPort: portFromPbNumber(m.targetPort, `${path}.target_port`),
  };
  if (m.appProtocol) p.appProtocol = m.appProtocol;
  return p;
}

function workloadToPb(w: Workload): WorkloadInit {
  const path = 'workload';
  // Sorted, so that equal maps encode to equal bytes whatever their insertion order.
  const services = Object.entries(w.services).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const o: WorkloadInit = {
    uid: w.uid,
    name: w.name,
    namespace: w.namespace,
    addresses: w.addresses.map((a, i) => ipToPb(a, `${path}.addresses[${i}]`)),
    hostname: w.hostname ?? '',
    network: w.network,
    tunnelProtocol: enumToPb(ENUMS.tunnelProtocol, w.tunnelProtocol, `${path}.tunnel_protocol`),
    trustDomain: w.trustDomain,
    serviceAccount: w.serviceAccount,
    node: w.node,
    canonicalName: w.canonicalName,
    canonicalRevision: w.canonicalRevision,
    workloadType: enumToPb(ENUMS.workloadType, w.workloadType, `${path}.workload_type`),
    workloadName: w.workloadName,
    nativeTunnel: w.nativeTunnel === true,
    services: Object.fromEntries(services.map(([key, pl]) => [key, { ports: pl.ports.map((port, i) => portToPb(port, `${path}.services[${key}].ports[${i}]`)) }])),
    authorizationPolicies: w.authorizationPolicies,
    status: enumToPb(ENUMS.workloadStatus, w.status, `${path}.status`),
    clusterId: w.clusterId,
  };
  if (w.waypoint) o.waypoint = gatewayToPb(w.waypoint, `${path}.waypoint`);
  if (w.locality) o.locality = { region: w.locality.region, zone: w.locality.zone, subzone: w.locality.subzone };
  return o;
}

function workloadFromPb(m: PbWorkload, path: string): Workload {
  if (!m.uid) throw new XdsDecodeError(`${path}.uid`, 'is empty; every workload needs a uid (its resource name)');
  const services: Record<string, PortList> = {};
  for (const [key, pl] of Object.entries(m.services)) {
    const slash = key.indexOf('/');
    if (slash <= 0 || slash === key.length - 1) {
      throw new XdsDecodeError(`${path}.services[${key}]`, 'key is not namespace/hostname');
    }
    // A map entry without its value holds the default, an empty PortList (protobufjs gives null).
    services[key] = { ports: (pl?.ports ?? []).map((p, i) => portFromPb(p, `${path}.services[${key}].ports[${i}]`)) };
  }
  const w: Workload = {
    uid: m.uid,
    name: m.name,
    namespace: m.namespace,
    addresses: m.addresses.map((b, i) => ipFromPb(b, `${path}.addresses[${i}]`)),
    network: m.network,
    tunnelProtocol: enumFromPb(ENUMS.tunnelProtocol, m.tunnelProtocol, `${path}.tunnel_protocol`),
    trustDomain: m.trustDomain,
    serviceAccount: m.serviceAccount,
    node: m.node,
    canonicalName: m.canonicalName,
    canonicalRevision: m.canonicalRevision,
    workloadType: enumFromPb(ENUMS.workloadType, m.workloadType, `${path}.workload_type`),
    workloadName: m.workloadName,
    authorizationPolicies: [...m.authorizationPolicies],
    status: enumFromPb(ENUMS.workloadStatus, m.status, `${path}.status`),
    clusterId: m.clusterId,
    services,
  };
  if (m.hostname) w.hostname = m.hostname;
  if (m.waypoint) w.waypoint = gatewayFromPb(m.waypoint, `${path}.waypoint`);
  if (m.locality) w.locality = { region: m.locality.region, zone: m.locality.zone, subzone: m.locality.subzone };
  if (m.nativeTunnel) w.nativeTunnel = true;
  return w;
}

function serviceToPb(svc: Service): Init<PbService> {
  const path = 'service';
  const o: Init<PbService> = {
    name: svc.name,
    namespace: svc.namespace,
    hostname: svc.hostname,
    addresses: svc.addresses.map((a, i) => networkAddressToPb(a, `${path}.addresses[${i}]`)),
    ports: svc.ports.map((p, i) => portToPb(p, `${path}.ports[${i}]`)),
    subjectAltNames: svc.subjectAltNames,
  };
  if (svc.waypoint) o.waypoint = gatewayToPb(svc.waypoint, `${path}.waypoint`);
  if (svc.loadBalancing) o.loadBalancing = loadBalancingToPb(svc.loadBalancing, `${path}.load_balancing`);
  return o;
}

function serviceFromPb(m: PbService, path: string): Service {
  if (!m.hostname) throw new XdsDecodeError(`${path}.hostname`, 'is empty; every service needs a hostname');
  const svc: Service = {
    name: m.name,
    namespace: m.namespace,
    hostname: m.hostname,
    addresses: m.addresses.map((a, i) => networkAddressFromPb(a, `${path}.addresses[${i}]`)),
    ports: m.ports.map((p, i) => portFromPb(p, `${path}.ports[${i}]`)),
    subjectAltNames: [...m.subjectAltNames],
  };
  if (m.waypoint) svc.waypoint = gatewayFromPb(m.waypoint, `${path}.waypoint`);
  if (m.loadBalancing) svc.loadBalancing = loadBalancingFromPb(m.loadBalancing, `${path}.load_balancing`);
  return svc;
}

const LB_MODES = ['UNSPECIFIED_MODE', 'STRICT', 'FAILOVER'] as const;

function loadBalancingToPb(lb: LoadBalancing, path: string): Init<PbLoadBalancing> {
  return {
    routingPreference: (lb.routingPreference ?? []).map((p, i) => enumToPb(ENUMS.lbScope, p, `${path}.routing_preference[${i}]`)),
    mode: enumToPb(ENUMS.lbMode, lb.mode, `${path}.mode`),
  };
}

function loadBalancingFromPb(m: PbLoadBalancing, path: string): LoadBalancing {
  return {
    mode: enumFromPb(ENUMS.lbMode, m.mode, `${path}.mode`, LB_MODES),
    routingPreference: m.routingPreference.map((n, i) => enumFromPb<string>(ENUMS.lbScope, n, `${path}.routing_preference[${i}]`)),
  };
}

// ---------------------------------------------------------------- istio.security

function authorizationToPb(a: Authorization): Init<PbAuthorization> {
  const path = 'authorization';
  return {
    name: a.name,
    namespace: a.namespace,
    scope: enumToPb(ENUMS.scope, a.scope, `${path}.scope`),
    action: enumToPb(ENUMS.action, a.action, `${path}.action`),
    rules: a.rules.map((r, ri) => ({
      clauses: r.clauses.map((c, ci) => ({
        matches: c.matches.map((m, mi) => matchToPb(m, `${path}.rules[${ri}].clauses[${ci}].matches[${mi}]`)),
      })),
    })),
    dryRun: a.dryRun === true,
  };
}

function authorizationFromPb(m: PbAuthorization, path: string): Authorization {
  if (!m.name) throw new XdsDecodeError(`${path}.name`, 'is empty; every policy needs a name');
  const rules: Rule[] = m.rules.map((r, ri) => ({
    clauses: r.clauses.map((c, ci): Clause => ({
      matches: c.matches.map((mm, mi) => matchFromPb(mm, `${path}.rules[${ri}].clauses[${ci}].matches[${mi}]`)),
    })),
  }));
  return {
    name: m.name,
    namespace: m.namespace,
    scope: enumFromPb(ENUMS.scope, m.scope, `${path}.scope`),
    action: enumFromPb(ENUMS.action, m.action, `${path}.action`),
    rules,
    dryRun: m.dryRun,
  };
}

const STRING_LISTS = ['namespaces', 'notNamespaces', 'principals', 'notPrincipals'] as const;
const CIDR_LISTS = ['sourceIps', 'notSourceIps', 'destinationIps', 'notDestinationIps'] as const;
const PORT_LISTS = ['destinationPorts', 'notDestinationPorts'] as const;
const SA_LISTS = ['serviceAccounts', 'notServiceAccounts'] as const;

/** camelCase field -> the .proto's snake_case name, for error paths. */
function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function matchToPb(m: Match, path: string): Init<PbMatch> {
  const o: Init<PbMatch> = {};
  for (const k of STRING_LISTS) o[k] = m[k].map((sm, i) => stringMatchToPb(sm, `${path}.${snake(k)}[${i}]`));
  for (const k of CIDR_LISTS) o[k] = m[k].map((c, i) => cidrToPb(c, `${path}.${snake(k)}[${i}]`));
  for (const k of PORT_LISTS) o[k] = m[k].map((p, i) => portToPbNumber(p, `${path}.${snake(k)}[${i}]`));
  for (const k of SA_LISTS) o[k] = m[k].map((sa) => ({ namespace: sa.namespace, serviceAccount: sa.serviceAccount }));
  return o;
}

function matchFromPb(m: PbMatch, path: string): Match {
  const strings = (k: typeof STRING_LISTS[number]): StringMatch[] => m[k].map((sm, i) => stringMatchFromPb(sm, `${path}.${snake(k)}[${i}]`));
  const cidrs = (k: typeof CIDR_LISTS[number]): AddressMatch[] => m[k].map((c, i) => cidrFromPb(c, `${path}.${snake(k)}[${i}]`));
  const ports = (k: typeof PORT_LISTS[number]): number[] => m[k].map((p, i) => portFromPbNumber(p, `${path}.${snake(k)}[${i}]`));
  const sas = (k: typeof SA_LISTS[number]): ServiceAccountMatch[] => m[k].map((sa) => ({ namespace: sa.namespace, serviceAccount: sa.serviceAccount }));
  return {
    namespaces: strings('namespaces'),
    notNamespaces: strings('notNamespaces'),
    principals: strings('principals'),
    notPrincipals: strings('notPrincipals'),
    sourceIps: cidrs('sourceIps'),
    notSourceIps: cidrs('notSourceIps'),
    destinationIps: cidrs('destinationIps'),
    notDestinationIps: cidrs('notDestinationIps'),
    destinationPorts: ports('destinationPorts'),
    notDestinationPorts: ports('notDestinationPorts'),
    serviceAccounts: sas('serviceAccounts'),
    notServiceAccounts: sas('notServiceAccounts'),
  };
}

function stringMatchToPb(sm: StringMatch, path: string): Init<PbStringMatch> {
  if ('exact' in sm) return { matchType: { case: 'exact', value: sm.exact } };
  if ('prefix' in sm) return { matchType: { case: 'prefix', value: sm.prefix } };
  if ('suffix' in sm) return { matchType: { case: 'suffix', value: sm.suffix } };
  if ('presence' in sm) return { matchType: { case: 'presence', value: {} } };
  throw encodeError(path, 'a StringMatch needs one of exact, prefix, suffix, presence');
}

function stringMatchFromPb(m: PbStringMatch, path: string): StringMatch {
  // The oneof's last member on the wire wins.
  switch (m.matchType.case) {
    case 'exact': return { exact: m.matchType.value };
    case 'prefix': return { prefix: m.matchType.value };
    case 'suffix': return { suffix: m.matchType.value };
    case 'presence': return { presence: {} };
    default: throw new XdsDecodeError(path, 'none of exact, prefix, suffix, presence is set');
  }
}

function cidrToPb(c: AddressMatch, path: string): Init<PbCidr> {
  const bytes = ipToPb(c.address, `${path}.address`);
  const max = bytes.length * 8;
  if (!Number.isInteger(c.length) || c.length < 0 || c.length > max) throw encodeError(`${path}.length`, `${c.length} is not a prefix length (0-${max})`);
  return { address: bytes, length: c.length };
}

function cidrFromPb(m: PbCidr, path: string): AddressMatch {
  const address = ipFromPb(m.address, `${path}.address`);
  const max = m.address.length * 8;
  if (m.length > max) throw new XdsDecodeError(`${path}.length`, `${m.length} is longer than the ${max} bits of the address`);
  return { address, length: m.length };
}
