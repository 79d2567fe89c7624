// The control plane's source of truth: the config it serves, from two layers —
// files/directories it watches, and what operators apply through the admin API (which wins
// on conflict). Every change is validated as a whole with the same checker as `ambit
// validate`; an invalid change is refused with every diagnostic and nothing changes, so the
// last good config keeps serving.
import { EventEmitter } from 'node:events';
import { ConfigSet, resourceKey } from '../config/config-set.js';
import { errorsOf, type Diagnostic } from '../config/diagnostics.js';
import type { Located, Resource } from '../config/resources.js';
import type { SourceText } from '../config/source.js';
import { validateDocuments, validateSet } from '../config/validate.js';
import { parseSource } from '../config/source.js';
import type { Logger } from '../core/logger.js';
import type { BuildOptions } from '../model/build-model.js';
import type { MeshModel } from '../model/mesh-model.js';
import { checkChange } from './check-mesh.js';
import type { WorkloadApi } from './translate.js';

export interface ConfigSnapshot {
  version: number;
  set: ConfigSet;
  model: MeshModel;
  api: WorkloadApi;
  warnings: Diagnostic[];
  /** The model's own diagnostics, reused when a change keeps the model. */
  modelDiagnostics: Diagnostic[];
}

export interface ChangeResult {
  ok: boolean;
  /** Errors (when refused) and warnings. */
  diagnostics: Diagnostic[];
  /** Resource keys added, changed or removed. */
  changed: string[];
  version: number;
}

export class ConfigStore extends EventEmitter<{ change: [ConfigSnapshot, string[]] }> {
  private files = new ConfigSet();
  private applied = new ConfigSet();
  private snap: ConfigSnapshot;
  private endpointIps: BuildOptions['serviceEndpointIps'];
  /** The endpoint IPs the current snapshot was built with. */
  private snapEndpointIps: BuildOptions['serviceEndpointIps'];

  constructor(private readonly options: BuildOptions & { logger: Logger }) {
    super();
    const initial = this.check(new ConfigSet(), [], []);
    if (!initial.model || !initial.api) throw new Error('an empty config must be valid');
    this.snap = { version: 0, set: initial.set, model: initial.model, api: initial.api, warnings: [], modelDiagnostics: initial.modelDiagnostics ?? [] };
  }

  current(): ConfigSnapshot {
    return this.snap;
  }

  /** Replace the file layer (the watcher re-reads everything it watches). */
  setFiles(sources: readonly SourceText[]): ChangeResult {
    const parsed = parseAll(sources);
    if (errorsOf(parsed.diagnostics).length) return this.refused(parsed.diagnostics);
    return this.commit(new ConfigSet(parsed.resources), this.applied, parsed.resources, parsed.diagnostics);
  }

  /**
   * Replace the file layer with resources already validated one by one (the Kubernetes source
   * plays the files' part). The set is still checked as a whole and refused when it fails.
   */
  setResources(resources: readonly Located[], extra: { serviceEndpointIps?: BuildOptions['serviceEndpointIps']; force?: boolean } = {}): ChangeResult {
    const before = this.endpointIps;
    this.endpointIps = extra.serviceEndpointIps;
    const r = this.commit(new ConfigSet(resources), this.applied, resources, [], [], extra.force);
    if (!r.ok) this.endpointIps = before;
    return r;
  }

  /** Add or replace resources (as `kubectl apply`). */
  apply(sources: readonly SourceText[]): ChangeResult {
    const parsed = parseAll(sources);
    if (errorsOf(parsed.diagnostics).length) return this.refused(parsed.diagnostics);
    if (parsed.resources.length === 0) return this.refused([{ severity: 'error', code: 'empty', file: sources[0]?.file ?? '-', line: 0, message: 'no resources in the input' }]);
    return this.commit(this.files, this.applied.upsert(parsed.resources), parsed.resources, parsed.diagnostics);
  }

  /** Remove resources named by the documents (only kind and metadata matter), as `kubectl delete -f`. */
  delete(sources: readonly SourceText[]): ChangeResult {
    const keys: string[] = [];
    const diagnostics: Diagnostic[] = [];
    for (const src of sources) {
      const { documents, diagnostics: d } = parseSource(src);
      diagnostics.push(...d);
      for (const doc of documents) {
        const v = doc.value as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
        if (typeof v?.kind !== 'string' || typeof v.metadata?.name !== 'string') {
          diagnostics.push({ severity: 'error', code: 'missing-field', file: doc.file, line: doc.line, message: 'to delete, a document needs kind and metadata.name' });
          continue;
        }
        keys.push(resourceKey({ kind: v.kind, metadata: { name: v.metadata.name, namespace: typeof v.metadata.namespace === 'string' ? v.metadata.namespace : undefined } }));
      }
    }
    return this.deleteKeys(keys, diagnostics);
  }

