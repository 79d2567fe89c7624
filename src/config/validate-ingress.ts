// Semantic checks of the ingress kinds, one resource at a time: a Gateway of class `istio`
// (listeners: protocols Ambit serves, HTTPS needs a certificate, hostnames, allowedRoutes),
// ReferenceGrant, GRPCRoute and TCPRoute. Problems carry the JSON path; validate.ts adds
// file and line. References between resources are checked in validate-ingress-set.ts.
import type { PathSegment } from './diagnostics.js';
import type { GatewayResource } from './resources.js';
import { INGRESS_CLASS, type GRPCRouteResource, type ReferenceGrantResource, type TCPRouteResource } from './ingress-resources.js';
import type { Reporter } from './validate-resource.js';
import { fullRegexProblem } from './validate-ingress-regex.js';

/** Gateway classes Ambit runs. */
export const KNOWN_CLASSES = ['istio-waypoint', INGRESS_CLASS];
const ROUTE_KINDS = ['HTTPRoute', 'GRPCRoute', 'TCPRoute'];
const HOSTNAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function checkIngressGateway(g: GatewayResource, rep: Reporter): void {
  const names = new Set<string>();
  const byPort = new Map<number, { protocol: string; hostnames: Set<string> }>();
  g.spec.listeners.forEach((l, i) => {
    const at: PathSegment[] = ['spec', 'listeners', i];
    if (names.has(l.name)) rep.error([...at, 'name'], 'duplicate', `listener "${l.name}" is defined twice`);
    names.add(l.name);
    if (l.hostname !== undefined && !HOSTNAME.test(l.hostname)) rep.error([...at, 'hostname'], 'bad-host', `"${l.hostname}" is not a hostname (a "*." wildcard only as the first label; no IP addresses)`);
    switch (l.protocol) {
      case 'HTTP':
      case 'TCP':
        if (l.tls) rep.warn([...at, 'tls'], 'ignored', `a ${l.protocol} listener terminates no TLS; tls is ignored`);
        break;
      case 'HTTPS': {
        if (l.tls?.mode === 'Passthrough') rep.error([...at, 'tls', 'mode'], 'bad-value', 'an HTTPS listener terminates TLS (mode Terminate); for passthrough use protocol TLS, which Ambit does not serve');
        const refs = l.tls?.certificateRefs ?? [];
        if (refs.length === 0) rep.error([...at, 'tls'], 'missing-certificate', `HTTPS listener "${l.name}" has no certificate: add tls.certificateRefs naming a kubernetes.io/tls Secret`);
        refs.forEach((r, ri) => {
          if ((r.kind ?? 'Secret') !== 'Secret' || (r.group ?? '') !== '') rep.error([...at, 'tls', 'certificateRefs', ri], 'bad-value', `certificate reference ${r.group ?? ''}/${r.kind} ${r.name}: only Secrets (group "", kind Secret) are read`);
        });
        break;
      }
      case 'TLS':
        rep.error([...at, 'protocol'], 'unsupported', 'TLS passthrough listeners are not served by Ambit\'s ingress gateway; use HTTPS (terminated here)');
        break;
      case 'HBONE':
        rep.error([...at, 'protocol'], 'bad-value', `an ingress gateway (class ${INGRESS_CLASS}) has no HBONE listener; that is a waypoint (class istio-waypoint)`);
        break;
      default:
        rep.error([...at, 'protocol'], 'unsupported', `protocol "${l.protocol}" is not served; use HTTP, HTTPS or TCP`);
    }
    const same = byPort.get(l.port);
    const host = l.hostname ?? '*';
    if (same) {
      const compatible = same.protocol === l.protocol || (['HTTP', 'HTTPS'].includes(same.protocol) && same.protocol === l.protocol);
      if (!compatible) rep.error([...at, 'port'], 'conflict', `port ${l.port} is already a ${same.protocol} listener; listeners on one port must share the protocol`);
      else if (same.hostnames.has(host)) rep.error([...at, 'hostname'], 'conflict', `another listener on port ${l.port} has hostname ${host}`);
      else if (l.protocol === 'TCP') rep.error([...at, 'port'], 'conflict', `TCP listeners cannot share port ${l.port} (no hostname to tell them apart)`);
      same.hostnames.add(host);
    } else {
      byPort.set(l.port, { protocol: l.protocol, hostnames: new Set([host]) });
    }
    (l.allowedRoutes?.kinds ?? []).forEach((k, ki) => {
      if (!ROUTE_KINDS.includes(k.kind)) rep.error([...at, 'allowedRoutes', 'kinds', ki, 'kind'], 'bad-value', `"${k.kind}" is not a route kind (${ROUTE_KINDS.join(', ')})`);
    });
    if (l.allowedRoutes?.namespaces?.from === 'Selector' && !l.allowedRoutes.namespaces.selector?.matchLabels) {
      rep.error([...at, 'allowedRoutes', 'namespaces', 'selector'], 'missing-field', 'from: Selector needs selector.matchLabels');
    }
    if (l.allowedRoutes?.namespaces?.selector?.matchExpressions !== undefined) rep.warn([...at, 'allowedRoutes', 'namespaces', 'selector', 'matchExpressions'], 'not-applied', 'matchExpressions are not applied by Ambit; only matchLabels');
  });
  const replicas = g.metadata.annotations?.['ambit.dev/replicas'];
  if (replicas !== undefined && (!/^\d+$/.test(replicas) || Number(replicas) < 1 || Number(replicas) > 20)) {
    rep.error(['metadata', 'annotations', 'ambit.dev/replicas'], 'bad-value', `"${replicas}" is not a replica count (1..20)`);
  }
}

