// The one config validator. `ambit validate`, `ambit apply` (through the control plane),
// the file watcher and xDS NACK messages all go through here, so the words are the same.
//
// Pipeline: documents -> per-document checks (kind, apiVersion, shape, semantics) ->
// located resources -> set-wide checks (duplicates, dangling references). Every problem
// is reported; nothing stops at the first.
import { ConfigSet, resourceKey } from './config-set.js';
import { formatPath, type Diagnostic, type PathSegment } from './diagnostics.js';
import { KINDS, kindInfo } from './kinds.js';
import { LABEL_USE_WAYPOINT, LABEL_USE_WAYPOINT_NAMESPACE, WAYPOINT_CLASS } from './labels.js';
import { creationAge, resourceRef, type Located, type Resource } from './resources.js';
import { checkSchema, isPlainObject } from './schema.js';
import { parseSource, readSources, type RawDocument, type SourceText } from './source.js';
import { checkResource } from './validate-resource.js';
import { checkVirtualServiceSet } from './validate-virtual-service-set.js';
import { checkEgressSet } from './validate-egress-set.js';
import { checkIngressSet } from './validate-ingress-set.js';
import { byCodeUnits } from '../core/compare.js';

export interface ValidationResult {
  /** The resources that passed their own checks (set-wide errors may still exist). */
  resources: Located[];
  diagnostics: Diagnostic[];
}

/** Check documents one by one; returns the good resources and every diagnostic. */
export function validateDocuments(documents: readonly RawDocument[]): ValidationResult {
  const resources: Located[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const doc of documents) {
    for (const item of expandLists(doc, diagnostics)) {
      const r = validateOne(item.doc, item.value, item.prefix, diagnostics);
      if (r) resources.push(r);
    }
  }
  return { resources, diagnostics };
}

/** A `kind: List` (as `kubectl get -o yaml` prints) holds resources in `items`. */
function expandLists(doc: RawDocument, diagnostics: Diagnostic[]): { doc: RawDocument; value: unknown; prefix: PathSegment[] }[] {
  const v = doc.value;
  if (isPlainObject(v) && v.kind === 'List') {
    if (!Array.isArray(v.items)) {
      diagnostics.push({ severity: 'error', code: 'wrong-type', file: doc.file, line: doc.line, path: 'items', message: 'a List needs items: [...]' });
      return [];
    }
    return v.items.map((value, i) => ({ doc, value, prefix: ['items', i] }));
  }
  return [{ doc, value: v, prefix: [] }];
}

function validateOne(doc: RawDocument, value: unknown, prefix: PathSegment[], diagnostics: Diagnostic[]): Located | undefined {
  const at = (path: PathSegment[], atKey = false) => doc.locate([...prefix, ...path], atKey);
  const push = (severity: 'error' | 'warning', code: string, path: PathSegment[], message: string, resource?: string, atKey = false, line?: number) => {
    const loc = line === undefined ? at(path, atKey) : { line, column: undefined };
    diagnostics.push({ severity, code, file: doc.file, line: loc.line, column: loc.column, resource, path: formatPath(path) || undefined, message });
  };
  if (!isPlainObject(value)) {
    push('error', 'not-a-resource', [], `expected a Kubernetes resource (apiVersion, kind, metadata, spec), got ${Array.isArray(value) ? 'a list' : typeof value}`);
    return undefined;
  }
  const kind = value.kind;
  const apiVersion = value.apiVersion;
  const meta = isPlainObject(value.metadata) ? value.metadata : {};
  const ns = typeof meta.namespace === 'string' ? meta.namespace : 'default';
  const name = typeof meta.name === 'string' ? meta.name : '<unnamed>';
  const ref = typeof kind === 'string' ? (kind === 'Namespace' ? `${kind} ${name}` : `${kind} ${ns}/${name}`) : undefined;
  if (typeof kind !== 'string') {
    push('error', 'missing-field', ['kind'], 'missing "kind"', ref);
    return undefined;
  }
  const info = kindInfo(kind);
  if (!info) {
    push('error', 'unknown-kind', ['kind'], `Ambit does not read kind "${kind}"${typeof apiVersion === 'string' ? ` (${apiVersion})` : ''}; it reads ${KINDS.map((k) => k.kind).join(', ')}`, ref);
    return undefined;
  }
  let bad = false;
  if (typeof apiVersion !== 'string' || !info.apiVersions.includes(apiVersion)) {
    push('error', 'bad-api-version', ['apiVersion'], `${kind} needs apiVersion ${info.apiVersions.join(' or ')}${typeof apiVersion === 'string' ? `, not "${apiVersion}"` : ''}`, ref);
    bad = true;
  }
  for (const issue of checkSchema(value, info.schema)) {
    push('error', issue.code, issue.path, issue.message, ref, issue.atKey);
    bad = true;
  }
  if (!info.namespaced && meta.namespace !== undefined) {
    push('error', 'bad-value', ['metadata', 'namespace'], `a ${kind} is not namespaced; remove metadata.namespace`, ref);
    bad = true;
  }
  const resource = normalize(value as unknown as Resource, info.namespaced);
  let semanticError = false;
  try {
    checkResource(resource, {
      error: (path, code, message, line) => { semanticError = true; push('error', code, path, message, ref, false, line); },
      warn: (path, code, message, line) => { if (!bad) push('warning', code, path, message, ref, false, line); },
      contentLine: (path) => doc.contentLine?.([...prefix, ...path]),
    });
  } catch (e: unknown) {
    // The semantic checks assume the shape is right; when it is not, what they found
    // before stumbling is still worth reporting, and the shape errors say the rest.
    if (!bad) throw e;
  }
  if (bad || semanticError) return undefined;
  return { resource, source: { file: doc.file, line: at([]).line, lineOf: (path) => at([...path]).line } };
}

