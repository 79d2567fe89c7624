// Semantic checks of ServiceEntry, DestinationRule and Secret: what their shape (egress-kinds.ts)
// cannot say. Every problem is reported through the Reporter; nothing stops early.
//
// Facts followed (Istio's ServiceEntry / DestinationRule references and its validation):
// - a ServiceEntry needs at least one port; port numbers and names are unique; protocols are
//   Istio's (HTTP, HTTPS, HTTP2, GRPC, TCP, TLS, ...), compared case-insensitively;
// - hosts are names (a wildcard only as a leading "*."), never IPs, never "*" alone;
// - workloadSelector and endpoints exclude each other; STATIC needs endpoints (or a selector)
//   whose addresses are IPs; DNS without endpoints cannot have wildcard hosts (there is nothing
//   to resolve); DNS_ROUND_ROBIN takes at most one endpoint;
// - an endpoint's `ports` keys name ports of the ServiceEntry;
// - exportTo holds ".", "*", "~" or namespace names, and "*" / "~" stand alone;
// - a DestinationRule's loadBalancer is simple or consistentHash, and a consistentHash has one key;
//   TLS ISTIO_MUTUAL takes no certificates; MUTUAL needs a client certificate.
// Where Ambit departs (file-path certificates in proxies, fields not applied yet) the message says so.
import { isIP } from 'node:net';
import { isCanonicalCidr, parseCidr } from '../core/ip.js';
import type { PathSegment } from './diagnostics.js';
import {
  PORT_PROTOCOLS, type ClientTlsSettings, type DestinationRuleResource, type LoadBalancerSettings, type SecretResource,
  type ServiceEntryResource, type TrafficPolicy,
} from './egress-resources.js';
import { suggest } from './schema.js';
import { checkSecretMaterial } from './secret-data.js';
import type { Reporter } from './validate-resource.js';
import { parseIstioDuration } from './validate-virtual-service.js';

