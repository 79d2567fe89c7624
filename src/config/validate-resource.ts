// Per-resource semantic checks: what the schema (shape) cannot say. Every check reports
// through the Reporter and keeps going, so one pass finds every problem.
import { isCanonicalCidr, parseCidr, parseIp } from '../core/ip.js';
import type { PathSegment } from './diagnostics.js';
import type {
  AuthorizationPolicyResource, ConfigMapResource, DeploymentResource, GatewayResource, HTTPRouteFilter, HTTPRouteResource,
  PeerAuthenticationResource, PodResource, PodSpec, RequestAuthenticationResource, Resource, ServiceResource, TelemetryResource,
} from './resources.js';
import { checkVirtualService } from './validate-virtual-service.js';
import { checkDestinationRule, checkSecret, checkServiceEntry } from './validate-egress.js';
import { checkGRPCRoute, checkIngressGateway, checkReferenceGrant, checkTCPRoute, KNOWN_CLASSES } from './validate-ingress.js';
import { INGRESS_CLASS } from './ingress-resources.js';
import { MESH_CONFIGMAP_KEY, MESH_CONFIGMAP_NAME, parseMeshConfig } from './mesh-config.js';
import { LogFilterSyntaxError, parseLogFilter } from './log-filter.js';
import { LABEL_DATAPLANE_MODE, LABEL_USE_WAYPOINT, LABEL_WAYPOINT_FOR, WAYPOINT_FOR_VALUES } from './labels.js';
import { HBONE_PORT } from '../core/mesh-constants.js';
import { regexProblem } from './re2.js';

export interface Reporter {
  /** `line` overrides the line of `path` (a problem inside an embedded document). */
  error(path: PathSegment[], code: string, message: string, line?: number): void;
  warn(path: PathSegment[], code: string, message: string, line?: number): void;
  /** The line where the string at `path` starts, when the source text is known. */
  contentLine?(path: PathSegment[]): number | undefined;
}

export function checkResource(r: Resource, rep: Reporter): void {
  checkMetadataLabels(r, rep);
  switch (r.kind) {
    case 'Pod': checkPodSpec(r.spec, ['spec'], rep); checkPodStatus(r, rep); break;
    case 'Deployment': checkDeployment(r, rep); break;
    case 'Service': checkService(r, rep); break;
    case 'AuthorizationPolicy': checkAuthorizationPolicy(r, rep); break;
    case 'PeerAuthentication': checkPeerAuthentication(r, rep); break;
    case 'RequestAuthentication': checkRequestAuthentication(r, rep); break;
    case 'Gateway': checkGateway(r, rep); break;
    case 'HTTPRoute': checkHTTPRoute(r, rep); break;
    case 'VirtualService': checkVirtualService(r, rep); break;
    case 'Telemetry': checkTelemetry(r, rep); break;
    case 'ConfigMap': checkConfigMap(r, rep); break;
    case 'ServiceEntry': checkServiceEntry(r, rep); break;
    case 'DestinationRule': checkDestinationRule(r, rep); break;
    case 'Secret': checkSecret(r, rep); break;
    case 'ReferenceGrant': checkReferenceGrant(r, rep); break;
    case 'GRPCRoute': checkGRPCRoute(r, rep); break;
    case 'TCPRoute': checkTCPRoute(r, rep); break;
    case 'Namespace':
    case 'ServiceAccount':
      break;
  }
}

/** Istio's mesh config (`istio`, key `mesh`) is checked inside; other ConfigMaps are opaque. */
function checkConfigMap(cm: ConfigMapResource, rep: Reporter): void {
  const text = cm.data?.[MESH_CONFIGMAP_KEY];
  if (cm.metadata.name !== MESH_CONFIGMAP_NAME || text === undefined) return;
  const at: PathSegment[] = ['data', MESH_CONFIGMAP_KEY];
  const start = rep.contentLine?.(at);
  for (const i of parseMeshConfig(text).issues) {
    const line = start === undefined ? undefined : start + i.line - 1;
    (i.severity === 'error' ? rep.error : rep.warn).call(rep, [...at, ...i.path], i.code, i.message, line);
  }
}