function normalize(r: Resource, namespaced: boolean): Resource {
  const metadata = { ...r.metadata };
  if (namespaced && !metadata.namespace) metadata.namespace = 'default';
  const spec = (r as { spec?: unknown }).spec ?? {};
  return { ...r, metadata, spec } as Resource;
}

/** Checks that need the whole set: duplicates and references between resources. */
export function validateSet(set: ConfigSet, added: readonly Located[] = []): Diagnostic[] {
  const out: Diagnostic[] = [];
  const diag = (l: Located, severity: 'error' | 'warning', code: string, path: string, message: string) =>
    out.push({ severity, code, file: l.source.file, line: l.source.line, resource: resourceRef(l.resource), path, message });

  const gateways = new Set(set.ofKind('Gateway').filter((g) => g.spec.gatewayClassName === WAYPOINT_CLASS)
    .map((g) => `${g.metadata.namespace}/${g.metadata.name}`));
  const services = new Set(set.ofKind('Service').map((s) => `${s.metadata.namespace}/${s.metadata.name}`));

  for (const l of set.all()) {
    const r = l.resource;
    const labels = r.metadata.labels ?? {};
    const wp = labels[LABEL_USE_WAYPOINT];
    if (wp && wp !== 'none') {
      const wpNs = labels[LABEL_USE_WAYPOINT_NAMESPACE] ?? (r.kind === 'Namespace' ? r.metadata.name : r.metadata.namespace ?? 'default');
      if (!gateways.has(`${wpNs}/${wp}`)) {
        diag(l, 'error', 'dangling-reference', `metadata.labels["${LABEL_USE_WAYPOINT}"]`,
          `waypoint "${wpNs}/${wp}" does not exist; declare a Gateway "${wp}" of class ${WAYPOINT_CLASS} in namespace ${wpNs} (e.g. 'ambit waypoint apply -n ${wpNs}'), or remove the label`);
      }
    }
    if (r.kind === 'AuthorizationPolicy' || r.kind === 'RequestAuthentication' || r.kind === 'Telemetry') {
      const refs = r.spec.targetRefs ?? (r.spec.targetRef ? [r.spec.targetRef] : []);
      refs.forEach((t, i) => {
        const key = `${r.metadata.namespace}/${t.name}`;
        const path = r.spec.targetRefs ? `spec.targetRefs[${i}]` : 'spec.targetRef';
        if (t.kind === 'Gateway' && !gateways.has(key)) diag(l, 'warning', 'dangling-reference', path, `waypoint Gateway "${key}" does not exist; this policy applies to nothing until it does`);
        if (t.kind === 'Service' && !services.has(key)) diag(l, 'warning', 'dangling-reference', path, `Service "${key}" does not exist; this policy applies to nothing until it does`);
      });
    }
    if (r.kind === 'HTTPRoute') {
      (r.spec.parentRefs ?? []).forEach((p, i) => {
        const key = `${p.namespace ?? r.metadata.namespace}/${p.name}`;
        if ((p.kind ?? 'Gateway') === 'Service' && !services.has(key)) diag(l, 'warning', 'dangling-reference', `spec.parentRefs[${i}]`, `Service "${key}" does not exist; the route is attached to nothing`);
      });
      (r.spec.rules ?? []).forEach((rule, ri) => (rule.backendRefs ?? []).forEach((b, bi) => {
        if (b.kind === 'Hostname') return;
        const key = `${b.namespace ?? r.metadata.namespace}/${b.name}`;
        if (!services.has(key)) diag(l, 'warning', 'dangling-reference', `spec.rules[${ri}].backendRefs[${bi}]`, `backend Service "${key}" does not exist; requests routed to it get 500`);
      }));
    }
  }

  out.push(...checkVirtualServiceSet(set));
  out.push(...checkEgressSet(set));
  out.push(...checkIngressSet(set));

  // Of several namespace-wide Telemetry objects in one namespace, Istio applies the oldest.
  const namespaceWide = new Map<string, Located>();
  const telemetries = set.located('Telemetry').filter((l) => !l.resource.spec.selector && !l.resource.spec.targetRef && !l.resource.spec.targetRefs?.length)
    .sort((a, b) => creationAge(a.resource) - creationAge(b.resource) || byCodeUnits(resourceRef(a.resource), resourceRef(b.resource)));
  for (const l of telemetries) {
    const ns = l.resource.metadata.namespace ?? 'default';
    const first = namespaceWide.get(ns);
    if (first) diag(l, 'warning', 'conflict', 'spec', `${resourceRef(first.resource)} (${first.source.file}:${first.source.line}) is already the namespace-wide Telemetry of ${ns}; only the oldest applies, this one is ignored`);
    else namespaceWide.set(ns, l);
  }

  // Pods made from Deployments must not collide with Pods of the same name.
  const podNames = new Map<string, Located>();
  for (const l of set.located('Pod')) podNames.set(`${l.resource.metadata.namespace}/${l.resource.metadata.name}`, l);
  for (const l of set.located('Deployment')) {
    const d = l.resource;
    for (let i = 0; i < (d.spec.replicas ?? 1); i++) {
      const other = podNames.get(`${d.metadata.namespace}/${d.metadata.name}-${i}`);
      if (other) diag(l, 'error', 'duplicate', 'metadata.name', `replica ${i} would be named "${d.metadata.name}-${i}", which Pod at ${other.source.file}:${other.source.line} already uses`);
    }
  }

  // Duplicates within what was added (the set itself keeps only the last of a key).
  const seen = new Map<string, Located>();
  for (const l of added) {
    const key = resourceKey(l.resource);
    const first = seen.get(key);
    if (first) diag(l, 'error', 'duplicate', 'metadata.name', `${resourceRef(l.resource)} is defined twice (first at ${first.source.file}:${first.source.line})`);
    else seen.set(key, l);
  }
  return out;
}

/** Validate texts (already read) into a config set. */
export function validateSources(sources: readonly SourceText[], base: ConfigSet = new ConfigSet()): { set: ConfigSet; added: Located[]; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const documents: RawDocument[] = [];
  for (const src of sources) {
    const parsed = parseSource(src);
    documents.push(...parsed.documents);
    diagnostics.push(...parsed.diagnostics);
  }
  const { resources, diagnostics: docDiags } = validateDocuments(documents);
  diagnostics.push(...docDiags);
  const set = base.upsert(resources);
  diagnostics.push(...validateSet(set, resources));
  return { set, added: resources, diagnostics };
}

/** Read files/directories and validate them. */
export async function loadConfig(paths: readonly string[]): Promise<{ set: ConfigSet; diagnostics: Diagnostic[] }> {
  const { sources, diagnostics } = await readSources(paths);
  const r = validateSources(sources);
  return { set: r.set, diagnostics: [...diagnostics, ...r.diagnostics] };
}
