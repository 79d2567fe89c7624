// ServiceEntries -> registry entries (one per host), as Istio's control plane builds them for
// the workload API:
// - each host is a Service named after the ServiceEntry (namespace/name), hostname = the host;
// - its VIP is the first single-IP address of spec.addresses; without addresses a host is given
//   one from Istio's auto-allocation range 240.240.0.0/16, unless it is a wildcard, resolution
//   is NONE (Istio's original rule: nothing would resolve it), or the ServiceEntry opts out with
//   `networking.istio.io/enable-autoallocate-ip: "false"` (label or annotation);
// - inline endpoints become endpoint workloads (IP, or a host name for resolution DNS); with
//   resolution DNS and no endpoints each host resolves itself; a workloadSelector makes the pods
//   it picks (in the ServiceEntry's namespace) endpoints;
// - `istio.io/use-waypoint` on the ServiceEntry (else on its namespace) binds it to a waypoint,
//   as for a Service.
//
// Invariants:
// - Allocation is sticky: with `previous`, a host keeps its VIP while it exists, and is
//   deterministic otherwise (hosts allocated in namespace/name/host order, lowest free first).
// - One entry per namespace/host: of two ServiceEntries with the same host in one namespace,
//   the oldest wins (a warning names the other); a host that is also a Kubernetes Service's
//   hostname is left to the Service (Istio treats such an entry as a decorator).
import type { Diagnostic } from '../config/diagnostics.js';
import type { ServiceEntryResource } from '../config/egress-resources.js';
import { creationAge, resourceRef, type Located } from '../config/resources.js';
import { byCodeUnits } from '../core/compare.js';
import { cidrSize, nthAddress, parseCidr, parseIp } from '../core/ip.js';
import type { ServiceEntryInfo, WaypointRef } from './types.js';

export const AUTO_ALLOCATE_CIDR = '240.240.0.0/16';
export const ANNOTATION_AUTOALLOCATE = 'networking.istio.io/enable-autoallocate-ip';

export interface ServiceEntryBuildInput {
  entries: readonly Located<ServiceEntryResource>[];
  /** Hostnames of Kubernetes Services (they win over ServiceEntry hosts). */
  serviceHostnames: ReadonlySet<string>;
  /** VIPs already taken by Services. */
  takenVips: ReadonlySet<string>;
  /** The waypoint binding of a labelled object in a namespace (Service rules). */
  binding(labels: Record<string, string>, namespace: string): WaypointRef | undefined;
  /** Pods picked by a selector in a namespace: uids. */
  select(namespace: string, selector: Record<string, string>): string[];
  previous?: (namespace: string, host: string) => ServiceEntryInfo | undefined;
}