function checkMetadataLabels(r: Resource, rep: Reporter): void {
  const labels = r.metadata.labels ?? {};
  const mode = labels[LABEL_DATAPLANE_MODE];
  if (mode !== undefined && !['ambient', 'none', ''].includes(mode)) {
    rep.error(['metadata', 'labels', LABEL_DATAPLANE_MODE], 'bad-label',
      `"${mode}" is not a data-plane mode; use "ambient" to enrol, or "none" to opt out`);
  }
  if (mode !== undefined && r.kind !== 'Namespace' && r.kind !== 'Pod' && r.kind !== 'Deployment') {
    rep.warn(['metadata', 'labels', LABEL_DATAPLANE_MODE], 'ignored-label',
      `${LABEL_DATAPLANE_MODE} has effect only on a Namespace or a Pod (or a Deployment's pod template)`);
  }
  const wp = labels[LABEL_USE_WAYPOINT];
  if (wp !== undefined && wp !== 'none' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(wp)) {
    rep.error(['metadata', 'labels', LABEL_USE_WAYPOINT], 'bad-label', `"${wp}" is not a Gateway name (or "none")`);
  }
  const wpFor = labels[LABEL_WAYPOINT_FOR];
  if (wpFor !== undefined && !(WAYPOINT_FOR_VALUES as readonly string[]).includes(wpFor)) {
    rep.error(['metadata', 'labels', LABEL_WAYPOINT_FOR], 'bad-label', `"${wpFor}" is not one of ${WAYPOINT_FOR_VALUES.join(', ')}`);
  }
}

function checkPodSpec(spec: PodSpec, at: PathSegment[], rep: Reporter): void {
  const seen = new Set<string>();
  spec.containers.forEach((c, i) => {
    if (seen.has(c.name)) rep.error([...at, 'containers', i, 'name'], 'duplicate', `container name "${c.name}" is used twice`);
    seen.add(c.name);
    if (!c.command?.length && !c.args?.length && !c.image) {
      rep.error([...at, 'containers', i], 'missing-field', 'a container needs an image or a command');
    }
    const uid = c.securityContext?.runAsUser ?? spec.securityContext?.runAsUser;
    if ((c.securityContext?.runAsNonRoot ?? spec.securityContext?.runAsNonRoot) && uid === 0) {
      rep.error([...at, 'containers', i, 'securityContext', 'runAsNonRoot'], 'conflict', 'runAsNonRoot is true but the container runs as user 0; remove runAsUser: 0 or runAsNonRoot');
    }
    const sc = c.securityContext as Record<string, unknown> | undefined;
    for (const f of ['privileged', 'capabilities', 'allowPrivilegeEscalation'] as const) {
      if (sc?.[f] !== undefined && sc[f] !== false) {
        rep.warn([...at, 'containers', i, 'securityContext', f], 'ignored-field', `the local cluster does not grant ${f}: pods run without capabilities (as non-root) or with a container runtime's default set (as root)`);
      }
    }
    const portNames = new Set<string>();
    (c.ports ?? []).forEach((p, j) => {
      if (p.name !== undefined) {
        if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p.name) || p.name.length > 15) {
          rep.error([...at, 'containers', i, 'ports', j, 'name'], 'bad-value', `"${p.name}" is not a valid port name (at most 15 lowercase letters, digits and "-")`);
        }
        if (portNames.has(p.name)) rep.error([...at, 'containers', i, 'ports', j, 'name'], 'duplicate', `port name "${p.name}" is used twice`);
        portNames.add(p.name);
      }
    });
  });
  if (spec.serviceAccount && spec.serviceAccountName && spec.serviceAccount !== spec.serviceAccountName) {
    rep.error([...at, 'serviceAccount'], 'conflict', `serviceAccount "${spec.serviceAccount}" differs from serviceAccountName "${spec.serviceAccountName}"; set only serviceAccountName`);
  }
}

function checkPodStatus(p: PodResource, rep: Reporter): void {
  const ip = p.status?.podIP;
  if (ip !== undefined && !parseIp(ip)) rep.error(['status', 'podIP'], 'bad-ip', `"${ip}" is not an IP address`);
  (p.status?.podIPs ?? []).forEach((x, i) => {
    if (!parseIp(x.ip)) rep.error(['status', 'podIPs', i, 'ip'], 'bad-ip', `"${x.ip}" is not an IP address`);
  });
}