export function checkReferenceGrant(g: ReferenceGrantResource, rep: Reporter): void {
  g.spec.from.forEach((f, i) => {
    if (!ROUTE_KINDS.includes(f.kind) && f.kind !== 'Gateway') rep.warn(['spec', 'from', i, 'kind'], 'not-applied', `references from ${f.kind} are not read by Ambit (routes and Gateways are)`);
  });
  g.spec.to.forEach((t, i) => {
    if (!['Service', 'Secret'].includes(t.kind)) rep.warn(['spec', 'to', i, 'kind'], 'not-applied', `references to ${t.kind} are not read by Ambit (Services and Secrets are)`);
  });
}

export function checkGRPCRoute(r: GRPCRouteResource, rep: Reporter): void {
  (r.spec.rules ?? []).forEach((rule, ri) => {
    (rule.matches ?? []).forEach((m, mi) => {
      const at: PathSegment[] = ['spec', 'rules', ri, 'matches', mi, 'method'];
      const mm = m.method;
      if (!mm) return;
      if (!mm.service && !mm.method) rep.error(at, 'missing-field', 'a method match needs service, method or both');
      if ((mm.type ?? 'Exact') === 'RegularExpression') {
        for (const k of ['service', 'method'] as const) {
          const p = mm[k] !== undefined ? fullRegexProblem(mm[k]!) : undefined;
          if (p) rep.error([...at, k], 'bad-regex', p);
        }
      } else {
        if (mm.service !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(mm.service)) rep.error([...at, 'service'], 'bad-value', `"${mm.service}" is not a gRPC service name (package.Service)`);
        if (mm.method !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(mm.method)) rep.error([...at, 'method'], 'bad-value', `"${mm.method}" is not a gRPC method name`);
      }
    });
    (rule.filters ?? []).forEach((f, fi) => {
      if (f.type === 'RequestMirror' || f.type === 'ExtensionRef') rep.warn(['spec', 'rules', ri, 'filters', fi], 'not-applied', `${f.type} is not applied to gRPC routes by Ambit`);
    });
  });
}

export function checkTCPRoute(r: TCPRouteResource, rep: Reporter): void {
  (r.spec.rules ?? []).forEach((rule, ri) => {
    if ((rule.backendRefs ?? []).every((b) => (b.weight ?? 1) === 0)) rep.warn(['spec', 'rules', ri, 'backendRefs'], 'no-backends', 'every backend has weight 0: connections are refused');
  });
  if ((r.spec.rules?.length ?? 0) > 1) rep.warn(['spec', 'rules'], 'ignored', 'a TCPRoute has no matches: only its first rule is used');
}