const HOST_LABEL = /^[a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A host name as ServiceEntry / DestinationRule hosts take it: labels, an optional leading "*.". */
export function hostProblem(h: string): string | undefined {
  if (h === '*') return '"*" alone would match every host; name the hosts (a leading "*." wildcard is allowed)';
  if (isIP(h)) return `"${h}" is an IP address; hosts are names (put IPs in addresses)`;
  const body = h.startsWith('*.') ? h.slice(2) : h;
  if (body.includes('*')) return `"${h}": a wildcard may only be a leading "*."`;
  if (body.length > 253 || !body.split('.').every((l) => l.length <= 63 && HOST_LABEL.test(l))) return `"${h}" is not a valid host name`;
  return undefined;
}

export function checkExportTo(values: string[] | undefined, at: PathSegment[], rep: Reporter): void {
  (values ?? []).forEach((v, i) => {
    if (v !== '.' && v !== '*' && v !== '~' && !DNS_LABEL.test(v)) rep.error([...at, i], 'bad-value', `"${v}" is not ".", "*", "~" or a namespace name`);
    if ((v === '*' || v === '~') && values!.length > 1) rep.error([...at, i], 'conflict', `"${v}" must be the only exportTo value`);
  });
}

export function checkServiceEntry(se: ServiceEntryResource, rep: Reporter): void {
  const spec = se.spec;
  const resolution = spec.resolution ?? 'NONE';
  const seen = new Set<string>();
  spec.hosts.forEach((h, i) => {
    const p = hostProblem(h);
    if (p) rep.error(['spec', 'hosts', i], 'bad-host', p);
    if (seen.has(h)) rep.error(['spec', 'hosts', i], 'duplicate', `host "${h}" is listed twice`);
    seen.add(h);
  });
  (spec.addresses ?? []).forEach((a, i) => {
    const c = parseCidr(a);
    if (!c) rep.error(['spec', 'addresses', i], 'bad-ip', `"${a}" is not an IP address or CIDR`);
    else if (!isCanonicalCidr(c)) rep.error(['spec', 'addresses', i], 'bad-cidr', `"${a}" has host bits set`);
    else if (c.prefix < (c.family === 4 ? 32 : 128)) {
      rep.warn(['spec', 'addresses', i], 'cidr-address', `"${a}" is a range, not a VIP: the ztunnel cannot route to it or answer it in DNS (nor can Istio's); REGISTRY_ONLY counts the range as known`);
    }
  });
  const ports = spec.ports ?? [];
  if (ports.length === 0) rep.error(['spec', 'ports'], 'missing-field', 'a ServiceEntry needs at least one port, e.g. {number: 443, name: https, protocol: HTTPS}');
  const numbers = new Set<number>();
  const names = new Set<string>();
  ports.forEach((p, i) => {
    if (numbers.has(p.number)) rep.error(['spec', 'ports', i, 'number'], 'duplicate', `port ${p.number} is listed twice`);
    numbers.add(p.number);
    if (names.has(p.name)) rep.error(['spec', 'ports', i, 'name'], 'duplicate', `port name "${p.name}" is used twice`);
    names.add(p.name);
    if (p.protocol !== undefined && !(PORT_PROTOCOLS as readonly string[]).includes(p.protocol.toUpperCase())) {
      const close = suggest(p.protocol, PORT_PROTOCOLS);
      rep.error(['spec', 'ports', i, 'protocol'], 'bad-value', `"${p.protocol}" is not a protocol; use one of ${PORT_PROTOCOLS.join(', ')}${close ? `; did you mean "${close}"?` : ''}`);
    }
  });
  const endpoints = spec.endpoints ?? [];
  if (spec.workloadSelector && spec.endpoints) rep.error(['spec', 'workloadSelector'], 'conflict', 'set workloadSelector or endpoints, not both');
  if (resolution === 'STATIC' && endpoints.length === 0 && !spec.workloadSelector) {
    rep.error(['spec', 'endpoints'], 'missing-field', 'resolution STATIC needs endpoints (IP addresses) or a workloadSelector');
  }
  if (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') {
    if (endpoints.length === 0) {
      spec.hosts.forEach((h, i) => {
        if (h.startsWith('*')) rep.error(['spec', 'hosts', i], 'bad-host', `wildcard host "${h}" cannot be resolved: resolution ${resolution} without endpoints resolves the hosts themselves; list endpoints or use resolution NONE`);
      });
    }
    if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) rep.error(['spec', 'endpoints'], 'too-many', 'resolution DNS_ROUND_ROBIN takes at most one endpoint');
  }
  if (resolution === 'DYNAMIC_DNS') rep.error(['spec', 'resolution'], 'unsupported', 'DYNAMIC_DNS is not supported by Ambit; use DNS (with hosts to resolve) or NONE');
  endpoints.forEach((e, i) => {
    const at: PathSegment[] = ['spec', 'endpoints', i];
    if (e.address === undefined) {
      rep.error(at, 'missing-field', 'an inline endpoint needs an address');
    } else if (e.address.startsWith('unix://')) {
      rep.error([...at, 'address'], 'unsupported', 'unix socket endpoints are not supported by Ambit');
    } else if (!isIP(e.address)) {
      if (resolution !== 'DNS' && resolution !== 'DNS_ROUND_ROBIN') rep.error([...at, 'address'], 'bad-ip', `"${e.address}" is not an IP address; host names as endpoints need resolution DNS`);
      else if (hostProblem(e.address) || e.address.includes('*')) rep.error([...at, 'address'], 'bad-host', `"${e.address}" is not a host name to resolve`);
    }
    for (const [name, port] of Object.entries(e.ports ?? {})) {
      if (!names.has(name)) rep.error([...at, 'ports', name], 'dangling-reference', `"${name}" is not the name of a port of this ServiceEntry (${[...names].join(', ') || 'none'})`);
      void port;
    }
    if (e.network || e.locality || e.weight !== undefined) rep.warn(at, 'not-applied', 'network, locality and weight of endpoints are not applied by Ambit');
  });
  checkExportTo(spec.exportTo, ['spec', 'exportTo'], rep);
}

export function checkDestinationRule(dr: DestinationRuleResource, rep: Reporter): void {
  const spec = dr.spec;
  const p = hostProblem(spec.host);
  if (p && spec.host !== '*') rep.error(['spec', 'host'], 'bad-host', p);
  if (spec.trafficPolicy) checkTrafficPolicy(spec.trafficPolicy, ['spec', 'trafficPolicy'], rep);
  const names = new Set<string>();
  (spec.subsets ?? []).forEach((s, i) => {
    const at: PathSegment[] = ['spec', 'subsets', i];
    if (!DNS_LABEL.test(s.name)) rep.error([...at, 'name'], 'bad-value', `"${s.name}" is not a valid subset name (lowercase letters, digits and "-")`);
    if (names.has(s.name)) rep.error([...at, 'name'], 'duplicate', `subset "${s.name}" is defined twice`);
    names.add(s.name);
    if (!s.labels || Object.keys(s.labels).length === 0) rep.warn(at, 'subset-without-labels', `subset "${s.name}" has no labels, so it selects every endpoint of the host`);
    if (s.trafficPolicy) checkTrafficPolicy(s.trafficPolicy, [...at, 'trafficPolicy'], rep);
  });
  if (spec.workloadSelector) rep.warn(['spec', 'workloadSelector'], 'not-applied', 'workloadSelector is not applied by Ambit: the rule applies to every proxy that sends to the host');
  checkExportTo(spec.exportTo, ['spec', 'exportTo'], rep);
}