function checkDeployment(d: DeploymentResource, rep: Reporter): void {
  checkPodSpec(d.spec.template.spec, ['spec', 'template', 'spec'], rep);
  const sel = d.spec.selector.matchLabels ?? {};
  const tpl = d.spec.template.metadata?.labels ?? {};
  for (const [k, v] of Object.entries(sel)) {
    if (tpl[k] !== v) {
      rep.error(['spec', 'selector', 'matchLabels', k], 'selector-mismatch',
        `selector ${k}=${v} does not match the template's labels (${tpl[k] === undefined ? `no label ${k}` : `${k}=${tpl[k]}`}); a Deployment's selector must match its pod template`);
    }
  }
  if (Object.keys(sel).length === 0 && !(d.spec.selector.matchExpressions?.length)) {
    rep.error(['spec', 'selector'], 'missing-field', 'a Deployment needs a selector with matchLabels');
  }
  if (d.spec.template.spec.nodeName && (d.spec.replicas ?? 1) > 1) {
    rep.warn(['spec', 'template', 'spec', 'nodeName'], 'pinned-replicas', 'every replica will run on the same node');
  }
}

function checkService(s: ServiceResource, rep: Reporter): void {
  const ports = s.spec.ports ?? [];
  if (ports.length === 0 && s.spec.type !== 'ExternalName') rep.error(['spec', 'ports'], 'missing-field', 'a Service needs at least one port');
  const names = new Set<string>();
  const numbers = new Set<number>();
  ports.forEach((p, i) => {
    if (ports.length > 1 && !p.name) rep.error(['spec', 'ports', i], 'missing-field', 'when a Service has more than one port, every port needs a name');
    if (p.name) {
      if (names.has(p.name)) rep.error(['spec', 'ports', i, 'name'], 'duplicate', `port name "${p.name}" is used twice`);
      names.add(p.name);
    }
    if (numbers.has(p.port)) rep.error(['spec', 'ports', i, 'port'], 'duplicate', `port ${p.port} is listed twice`);
    numbers.add(p.port);
    const tp = p.targetPort;
    if (typeof tp === 'number' && (tp < 1 || tp > 65535)) rep.error(['spec', 'ports', i, 'targetPort'], 'out-of-range', `${tp} is out of range (1..65535)`);
    if (typeof tp === 'string') {
      if (/^\d+$/.test(tp)) rep.error(['spec', 'ports', i, 'targetPort'], 'wrong-type', `"${tp}" is a string; write the number without quotes: ${tp}`);
      else if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(tp) || tp.length > 15) rep.error(['spec', 'ports', i, 'targetPort'], 'bad-value', `"${tp}" is neither a port number nor a port name`);
    }
  });
  const ip = s.spec.clusterIP;
  if (ip !== undefined && ip !== 'None' && ip !== '' && !parseIp(ip)) rep.error(['spec', 'clusterIP'], 'bad-ip', `"${ip}" is not an IP address (or "None" for a headless service)`);
  (s.spec.clusterIPs ?? []).forEach((x, i) => {
    if (x !== 'None' && !parseIp(x)) rep.error(['spec', 'clusterIPs', i], 'bad-ip', `"${x}" is not an IP address`);
  });
}

// ---- security.istio.io ----

const WILDCARD_STRING = /^(\*|\*?[^*\s]+|[^*\s]+\*?)$/;

function checkStringMatchList(values: string[] | undefined, at: PathSegment[], what: string, rep: Reporter): void {
  (values ?? []).forEach((v, i) => {
    if (v === '') rep.error([...at, i], 'bad-value', `an empty ${what} matches nothing; remove it or use "*" for any`);
    else if (!WILDCARD_STRING.test(v)) rep.error([...at, i], 'bad-value', `"${v}" is not a valid ${what}: "*" may appear only at the start or the end, and no spaces`);
  });
}

function checkPrincipals(values: string[] | undefined, at: PathSegment[], rep: Reporter): void {
  checkStringMatchList(values, at, 'principal', rep);
  (values ?? []).forEach((v, i) => {
    if (v.includes('*')) return;
    const p = v.startsWith('spiffe://') ? v.slice('spiffe://'.length) : v;
    if (!/^[^/\s]+\/ns\/[^/\s]+\/sa\/[^/\s]+$/.test(p)) {
      rep.error([...at, i], 'bad-principal',
        `"${v}" is not a principal; expected <trust-domain>/ns/<namespace>/sa/<service-account>, e.g. cluster.local/ns/default/sa/sleep`);
    }
  });
}

