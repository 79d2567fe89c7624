// The workload API codec: TypeScript values of workload-api.ts <-> protobuf bytes (the
// `value` of the google.protobuf.Any carried in each ADS Resource).
//
// Invariants:
// - Field numbers and types come from proto/istio/*.proto (loaded by protos.ts); enum names
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
//   CIDR length above 32/128, a oneof with no (or, for Address, both) members set, a missing
//   uid/hostname/name, a resource whose name does not match its content. The ADS client NACKs
//   just that resource with this message.
// - Encoding throws AmbitError AMBIT_ERR_XDS on a value the wire cannot carry (an IP string
//   that does not parse, an unknown enum name, a port out of range): that is a bug upstream of
//   the codec, found before anything is sent.
// - Fields the .proto has but workload-api.ts does not (network_gateway,
//   application_tunnel, network_mode, ip_families, canonical, health_policy) are ignored when
//   decoding and never written.
import type protobuf from 'protobufjs';
import { AmbitError } from '../core/errors.js';
import { formatIp, parseIp } from '../core/ip.js';
import type { ResourceType } from './ads-client.js';
import { workloadRoot } from './protos.js';
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

interface EnumTable {
  name: string;
  byName: Record<string, number>;
  byId: Record<number, string>;
}

interface Schema {
  address: protobuf.Type;
  authorization: protobuf.Type;
  tunnelProtocol: EnumTable;
  workloadStatus: EnumTable;
  workloadType: EnumTable;
  lbScope: EnumTable;
  lbMode: EnumTable;
  scope: EnumTable;
  action: EnumTable;
}

const schemas = new WeakMap<protobuf.Root, Schema>();

function schema(): Schema {
  const root = workloadRoot();
  let s = schemas.get(root);
  if (!s) {
    const table = (path: string): EnumTable => {
      const e = root.lookupEnum(path);
      return { name: path, byName: e.values, byId: e.valuesById };
    };
    s = {
      address: root.lookupType('istio.workload.Address'),
      authorization: root.lookupType('istio.security.Authorization'),
      tunnelProtocol: table('istio.workload.TunnelProtocol'),
      workloadStatus: table('istio.workload.WorkloadStatus'),
      workloadType: table('istio.workload.WorkloadType'),
      lbScope: table('istio.workload.LoadBalancing.Scope'),
      lbMode: table('istio.workload.LoadBalancing.Mode'),
      scope: table('istio.security.Scope'),
      action: table('istio.security.Action'),
    };
    schemas.set(root, s);
  }
  return s;
}

// ---------------------------------------------------------------- protobufjs message shapes
// What protobufjs's decode() produces for our messages (defaults on the prototype: '' / 0 /
// false / [] / {} / null for unset sub-messages).

interface PbNetworkAddress { network: string; address: Uint8Array }
interface PbNamespacedHostname { namespace: string; hostname: string }
interface PbGatewayAddress { hostname: PbNamespacedHostname | null; address: PbNetworkAddress | null; hboneMtlsPort: number }
interface PbPort { servicePort: number; targetPort: number; appProtocol: string }
interface PbPortList { ports: PbPort[] }
interface PbLocality { region: string; zone: string; subzone: string }
interface PbLoadBalancing { routingPreference: number[]; mode: number }
interface PbWorkload {
  uid: string; name: string; namespace: string; addresses: Uint8Array[]; hostname: string; network: string;
  tunnelProtocol: number; trustDomain: string; serviceAccount: string; waypoint: PbGatewayAddress | null; node: string;
  canonicalName: string; canonicalRevision: string; workloadType: number; workloadName: string;
  services: Record<string, PbPortList | null>; authorizationPolicies: string[]; status: number; clusterId: string;
  locality: PbLocality | null; nativeTunnel: boolean;
}
interface PbService {
  name: string; namespace: string; hostname: string; addresses: PbNetworkAddress[]; ports: PbPort[];
  subjectAltNames: string[]; waypoint: PbGatewayAddress | null; loadBalancing: PbLoadBalancing | null;
}
interface PbAddress { workload: PbWorkload | null; service: PbService | null }
interface PbStringMatch { exact?: string; prefix?: string; suffix?: string; presence?: object | null; matchType?: string }
interface PbCidr { address: Uint8Array; length: number }
interface PbSaMatch { namespace: string; serviceAccount: string }
interface PbMatch {
  namespaces: PbStringMatch[]; notNamespaces: PbStringMatch[]; principals: PbStringMatch[]; notPrincipals: PbStringMatch[];
  sourceIps: PbCidr[]; notSourceIps: PbCidr[]; destinationIps: PbCidr[]; notDestinationIps: PbCidr[];
  destinationPorts: number[]; notDestinationPorts: number[]; serviceAccounts: PbSaMatch[]; notServiceAccounts: PbSaMatch[];
}
interface PbAuthorization { name: string; namespace: string; scope: number; action: number; rules: { clauses: { matches: PbMatch[] }[] }[]; dryRun: boolean }