  deleteKeys(keys: string[], diagnostics: Diagnostic[] = []): ChangeResult {
    const effective = this.effective();
    const missing = keys.filter((k) => !effective.has(k));
    for (const k of missing) diagnostics.push({ severity: 'error', code: 'not-found', file: '-', line: 0, resource: k.replace(/\//, ' '), message: `${k} does not exist` });
    const fromFiles = keys.filter((k) => this.files.has(k) && !this.applied.has(k));
    for (const k of fromFiles) diagnostics.push({ severity: 'error', code: 'owned-by-file', file: this.files.get(k)!.source.file, line: this.files.get(k)!.source.line, message: `${k} comes from a watched file; edit or remove it there` });
    if (errorsOf(diagnostics).length) return this.refused(diagnostics);
    return this.commit(this.files, this.applied.remove(keys), [], diagnostics, keys);
  }

  /** Set (value) or remove (null) labels on a resource, as `kubectl label`. */
  label(kind: string, namespace: string | undefined, name: string, labels: Record<string, string | null>): ChangeResult {
    const key = resourceKey({ kind, metadata: { name, namespace: kind === 'Namespace' ? undefined : namespace ?? 'default' } });
    const current = this.effective().get(key);
    let base: Located | undefined = current;
    if (!base && kind === 'Namespace') {
      // Namespaces exist implicitly when resources live in them; labelling one declares it.
      base = { resource: { apiVersion: 'v1', kind: 'Namespace', metadata: { name }, spec: {} } as Resource, source: { file: 'ambit label', line: 0 } };
    }
    if (!base) return this.refused([{ severity: 'error', code: 'not-found', file: '-', line: 0, message: `${kind} ${namespace ? `${namespace}/` : ''}${name} does not exist` }]);
    const next = structuredClone({ ...base.resource, metadata: { ...base.resource.metadata } }) as Resource;
    const l = { ...(next.metadata.labels ?? {}) };
    for (const [k, v] of Object.entries(labels)) {
      if (v === null) delete l[k];
      else l[k] = v;
    }
    next.metadata.labels = l;
    const located: Located = { resource: next, source: { file: 'ambit label', line: 0 } };
    // Validate the labelled resource like any applied one (label values, references).
    const docCheck = validateDocuments([{ file: 'ambit label', line: 1, value: next, locate: () => ({ line: 1, column: 1 }) }]);
    if (errorsOf(docCheck.diagnostics).length) return this.refused(docCheck.diagnostics);
    return this.commit(this.files, this.applied.upsert([located]), [located], docCheck.diagnostics);
  }

  effective(): ConfigSet {
    return this.files.upsert(this.applied.all());
  }

  /** `changed`: resource keys that differ from the current snapshot (the check then does only what they need). */
  private check(set: ConfigSet, added: readonly Located[], changed: readonly string[]) {
    let setDiags = validateSet(set, added);
    // Objects observed on a cluster arrive in any order: a label naming a waypoint whose
    // Gateway is not there yet binds to nothing until it is (as Istio does), it refuses nothing.
    if (this.options.observedPods) setDiags = setDiags.map((d) => (d.code === 'dangling-reference' ? { ...d, severity: 'warning' } : d));
    const options = { ...this.options, previous: this.snap?.model, serviceEndpointIps: this.endpointIps ?? this.options.serviceEndpointIps };
    // Endpoint IPs come from outside the set (a cluster's EndpointSlices): a change of them is a change of the model.
    const prev = this.snap && this.endpointIps === this.snapEndpointIps ? { model: this.snap.model, api: this.snap.api, modelDiagnostics: this.snap.modelDiagnostics } : undefined;
    return checkChange(set, setDiags, options, prev, changed);
  }

  private commit(files: ConfigSet, applied: ConfigSet, added: readonly Located[], docDiags: Diagnostic[], removed: string[] = [], force = false): ChangeResult {
    const effective = files.upsert(applied.all());
    const changedSet = new Set([...added.filter((l) => !sameResource(this.snap.set.get(resourceKey(l.resource))?.resource, l.resource)).map((l) => resourceKey(l.resource)), ...removed]);
    // A file reload can also remove resources: count keys that disappeared.
    for (const k of this.snap.set.keys()) if (!effective.has(k)) changedSet.add(k);
    const changed = [...changedSet];
    const result = this.check(effective, added, force ? [] : changed);
    const diagnostics = [...docDiags, ...result.diagnostics];
    if (!result.model || !result.api) return this.refused(diagnostics);
    this.files = files;
    this.applied = applied;
    if (changed.length === 0 && !force) return { ok: true, diagnostics, changed, version: this.snap.version };
    this.snapEndpointIps = this.endpointIps;
    this.snap = {
      version: this.snap.version + 1, set: effective, model: result.model, api: result.api, warnings: diagnostics.filter((d) => d.severity === 'warning'),
      modelDiagnostics: result.modelDiagnostics ?? [],
    };
    this.options.logger.info('config changed', { version: this.snap.version, changed: changed.slice(0, 20), count: changed.length });
    this.emit('change', this.snap, changed);
    return { ok: true, diagnostics, changed, version: this.snap.version };
  }

  private refused(diagnostics: Diagnostic[]): ChangeResult {
    this.options.logger.warn('config change refused; the last good config keeps serving', {
      errors: errorsOf(diagnostics).slice(0, 10).map((d) => `${d.file}:${d.line} ${d.resource ?? ''} ${d.path ?? ''}: ${d.message}`),
    });
    return { ok: false, diagnostics, changed: [], version: this.snap.version };
  }
}

function parseAll(sources: readonly SourceText[]): { resources: Located[]; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const docs = sources.flatMap((s) => {
    const p = parseSource(s);
    diagnostics.push(...p.diagnostics);
    return p.documents;
  });
  const r = validateDocuments(docs);
  return { resources: r.resources, diagnostics: [...diagnostics, ...r.diagnostics] };
}

function sameResource(a: Resource | undefined, b: Resource): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}