function checkIpBlocks(values: string[] | undefined, at: PathSegment[], rep: Reporter): void {
  (values ?? []).forEach((v, i) => {
    const c = parseCidr(v);
    if (!c) rep.error([...at, i], 'bad-cidr', `"${v}" is not an IP address or CIDR (e.g. 10.0.0.0/16 or 2001:db8::/32)`);
    else if (!isCanonicalCidr(c)) rep.warn([...at, i], 'cidr-host-bits', `"${v}" has host bits set; it is read as the network that contains it`);
  });
}

function checkPortStrings(values: string[] | undefined, at: PathSegment[], rep: Reporter): void {
  (values ?? []).forEach((v, i) => {
    if (!/^\d{1,5}$/.test(String(v)) || Number(v) < 1 || Number(v) > 65535) {
      rep.error([...at, i], 'bad-port', `"${v}" is not a port number (1..65535)`);
    }
  });
}

const HTTP_METHOD = /^[A-Z]+$/;
export const WHEN_KEYS_L4 = ['source.ip', 'source.namespace', 'source.principal', 'source.serviceAccount', 'destination.ip', 'destination.port'];
export const WHEN_KEYS_L7_EXACT = ['remote.ip', 'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter', 'connection.sni'];
const WHEN_KEY_L7_PATTERN = /^(request\.headers\[[^\]]+\]|request\.auth\.claims(\[[^\]]+\])+|experimental\.envoy\.filters\..+)$/;

/** selector vs targetRefs, and what a targetRef may name (AuthorizationPolicy, Telemetry). */
function checkPolicyTargets(p: AuthorizationPolicyResource | TelemetryResource, rep: Reporter): void {
  const spec = p.spec ?? {};
  if (spec.selector && (spec.targetRef || spec.targetRefs)) {
    rep.error(['spec', 'selector'], 'conflict', 'set either selector (applied by the ztunnel or sidecar) or targetRefs (applied by a waypoint), not both');
  }
  if (spec.targetRef && spec.targetRefs) rep.error(['spec', 'targetRef'], 'conflict', 'set targetRefs or targetRef, not both');
  const refs = spec.targetRefs ?? (spec.targetRef ? [spec.targetRef] : []);
  refs.forEach((ref, i) => {
    const at: PathSegment[] = spec.targetRefs ? ['spec', 'targetRefs', i] : ['spec', 'targetRef'];
    if (!['Gateway', 'Service', 'ServiceEntry', 'GatewayClass'].includes(ref.kind)) {
      rep.error([...at, 'kind'], 'bad-value', `"${ref.kind}" cannot be a policy target; use Gateway (a waypoint), Service, ServiceEntry or GatewayClass`);
    }
    if (ref.namespace && ref.namespace !== p.metadata.namespace) {
      rep.error([...at, 'namespace'], 'bad-value', 'a policy can only target resources in its own namespace');
    }
  });
}

function checkTelemetry(t: TelemetryResource, rep: Reporter): void {
  checkPolicyTargets(t, rep);
  const spec = t.spec ?? {};
  for (const k of ['metrics', 'tracing'] as const) {
    if (spec[k] !== undefined) rep.warn(['spec', k], 'not-applied', `Ambit applies only accessLogging of a Telemetry; ${k} is ignored (Istio's standard metrics are always on)`);
  }
  (spec.accessLogging ?? []).forEach((a, i) => {
    const at: PathSegment[] = ['spec', 'accessLogging', i];
    (a.providers ?? []).forEach((p, pi) => {
      if (p.name.toLowerCase() !== 'envoy') {
        rep.warn([...at, 'providers', pi, 'name'], 'unknown-provider',
          `Ambit's only access-log provider is "envoy" (JSON lines on the proxy's stderr); "${p.name}" writes nothing, and naming only it here turns the envoy log off at this level`);
      }
    });
    const expr = a.filter?.expression;
    if (expr !== undefined) {
      try {
        parseLogFilter(expr);
      } catch (e: unknown) {
        if (!(e instanceof LogFilterSyntaxError)) throw e;
        rep.error([...at, 'filter', 'expression'], 'bad-expression', `${e.message} (e.g. "response.code >= 400")`);
      }
    }
  });
}