function checkTrafficPolicy(tp: TrafficPolicy, at: PathSegment[], rep: Reporter): void {
  checkPolicyParts(tp, at, rep);
  const ports = new Set<number>();
  (tp.portLevelSettings ?? []).forEach((p, i) => {
    const n = p.port?.number;
    if (n !== undefined && ports.has(n)) rep.error([...at, 'portLevelSettings', i, 'port', 'number'], 'duplicate', `port ${n} has settings twice`);
    if (n !== undefined) ports.add(n);
    checkPolicyParts(p, [...at, 'portLevelSettings', i], rep);
  });
  if (tp.tunnel !== undefined) rep.warn([...at, 'tunnel'], 'unsupported', 'tunnel settings are not supported by Ambit');
  if (tp.proxyProtocol !== undefined) rep.warn([...at, 'proxyProtocol'], 'unsupported', 'proxyProtocol is not supported by Ambit');
}

function checkPolicyParts(tp: Pick<TrafficPolicy, 'loadBalancer' | 'connectionPool' | 'outlierDetection' | 'tls'>, at: PathSegment[], rep: Reporter): void {
  if (tp.loadBalancer) checkLoadBalancer(tp.loadBalancer, [...at, 'loadBalancer'], rep);
  const cp = tp.connectionPool;
  if (cp) {
    durations(rep, [...at, 'connectionPool', 'tcp'], cp.tcp as Record<string, unknown> | undefined, ['connectTimeout', 'maxConnectionDuration', 'idleTimeout']);
    durations(rep, [...at, 'connectionPool', 'tcp', 'tcpKeepalive'], cp.tcp?.tcpKeepalive as Record<string, unknown> | undefined, ['time', 'interval']);
    durations(rep, [...at, 'connectionPool', 'http'], cp.http as Record<string, unknown> | undefined, ['idleTimeout']);
    for (const k of ['tcpKeepalive', 'maxConnectionDuration'] as const) if (cp.tcp?.[k] !== undefined) rep.warn([...at, 'connectionPool', 'tcp', k], 'not-applied', `${k} is not applied by Ambit`);
    for (const k of ['h2UpgradePolicy', 'useClientProtocol', 'maxConcurrentStreams'] as const) if (cp.http?.[k] !== undefined) rep.warn([...at, 'connectionPool', 'http', k], 'not-applied', `${k} is not applied by Ambit (the upstream speaks what the client spoke)`);
  }
  const od = tp.outlierDetection;
  if (od) {
    durations(rep, [...at, 'outlierDetection'], od as Record<string, unknown>, ['interval', 'baseEjectionTime']);
    if (od.consecutiveErrors !== undefined) rep.warn([...at, 'outlierDetection', 'consecutiveErrors'], 'deprecated', 'consecutiveErrors is deprecated; use consecutive5xxErrors');
    for (const k of ['splitExternalLocalOriginErrors', 'consecutiveLocalOriginFailures'] as const) if (od[k] !== undefined) rep.warn([...at, 'outlierDetection', k], 'not-applied', `${k} is not applied by Ambit (connect failures count as 503s, Envoy's default)`);
  }
  if (tp.tls) checkClientTls(tp.tls, [...at, 'tls'], rep);
}