type Obj = Record<string, unknown>;

// ---------------------------------------------------------------- public API

/** istio.workload.Address bytes for a workload or a service. */
export function encodeAddress(a: Address): Buffer {
  const s = schema();
  const o: Obj = a.workload ? { workload: workloadToPb(s, a.workload) } : { service: serviceToPb(s, a.service) };
  return toBuffer(s.address.encode(o).finish());
}

export function encodeWorkload(w: Workload): Buffer {
  return encodeAddress({ workload: w });
}

export function encodeService(svc: Service): Buffer {
  return encodeAddress({ service: svc });
}

/** Decodes istio.workload.Address bytes; throws XdsDecodeError on a malformed resource. */
export function decodeAddress(bytes: Uint8Array): Address {
  const s = schema();
  const m = decodeMessage<PbAddress>(s.address, bytes, 'address');
  if (m.workload && m.service) throw new XdsDecodeError('address', 'both workload and service are set; an Address carries exactly one');
  if (m.workload) return { workload: workloadFromPb(s, m.workload, 'workload') };
  if (m.service) return { service: serviceFromPb(s, m.service, 'service') };
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
  const s = schema();
  return toBuffer(s.authorization.encode(authorizationToPb(s, a)).finish());
}

/** Decodes istio.security.Authorization bytes; throws XdsDecodeError on a malformed resource. */
export function decodeAuthorization(bytes: Uint8Array): Authorization {
  const s = schema();
  return authorizationFromPb(s, decodeMessage<PbAuthorization>(s.authorization, bytes, 'authorization'), 'authorization');
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

function decodeMessage<T>(type: protobuf.Type, bytes: Uint8Array, path: string): T {
  try {
    return type.decode(bytes) as unknown as T;
  } catch (e: unknown) {
    throw new XdsDecodeError(path, `malformed protobuf (${e instanceof Error ? e.message : String(e)})`, e);
  }
}

function encodeError(path: string, reason: string): AmbitError {
  return new AmbitError('AMBIT_ERR_XDS', `cannot encode ${path}: ${reason}`, {
    hint: 'this is a bug in the translation to the workload API; the value never left the control plane',
    details: { path },
  });
}

function setStr(o: Obj, key: string, v: string | undefined): void {
  if (v) o[key] = v;
}

function setNum(o: Obj, key: string, v: number | undefined): void {
  if (v) o[key] = v;
}

function setList(o: Obj, key: string, v: unknown[] | undefined): void {
  if (v && v.length) o[key] = v;
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

function networkAddressToPb(a: NetworkAddress, path: string): Obj {
  const o: Obj = { address: ipToPb(a.address, `${path}.address`) };
  setStr(o, 'network', a.network);
  return o;
}

function networkAddressFromPb(m: PbNetworkAddress, path: string): NetworkAddress {
  return { network: m.network, address: ipFromPb(m.address, `${path}.address`) };
}

function gatewayToPb(g: GatewayAddress, path: string): Obj {
  const o: Obj = {};
  if (g.hostname && g.address) throw encodeError(path, 'both hostname and address are set; a GatewayAddress has one');
  if (g.hostname) {
    const h: Obj = {};
    setStr(h, 'namespace', g.hostname.namespace);
    setStr(h, 'hostname', g.hostname.hostname);
    o.hostname = h;
  } else if (g.address) {
    o.address = networkAddressToPb(g.address, `${path}.address`);
  } else {
    throw encodeError(path, 'neither hostname nor address is set');
  }
  setNum(o, 'hboneMtlsPort', portToPbNumber(g.hboneMtlsPort, `${path}.hbone_mtls_port`));
  return o;
}

function gatewayFromPb(m: PbGatewayAddress, path: string): GatewayAddress {
  const hboneMtlsPort = portFromPbNumber(m.hboneMtlsPort, `${path}.hbone_mtls_port`);
  if (m.hostname && m.address) throw new XdsDecodeError(path, 'both hostname and address are set');
  if (m.hostname) {
    if (!m.hostname.hostname) throw new XdsDecodeError(`${path}.hostname.hostname`, 'is empty');
    return { hostname: { namespace: m.hostname.namespace, hostname: m.hostname.hostname }, hboneMtlsPort };
  }
  if (m.address) return { address: networkAddressFromPb(m.address, `${path}.address`), hboneMtlsPort };
  throw new XdsDecodeError(path, 'neither hostname nor address is set');
}

function portToPb(p: Port, path: string): Obj {
  const o: Obj = {};
  setNum(o, 'servicePort', portToPbNumber(p.servicePort, `${path}.service_port`));
  setNum(o, 'targetPort', portToPbNumber(p.targetPort, `${path}.target_port`));
  setStr(o, 'appProtocol', p.appProtocol);
  return o;
}

function portFromPb(m: PbPort, path: string): Port {
  const p: Port = {
    servicePort: portFromPbNumber(m.servicePort, `${path}.service_port`),
    targetPort: portFromPbNumber(m.targetPort, `${path}.target_port`),
  };
  if (m.appProtocol) p.appProtocol = m.appProtocol;
  return p;
}

function workloadToPb(s: Schema, w: Workload): Obj {
  const path = 'workload';
  const o: Obj = {};
  setStr(o, 'uid', w.uid);
  setStr(o, 'name', w.name);
  setStr(o, 'namespace', w.namespace);
  setList(o, 'addresses', w.addresses.map((a, i) => ipToPb(a, `${path}.addresses[${i}]`)));
  setStr(o, 'hostname', w.hostname);
  setStr(o, 'network', w.network);
  setNum(o, 'tunnelProtocol', enumToPb(s.tunnelProtocol, w.tunnelProtocol, `${path}.tunnel_protocol`));
  setStr(o, 'trustDomain', w.trustDomain);
  setStr(o, 'serviceAccount', w.serviceAccount);
  if (w.waypoint) o.waypoint = gatewayToPb(w.waypoint, `${path}.waypoint`);
  setStr(o, 'node', w.node);
  setStr(o, 'canonicalName', w.canonicalName);
  setStr(o, 'canonicalRevision', w.canonicalRevision);
  setNum(o, 'workloadType', enumToPb(s.workloadType, w.workloadType, `${path}.workload_type`));
  setStr(o, 'workloadName', w.workloadName);
  if (w.nativeTunnel) o.nativeTunnel = true;
  // Sorted, so that equal maps encode to equal bytes whatever their insertion order.
  const services = Object.entries(w.services).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (services.length) {
    o.services = Object.fromEntries(services.map(([key, pl]) => {
      const p: Obj = {};
      setList(p, 'ports', pl.ports.map((port, i) => portToPb(port, `${path}.services[${key}].ports[${i}]`)));
      return [key, p];
    }));
  }
  setList(o, 'authorizationPolicies', w.authorizationPolicies);
  setNum(o, 'status', enumToPb(s.workloadStatus, w.status, `${path}.status`));
  setStr(o, 'clusterId', w.clusterId);
  if (w.locality) {
    const l: Obj = {};
    setStr(l, 'region', w.locality.region);
    setStr(l, 'zone', w.locality.zone);
    setStr(l, 'subzone', w.locality.subzone);
    o.locality = l;
  }
  return o;
}

function workloadFromPb(s: Schema, m: PbWorkload, path: string): Workload {
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
    tunnelProtocol: enumFromPb(s.tunnelProtocol, m.tunnelProtocol, `${path}.tunnel_protocol`),
    trustDomain: m.trustDomain,
    serviceAccount: m.serviceAccount,
    node: m.node,
    canonicalName: m.canonicalName,
    canonicalRevision: m.canonicalRevision,
    workloadType: enumFromPb(s.workloadType, m.workloadType, `${path}.workload_type`),
    workloadName: m.workloadName,
    authorizationPolicies: [...m.authorizationPolicies],
    status: enumFromPb(s.workloadStatus, m.status, `${path}.status`),
    clusterId: m.clusterId,
    services,
  };
  if (m.hostname) w.hostname = m.hostname;
  if (m.waypoint) w.waypoint = gatewayFromPb(m.waypoint, `${path}.waypoint`);
  if (m.locality) w.locality = { region: m.locality.region, zone: m.locality.zone, subzone: m.locality.subzone };
  if (m.nativeTunnel) w.nativeTunnel = true;
  return w;
}

function serviceToPb(s: Schema, svc: Service): Obj {
  const path = 'service';
  const o: Obj = {};
  setStr(o, 'name', svc.name);
  setStr(o, 'namespace', svc.namespace);
  setStr(o, 'hostname', svc.hostname);
  setList(o, 'addresses', svc.addresses.map((a, i) => networkAddressToPb(a, `${path}.addresses[${i}]`)));
  setList(o, 'ports', svc.ports.map((p, i) => portToPb(p, `${path}.ports[${i}]`)));
  setList(o, 'subjectAltNames', svc.subjectAltNames);
  if (svc.waypoint) o.waypoint = gatewayToPb(svc.waypoint, `${path}.waypoint`);
  if (svc.loadBalancing) o.loadBalancing = loadBalancingToPb(s, svc.loadBalancing, `${path}.load_balancing`);
  return o;
}

function serviceFromPb(s: Schema, m: PbService, path: string): Service {
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
  if (m.loadBalancing) svc.loadBalancing = loadBalancingFromPb(s, m.loadBalancing, `${path}.load_balancing`);
  return svc;
}

const LB_MODES = ['UNSPECIFIED_MODE', 'STRICT', 'FAILOVER'] as const;

function loadBalancingToPb(s: Schema, lb: LoadBalancing, path: string): Obj {
  const o: Obj = {};
  setList(o, 'routingPreference', (lb.routingPreference ?? []).map((p, i) => enumToPb(s.lbScope, p, `${path}.routing_preference[${i}]`)));
  setNum(o, 'mode', enumToPb(s.lbMode, lb.mode, `${path}.mode`));
  return o;
}

function loadBalancingFromPb(s: Schema, m: PbLoadBalancing, path: string): LoadBalancing {
  return {
    mode: enumFromPb(s.lbMode, m.mode, `${path}.mode`, LB_MODES),
    routingPreference: m.routingPreference.map((n, i) => enumFromPb<string>(s.lbScope, n, `${path}.routing_preference[${i}]`)),
  };
}

// ---------------------------------------------------------------- istio.security

function authorizationToPb(s: Schema, a: Authorization): Obj {
  const path = 'authorization';
  const o: Obj = {};
  setStr(o, 'name', a.name);
  setStr(o, 'namespace', a.namespace);
  setNum(o, 'scope', enumToPb(s.scope, a.scope, `${path}.scope`));
  setNum(o, 'action', enumToPb(s.action, a.action, `${path}.action`));
  setList(o, 'rules', a.rules.map((r, ri) => {
    const ro: Obj = {};
    setList(ro, 'clauses', r.clauses.map((c, ci) => {
      const co: Obj = {};
      setList(co, 'matches', c.matches.map((m, mi) => matchToPb(m, `${path}.rules[${ri}].clauses[${ci}].matches[${mi}]`)));
      return co;
    }));
    return ro;
  }));
  if (a.dryRun) o.dryRun = true;
  return o;
}

function authorizationFromPb(s: Schema, m: PbAuthorization, path: string): Authorization {
  if (!m.name) throw new XdsDecodeError(`${path}.name`, 'is empty; every policy needs a name');
  const rules: Rule[] = m.rules.map((r, ri) => ({
    clauses: r.clauses.map((c, ci): Clause => ({
      matches: c.matches.map((mm, mi) => matchFromPb(mm, `${path}.rules[${ri}].clauses[${ci}].matches[${mi}]`)),
    })),
  }));
  return {
    name: m.name,
    namespace: m.namespace,
    scope: enumFromPb(s.scope, m.scope, `${path}.scope`),
    action: enumFromPb(s.action, m.action, `${path}.action`),
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

function matchToPb(m: Match, path: string): Obj {
  const o: Obj = {};
  for (const k of STRING_LISTS) setList(o, k, m[k].map((sm, i) => stringMatchToPb(sm, `${path}.${snake(k)}[${i}]`)));
  for (const k of CIDR_LISTS) setList(o, k, m[k].map((c, i) => cidrToPb(c, `${path}.${snake(k)}[${i}]`)));
  for (const k of PORT_LISTS) setList(o, k, m[k].map((p, i) => portToPbNumber(p, `${path}.${snake(k)}[${i}]`)));
  for (const k of SA_LISTS) {
    setList(o, k, m[k].map((sa) => {
      const so: Obj = {};
      setStr(so, 'namespace', sa.namespace);
      setStr(so, 'serviceAccount', sa.serviceAccount);
      return so;
    }));
  }
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

function stringMatchToPb(sm: StringMatch, path: string): Obj {
  if ('exact' in sm) return { exact: sm.exact };
  if ('prefix' in sm) return { prefix: sm.prefix };
  if ('suffix' in sm) return { suffix: sm.suffix };
  if ('presence' in sm) return { presence: {} };
  throw encodeError(path, 'a StringMatch needs one of exact, prefix, suffix, presence');
}

function stringMatchFromPb(m: PbStringMatch, path: string): StringMatch {
  // The oneof's last member on the wire wins (protobufjs records it as matchType).
  switch (m.matchType) {
    case 'exact': return { exact: m.exact ?? '' };
    case 'prefix': return { prefix: m.prefix ?? '' };
    case 'suffix': return { suffix: m.suffix ?? '' };
    case 'presence': return { presence: {} };
    default: throw new XdsDecodeError(path, 'none of exact, prefix, suffix, presence is set');
  }
}

function cidrToPb(c: AddressMatch, path: string): Obj {
  const bytes = ipToPb(c.address, `${path}.address`);
  const max = bytes.length * 8;
  if (!Number.isInteger(c.length) || c.length < 0 || c.length > max) throw encodeError(`${path}.length`, `${c.length} is not a prefix length (0-${max})`);
  const o: Obj = { address: bytes };
  setNum(o, 'length', c.length);
  return o;
}

function cidrFromPb(m: PbCidr, path: string): AddressMatch {
  const address = ipFromPb(m.address, `${path}.address`);
  const max = m.address.length * 8;
  if (m.length > max) throw new XdsDecodeError(`${path}.length`, `${m.length} is longer than the ${max} bits of the address`);
  return { address, length: m.length };
}