function checkAuthorizationPolicy(p: AuthorizationPolicyResource, rep: Reporter): void {
  const spec = p.spec ?? {};
  const action = spec.action ?? 'ALLOW';
  checkPolicyTargets(p, rep);
  if (action === 'CUSTOM' && !spec.provider) rep.error(['spec', 'provider'], 'missing-field', 'a CUSTOM policy needs a provider');
  if (action !== 'CUSTOM' && spec.provider) rep.error(['spec', 'provider'], 'conflict', 'provider is only valid with action CUSTOM');
  if (spec.rules === undefined && action === 'DENY') {
    rep.warn(['spec'], 'matches-nothing', 'a DENY policy without rules denies nothing');
  }
  (spec.rules ?? []).forEach((rule, ri) => {
    const at: PathSegment[] = ['spec', 'rules', ri];
    if (rule === null || typeof rule !== 'object') return;
    (rule.from ?? []).forEach((f, fi) => {
      const s = f.source;
      const sat: PathSegment[] = [...at, 'from', fi, 'source'];
      if (Object.keys(s).length === 0) rep.error(sat, 'empty', 'a source must set at least one field');
      checkPrincipals(s.principals, [...sat, 'principals'], rep);
      checkPrincipals(s.notPrincipals, [...sat, 'notPrincipals'], rep);
      checkStringMatchList(s.requestPrincipals, [...sat, 'requestPrincipals'], 'request principal', rep);
      checkStringMatchList(s.notRequestPrincipals, [...sat, 'notRequestPrincipals'], 'request principal', rep);
      checkStringMatchList(s.namespaces, [...sat, 'namespaces'], 'namespace', rep);
      checkStringMatchList(s.notNamespaces, [...sat, 'notNamespaces'], 'namespace', rep);
      for (const k of ['serviceAccounts', 'notServiceAccounts'] as const) {
        (s[k] ?? []).forEach((v, i) => {
          if (!/^([a-z0-9]([-a-z0-9]*[a-z0-9])?\/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(v)) {
            rep.error([...sat, k, i], 'bad-value', `"${v}" is not a service account; use <namespace>/<name>, or <name> for this policy's namespace`);
          }
        });
      }
      if ((s.serviceAccounts || s.notServiceAccounts) && (s.principals || s.notPrincipals)) {
        rep.error([...sat, 'serviceAccounts'], 'conflict', 'serviceAccounts and principals cannot be set in the same source');
      }
      checkIpBlocks(s.ipBlocks, [...sat, 'ipBlocks'], rep);
      checkIpBlocks(s.notIpBlocks, [...sat, 'notIpBlocks'], rep);
      checkIpBlocks(s.remoteIpBlocks, [...sat, 'remoteIpBlocks'], rep);
      checkIpBlocks(s.notRemoteIpBlocks, [...sat, 'notRemoteIpBlocks'], rep);
    });
    (rule.to ?? []).forEach((t, ti) => {
      const o = t.operation;
      const oat: PathSegment[] = [...at, 'to', ti, 'operation'];
      if (Object.keys(o).length === 0) rep.error(oat, 'empty', 'an operation must set at least one field');
      checkPortStrings(o.ports, [...oat, 'ports'], rep);
      checkPortStrings(o.notPorts, [...oat, 'notPorts'], rep);
      for (const k of ['methods', 'notMethods'] as const) {
        (o[k] ?? []).forEach((m, i) => {
          if (!HTTP_METHOD.test(m)) {
            rep.error([...oat, k, i], 'bad-method', /^[a-z]+$/.test(m)
              ? `"${m}" never matches: HTTP methods are upper case; write "${m.toUpperCase()}"`
              : `"${m}" is not an HTTP method`);
          }
        });
      }
      for (const k of ['paths', 'notPaths'] as const) {
        checkStringMatchList(o[k], [...oat, k], 'path', rep);
        (o[k] ?? []).forEach((v, i) => {
          if (v !== '*' && !v.startsWith('/') && !v.startsWith('*')) rep.error([...oat, k, i], 'bad-path', `"${v}" is not a path; paths start with "/" (or "*" for a suffix match)`);
        });
      }
      checkStringMatchList(o.hosts, [...oat, 'hosts'], 'host', rep);
      checkStringMatchList(o.notHosts, [...oat, 'notHosts'], 'host', rep);
    });
    (rule.when ?? []).forEach((c, ci) => {
      const cat: PathSegment[] = [...at, 'when', ci];
      const known = WHEN_KEYS_L4.includes(c.key) || WHEN_KEYS_L7_EXACT.includes(c.key) || WHEN_KEY_L7_PATTERN.test(c.key);
      if (!known) {
        rep.error([...cat, 'key'], 'unknown-key', `"${c.key}" is not a condition key; known: ${[...WHEN_KEYS_L4, ...WHEN_KEYS_L7_EXACT, 'request.headers[<name>]', 'request.auth.claims[<name>]'].join(', ')}`);
      }
      if (!c.values?.length && !c.notValues?.length) rep.error(cat, 'missing-field', 'a condition needs values or notValues');
      if (c.key === 'source.ip' || c.key === 'destination.ip' || c.key === 'remote.ip') {
        checkIpBlocks(c.values, [...cat, 'values'], rep);
        checkIpBlocks(c.notValues, [...cat, 'notValues'], rep);
      }
      if (c.key === 'destination.port') {
        checkPortStrings(c.values, [...cat, 'values'], rep);
        checkPortStrings(c.notValues, [...cat, 'notValues'], rep);
      }
      if (c.key === 'source.principal') {
        checkPrincipals(c.values, [...cat, 'values'], rep);
        checkPrincipals(c.notValues, [...cat, 'notValues'], rep);
      }
    });
  });
}

function checkPeerAuthentication(p: PeerAuthenticationResource, rep: Reporter): void {
  const ports = p.spec?.portLevelMtls;
  if (ports && Object.keys(ports).length > 0 && !p.spec.selector) {
    rep.error(['spec', 'portLevelMtls'], 'conflict', 'portLevelMtls needs a selector (a namespace- or mesh-wide policy cannot set per-port modes)');
  }
  for (const k of Object.keys(ports ?? {})) {
    if (!/^\d{1,5}$/.test(k) || Number(k) < 1 || Number(k) > 65535) rep.error(['spec', 'portLevelMtls', k], 'bad-port', `"${k}" is not a port number (1..65535)`);
  }
  if (p.spec?.mtls?.mode === 'DISABLE') {
    rep.warn(['spec', 'mtls', 'mode'], 'disable-is-permissive', 'DISABLE is treated as PERMISSIVE: meshed clients still use mTLS, plaintext is accepted');
  }
}

function checkRequestAuthentication(r: RequestAuthenticationResource, rep: Reporter): void {
  const spec = r.spec ?? {};
  if (spec.selector && (spec.targetRef || spec.targetRefs)) rep.error(['spec', 'selector'], 'conflict', 'set either selector or targetRefs, not both');
  (spec.jwtRules ?? []).forEach((rule, i) => {
    const at: PathSegment[] = ['spec', 'jwtRules', i];
    const uri = rule.jwksUri ?? (rule as { jwks_uri?: string }).jwks_uri;
    if (rule.jwks && uri) rep.error([...at, 'jwks'], 'conflict', 'set jwks or jwksUri, not both');
    if (!rule.jwks && !uri) rep.error(at, 'missing-field', 'a JWT rule needs jwks (inline JSON) or jwksUri (file:///path)');
    if (rule.jwks) {
      try {
        const parsed: unknown = JSON.parse(rule.jwks);
        if (!parsed || typeof parsed !== 'object' || !Array.isArray((parsed as { keys?: unknown }).keys)) {
          rep.error([...at, 'jwks'], 'bad-jwks', 'jwks must be a JSON Web Key Set: {"keys": [...]}');
        }
      } catch {
        rep.error([...at, 'jwks'], 'bad-jwks', 'jwks is not valid JSON');
      }
    }
    if (uri && !uri.startsWith('file://')) {
      rep.error([...at, 'jwksUri'], 'unsupported', `"${uri}": Ambit reads JWKS only inline (jwks) or from a local file (file:///path); fetching keys over the network is not supported`);
    }
  });
}

function checkGateway(g: GatewayResource, rep: Reporter): void {
  if (g.spec.gatewayClassName === INGRESS_CLASS) {
    checkIngressGateway(g, rep);
    return;
  }
  if (g.spec.gatewayClassName !== 'istio-waypoint') {
    rep.warn(['spec', 'gatewayClassName'], 'unknown-gateway-class', `unknown gateway class "${g.spec.gatewayClassName}": Ambit runs ${KNOWN_CLASSES.map((c) => `"${c}"`).join(' (waypoints) and ')} (ingress gateways); this Gateway is ignored`);
    return;
  }
  const mesh = g.spec.listeners.find((l) => l.protocol === 'HBONE');
  if (!mesh) {
    rep.error(['spec', 'listeners'], 'missing-listener', 'a waypoint needs the listener {name: mesh, port: 15008, protocol: HBONE}');
  } else if (mesh.port !== HBONE_PORT) {
    rep.error(['spec', 'listeners', g.spec.listeners.indexOf(mesh), 'port'], 'bad-port', `the HBONE listener must use port 15008, not ${mesh.port}`);
  }
  const replicas = g.metadata.annotations?.['ambit.dev/replicas'];
  if (replicas !== undefined && (!/^\d+$/.test(replicas) || Number(replicas) < 1 || Number(replicas) > 20)) {
    rep.error(['metadata', 'annotations', 'ambit.dev/replicas'], 'bad-value', `"${replicas}" is not a replica count (1..20)`);
  }
}

const DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;

export function parseGatewayDuration(s: string): number | undefined {
  if (!DURATION.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/([0-9]+)(h|ms|m|s)/g)) {
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3_600_000 : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n;
  }
  return total;
}