export function buildServiceEntries(input: ServiceEntryBuildInput): { entries: ServiceEntryInfo[]; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const out: ServiceEntryInfo[] = [];
  const byKey = new Map<string, Located<ServiceEntryResource>>();
  const ordered = [...input.entries].sort((a, b) => creationAge(a.resource) - creationAge(b.resource) || byCodeUnits(resourceRef(a.resource), resourceRef(b.resource)));
  for (const l of ordered) {
    const se = l.resource;
    const ns = se.metadata.namespace ?? 'default';
    const spec = se.spec;
    const single = (spec.addresses ?? []).filter((a) => parseIp(a) !== undefined || /\/(32|128)$/.test(a)).map((a) => a.replace(/\/(32|128)$/, ''));
    const cidrs = (spec.addresses ?? []).filter((a) => parseIp(a) === undefined && !/\/(32|128)$/.test(a));
    const resolution = spec.resolution ?? 'NONE';
    const optOut = se.metadata.labels?.[ANNOTATION_AUTOALLOCATE] === 'false' || se.metadata.annotations?.[ANNOTATION_AUTOALLOCATE] === 'false';
    const ports = (spec.ports ?? []).map((p) => ({ name: p.name, port: p.number, targetPort: p.targetPort ?? p.number, protocol: (p.protocol ?? 'TCP').toUpperCase() }));
    const labels = se.metadata.labels ?? {};
    const selector = spec.workloadSelector?.labels;
    spec.hosts.forEach((host, hi) => {
      const key = `${ns}/${host}`;
      const at = (path: (string | number)[]) => l.source.lineOf?.(path) ?? l.source.line;
      if (input.serviceHostnames.has(host)) {
        diagnostics.push({ severity: 'warning', code: 'conflict', file: l.source.file, line: at(['spec', 'hosts', hi]), resource: resourceRef(se), path: `spec.hosts[${hi}]`,
          message: `host "${host}" is a Kubernetes Service's hostname; the Service's registry entry is used and this host is ignored` });
        return;
      }
      const first = byKey.get(key);
      if (first) {
        diagnostics.push({ severity: 'warning', code: 'conflict', file: l.source.file, line: at(['spec', 'hosts', hi]), resource: resourceRef(se), path: `spec.hosts[${hi}]`,
          message: `host "${host}" is already declared in ${ns} by ${resourceRef(first.resource)} (${first.source.file}:${first.source.line}); the oldest wins, this one is ignored for it` });
        return;
      }
      byKey.set(key, l);
      const endpoints = (spec.endpoints ?? []).map((e) => ({
        ...(e.address && parseIp(e.address) ? { address: e.address } : { hostname: e.address }),
        ports: e.ports ?? {}, labels: e.labels ?? {}, serviceAccount: e.serviceAccount,
      }));
      // Resolution DNS without endpoints: the host resolves itself.
      if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && endpoints.length === 0 && !selector && !host.startsWith('*')) {
        endpoints.push({ hostname: host, ports: {}, labels: {}, serviceAccount: undefined });
      }
      const wantsAuto = single.length === 0 && !host.startsWith('*') && resolution !== 'NONE' && !optOut;
      out.push({
        namespace: ns, name: se.metadata.name, host, vip: single[0] ?? (wantsAuto ? '' : undefined), autoAllocated: wantsAuto,
        cidrs, ports, resolution, location: spec.location ?? 'MESH_EXTERNAL',
        exportTo: normalizeExportTo(spec.exportTo, ns), labels, selector,
        endpoints, selectedWorkloads: selector && Object.keys(selector).length ? input.select(ns, selector) : [],
        subjectAltNames: spec.subjectAltNames ?? [], waypoint: input.binding(labels, ns), source: l.source,
      });
    });
  }
  allocate(out, input, diagnostics);
  return { entries: out, diagnostics };
}

/** exportTo as the namespaces that see the entry: ['*'] for everyone (the default). */
export function normalizeExportTo(values: readonly string[] | undefined, ownNamespace: string): string[] {
  if (!values || values.length === 0 || values.includes('*')) return ['*'];
  if (values.includes('~')) return [];
  return [...new Set(values.map((v) => (v === '.' ? ownNamespace : v)))].sort(byCodeUnits);
}

export function visibleIn(entry: { exportTo: readonly string[] }, namespace: string): boolean {
  return entry.exportTo.includes('*') || entry.exportTo.includes(namespace);
}

function allocate(entries: ServiceEntryInfo[], input: ServiceEntryBuildInput, diagnostics: Diagnostic[]): void {
  const cidr = parseCidr(AUTO_ALLOCATE_CIDR)!;
  const taken = new Set<string>([...input.takenVips, ...entries.map((e) => e.vip).filter((v): v is string => !!v)]);
  const pending = entries.filter((e) => e.vip === '');
  for (const e of pending) {
    const before = input.previous?.(e.namespace, e.host);
    if (before?.autoAllocated && before.vip && !taken.has(before.vip)) {
      e.vip = before.vip;
      taken.add(before.vip);
    }
  }
  let n = 1;
  const last = cidrSize(cidr) - 1;
  for (const e of pending.filter((x) => x.vip === '').sort((a, b) => byCodeUnits(`${a.namespace}/${a.name}/${a.host}`, `${b.namespace}/${b.name}/${b.host}`))) {
    while (n < last && taken.has(nthAddress(cidr, n))) n++;
    if (n >= last) {
      diagnostics.push({ severity: 'error', code: 'no-ip', file: e.source?.file ?? '', line: e.source?.line ?? 0, resource: `ServiceEntry ${e.namespace}/${e.name}`, message: `no free address left in ${AUTO_ALLOCATE_CIDR} for host ${e.host}` });
      e.vip = undefined;
      continue;
    }
    e.vip = nthAddress(cidr, n);
    taken.add(e.vip);
  }
}