function checkLoadBalancer(lb: LoadBalancerSettings, at: PathSegment[], rep: Reporter): void {
  if (lb.simple !== undefined && lb.consistentHash !== undefined) rep.error(at, 'conflict', 'set simple or consistentHash, not both');
  const ch = lb.consistentHash;
  if (ch) {
    const keys = (['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] as const).filter((k) => ch[k] !== undefined && ch[k] !== false);
    if (keys.length !== 1) rep.error([...at, 'consistentHash'], keys.length === 0 ? 'missing-field' : 'conflict', `a consistentHash needs exactly one key: httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName${keys.length ? ` (found ${keys.join(', ')})` : ''}`);
    if (ch.ringHash && ch.maglev) rep.error([...at, 'consistentHash'], 'conflict', 'set ringHash or maglev, not both');
    if (ch.httpCookie?.ttl !== undefined && parseIstioDuration(ch.httpCookie.ttl) === undefined && ch.httpCookie.ttl !== '0s') rep.error([...at, 'consistentHash', 'httpCookie', 'ttl'], 'bad-duration', `"${ch.httpCookie.ttl}" is not a duration (e.g. 10s)`);
  }
  if (lb.warmupDurationSecs !== undefined && parseIstioDuration(lb.warmupDurationSecs) === undefined) rep.error([...at, 'warmupDurationSecs'], 'bad-duration', `"${lb.warmupDurationSecs}" is not a duration (e.g. 60s)`);
  if (lb.simple === 'PASSTHROUGH') rep.warn([...at, 'simple'], 'not-applied', 'PASSTHROUGH is not offered by Ambit; least request is used');
  if (lb.localityLbSetting !== undefined) rep.warn([...at, 'localityLbSetting'], 'not-applied', 'localityLbSetting is not applied by Ambit');
  if (lb.warmupDurationSecs !== undefined || lb.warmup !== undefined) rep.warn(at, 'not-applied', 'warmup is not applied by Ambit');
  if (ch?.ringHash || ch?.maglev || ch?.minimumRingSize) rep.warn([...at, 'consistentHash'], 'not-applied', 'ring and table sizes are not used: Ambit hashes by rendezvous (highest random weight)');
}

function checkClientTls(t: ClientTlsSettings, at: PathSegment[], rep: Reporter): void {
  const mode = t.mode ?? 'DISABLE';
  const files = (['clientCertificate', 'privateKey', 'caCertificates'] as const).filter((k) => t[k] !== undefined && t[k] !== '');
  if (mode === 'ISTIO_MUTUAL') {
    for (const k of [...files, ...(t.credentialName ? ['credentialName' as const] : [])]) rep.error([...at, k], 'conflict', `ISTIO_MUTUAL uses the mesh's own certificates; remove ${k}`);
    return;
  }
  if (mode === 'DISABLE') {
    if (t.credentialName || files.length || t.sni || t.subjectAltNames?.length) rep.warn(at, 'ignored', 'mode DISABLE originates no TLS; the other tls fields are ignored');
    return;
  }
  for (const k of files) rep.error([...at, k], 'unsupported', `Ambit's proxies do not read certificate files; put the material in a Secret and name it in credentialName (${k} is a file path)`);
  if (t.credentialName && files.length) rep.error([...at, 'credentialName'], 'conflict', 'set credentialName or file paths, not both');
  if (mode === 'MUTUAL' && !t.credentialName) rep.error(at, 'missing-field', 'mode MUTUAL needs a client certificate: credentialName naming a kubernetes.io/tls Secret (tls.crt, tls.key, and ca.crt to verify the server)');
  if (t.insecureSkipVerify) rep.warn([...at, 'insecureSkipVerify'], 'insecure', 'insecureSkipVerify accepts any server certificate: the connection is encrypted but not authenticated');
  if (t.caCrl !== undefined) rep.warn([...at, 'caCrl'], 'unsupported', 'caCrl is not applied by Ambit');
  (t.subjectAltNames ?? []).forEach((s, i) => { if (s === '') rep.error([...at, 'subjectAltNames', i], 'bad-value', 'an empty subject alt name matches nothing'); });
}

function durations(rep: Reporter, at: PathSegment[], o: Record<string, unknown> | undefined, keys: string[]): void {
  for (const k of keys) {
    const v = o?.[k];
    if (typeof v === 'string' && parseIstioDuration(v) === undefined) rep.error([...at, k], 'bad-duration', `"${v}" is not a duration (e.g. 100ms, 10s, 1m)`);
  }
}

/** The Secret's TLS material, checked now; problems name keys, never values. */
export function checkSecret(s: SecretResource, rep: Reporter, nowMs = Date.now()): void {
  if ((s as { spec?: unknown }).spec !== undefined && Object.keys((s as { spec?: object }).spec ?? {}).length > 0) rep.error(['spec'], 'unknown-field', 'a Secret has no spec; put values under data or stringData');
  for (const p of checkSecretMaterial(s, nowMs)) {
    const where = s.stringData?.[p.key] !== undefined ? 'stringData' : 'data';
    const path: PathSegment[] = p.key ? [where, p.key] : [];
    (p.severity === 'error' ? rep.error : rep.warn).call(rep, path, p.code, p.message);
  }
}