function checkHTTPRoute(r: HTTPRouteResource, rep: Reporter): void {
  if (!r.spec.parentRefs?.length) rep.warn(['spec', 'parentRefs'], 'no-parent', 'a route without parentRefs is attached to nothing');
  (r.spec.parentRefs ?? []).forEach((ref, i) => {
    const kind = ref.kind ?? 'Gateway';
    if (!['Service', 'Gateway', 'ServiceEntry'].includes(kind)) {
      rep.error(['spec', 'parentRefs', i, 'kind'], 'bad-value', `"${kind}" cannot be a route parent; use Service (GAMMA) or Gateway`);
    }
    // A parentRef's group defaults to gateway.networking.k8s.io, so {kind: Service} without
    // group "" names no real kind; Istio ignores such a parent, and so does Ambit.
    if (kind === 'Service' && ref.group !== '' && ref.group !== 'core') {
      rep.warn(['spec', 'parentRefs', i], 'parent-group', `a Service parent needs group: "" (core); without it the group defaults to gateway.networking.k8s.io and the route attaches to nothing`);
    }
  });
  (r.spec.rules ?? []).forEach((rule, ri) => {
    const at: PathSegment[] = ['spec', 'rules', ri];
    (rule.matches ?? []).forEach((m, mi) => {
      const path = m.path;
      if (path?.value !== undefined) {
        const t = path.type ?? 'PathPrefix';
        if (t !== 'RegularExpression' && !path.value.startsWith('/')) rep.error([...at, 'matches', mi, 'path', 'value'], 'bad-path', `"${path.value}" must start with "/"`);
        if (t === 'RegularExpression') checkRegex(path.value, [...at, 'matches', mi, 'path', 'value'], rep);
      }
      for (const k of ['headers', 'queryParams'] as const) {
        (m[k] ?? []).forEach((h, hi) => {
          if (h.type === 'RegularExpression') checkRegex(h.value, [...at, 'matches', mi, k, hi, 'value'], rep);
        });
      }
    });
    (rule.filters ?? []).forEach((f, fi) => checkFilter(f, [...at, 'filters', fi], rep));
    // "ReplacePrefixMatch is only compatible with a PathPrefix HTTPRouteMatch" (Gateway API).
    (rule.filters ?? []).forEach((f, fi) => {
      const pm = f.urlRewrite?.path ?? f.requestRedirect?.path;
      if (pm?.type !== 'ReplacePrefixMatch') return;
      const bad = (rule.matches ?? []).findIndex((m) => (m.path?.type ?? 'PathPrefix') !== 'PathPrefix');
      if (bad >= 0) rep.error([...at, 'filters', fi], 'conflict', `ReplacePrefixMatch needs PathPrefix matches, but matches[${bad}] is ${rule.matches![bad]!.path!.type}`);
    });
    if ((rule.filters ?? []).some((f) => f.type === 'RequestRedirect') && rule.backendRefs?.length) {
      rep.warn([...at, 'backendRefs'], 'ignored', 'a rule with a RequestRedirect filter redirects; its backendRefs are not used');
    }
    (rule.backendRefs ?? []).forEach((b, bi) => {
      const hostnameBackend = b.kind === 'Hostname' && b.group === 'networking.istio.io';
      if ((b.kind ?? 'Service') !== 'Service' && !hostnameBackend) rep.error([...at, 'backendRefs', bi, 'kind'], 'bad-value', `backends must be Services (or Hostname, group networking.istio.io: a ServiceEntry host), not ${b.kind}`);
      if (b.port === undefined && !hostnameBackend) rep.error([...at, 'backendRefs', bi], 'missing-field', 'a Service backend needs a port');
      (b.filters ?? []).forEach((f, fi) => checkFilter(f, [...at, 'backendRefs', bi, 'filters', fi], rep));
    });
    const weights = (rule.backendRefs ?? []).map((b) => b.weight ?? 1);
    if (weights.length > 0 && weights.every((w) => w === 0)) rep.warn([...at, 'backendRefs'], 'zero-weights', 'every backend has weight 0: requests get 500');
    const t = rule.timeouts;
    let requestMs: number | undefined;
    if (t?.request !== undefined) {
      requestMs = parseGatewayDuration(t.request);
      if (requestMs === undefined) rep.error([...at, 'timeouts', 'request'], 'bad-duration', `"${t.request}" is not a duration (e.g. 500ms, 10s, 1m)`);
    }
    if (t?.backendRequest !== undefined) {
      const b = parseGatewayDuration(t.backendRequest);
      if (b === undefined) rep.error([...at, 'timeouts', 'backendRequest'], 'bad-duration', `"${t.backendRequest}" is not a duration (e.g. 500ms, 10s, 1m)`);
      else if (requestMs !== undefined && requestMs > 0 && b > requestMs) rep.error([...at, 'timeouts', 'backendRequest'], 'bad-duration', 'backendRequest must not be longer than request');
    }
    if (rule.retry?.backoff !== undefined && parseGatewayDuration(rule.retry.backoff) === undefined) {
      rep.error([...at, 'retry', 'backoff'], 'bad-duration', `"${rule.retry.backoff}" is not a duration (e.g. 100ms)`);
    }
  });
}

function checkFilter(f: HTTPRouteFilter, at: PathSegment[], rep: Reporter): void {
  const field = f.type.charAt(0).toLowerCase() + f.type.slice(1);
  const key = (f.type === 'URLRewrite' ? 'urlRewrite' : field) as keyof HTTPRouteFilter;
  if (f.type !== 'ExtensionRef' && f[key] === undefined) rep.error(at, 'missing-field', `a ${f.type} filter needs the field "${String(key)}"`);
  if (f.type === 'ExtensionRef') rep.error([...at, 'type'], 'unsupported', 'ExtensionRef filters are not supported');
  const code = f.requestRedirect?.statusCode;
  if (code !== undefined && ![301, 302, 303, 307, 308].includes(code)) rep.error([...at, 'requestRedirect', 'statusCode'], 'bad-value', `${code} is not a redirect status (301, 302, 303, 307, 308)`);
  for (const m of [f.requestRedirect?.path, f.urlRewrite?.path]) {
    if (m && m.type === 'ReplaceFullPath' && m.replaceFullPath === undefined) rep.error(at, 'missing-field', 'ReplaceFullPath needs replaceFullPath');
    if (m && m.type === 'ReplacePrefixMatch' && m.replacePrefixMatch === undefined) rep.error(at, 'missing-field', 'ReplacePrefixMatch needs replacePrefixMatch');
  }
}

function checkRegex(src: string, at: PathSegment[], rep: Reporter): void {
  const problem = regexProblem(src);
  if (problem !== undefined) rep.error(at, 'bad-regex', `not a valid RE2 regular expression (the proxies run RE2, as Envoy does): ${problem}`);
}
