// The control plane's config from a Kubernetes API server: the informers' objects go through
// the same validation -> model -> translation as files (ConfigStore), one object at a time.
//
// Invariants:
// - Nothing is committed before every watched kind has finished its first list (a partial
//   first view would push a mesh with workloads missing); then changes are debounced.
// - An object that fails its own checks is skipped and reported (log, Event, status
//   condition through the reporter); the rest of the mesh keeps working. When an object that
//   was valid becomes invalid (same uid), its last valid version keeps serving, as a refused
//   file change does: a typo in a DENY policy must not lift the DENY. When the set as a
//   whole is refused (a clash between objects: two pods with one IP, ...), the objects the
//   errors name are skipped too and the set is tried again (at most 4 rounds); if it is
//   still refused, the last good config keeps serving.
// - Each object is validated once per resourceVersion (the result is cached).
// - Pods count only when podCounts() says so (scheduled, an IP, not terminal).
// - When the API server goes away, the informers keep their objects and nothing changes.
import { EventEmitter } from 'node:events';
import { resourceKey } from '../config/config-set.js';
import { errorsOf, type Diagnostic } from '../config/diagnostics.js';
import type { Located } from '../config/resources.js';
import { validateDocuments } from '../config/validate.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { ConfigStore } from '../controlplane/config-store.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import { selectorlessEndpoints } from './endpoints.js';
import type { InformerSet } from './informers.js';
import { messageOf } from './informers.js';
import { configDocument, podCounts, type KubeObject } from './kube-object.js';
import { WATCHED_KINDS, type WatchedKind } from './watched-kinds.js';

export interface ObjectProblem {
  object: KubeObject;
  diagnostics: Diagnostic[];
  /** The object's previous valid version keeps serving (a change made it invalid). */
  keptPrevious?: boolean;
}

/** Where skipped objects are told about (Events; the status writer reads problems() itself). */
export interface ProblemReporter {
  report(problem: ObjectProblem): void;
}

export interface KubeConfigSourceOptions {
  informers: InformerSet;
  store: ConfigStore;
  logger: Logger;
  clock: Clock;
  metrics?: MetricsRegistry;
  reporter?: ProblemReporter;
  debounceMs?: number;
  /** Back-off while the API server cannot be reached at start. */
  startBackoffMs?: { initialMs: number; maxMs: number };
}

interface Checked {
  resourceVersion: string | undefined;
  uid: string | undefined;
  located?: Located;
  /** The last version of this object (same uid) that passed, kept while a newer one fails. */
  lastGood?: Located;
  diagnostics: Diagnostic[];
}

const MAX_ROUNDS = 4;

export class KubeConfigSource extends EventEmitter<{ synced: []; committed: [number] }> {
  private timer: TimerHandle | undefined;
  private startTimer: TimerHandle | undefined;
  private checked = new Map<string, Checked>();
  private problemsByKey = new Map<string, ObjectProblem>();
  private reportedText = new Map<string, string>();
  private lastEndpoints = '';
  private everCommitted = false;
  private closed = false;
  private readonly m;

  constructor(private readonly opts: KubeConfigSourceOptions) {
    super();
    const reg = opts.metrics;
    this.m = reg ? {
      invalid: reg.gauge({ name: 'ambit_kube_invalid_objects', help: 'Kubernetes objects skipped because they are invalid.' }),
      rebuilds: reg.counter({ name: 'ambit_kube_config_rebuilds_total', help: 'Config rebuilds from the Kubernetes cache, by result.', labelNames: ['result'] }),
    } : undefined;
  }

  /** Starts discovery and the informers in the background (retrying while the API server is unreachable). */
  start(attempt = 0): void {
    if (this.closed) return;
    this.opts.informers.start().catch((e: unknown) => {
      const { initialMs, maxMs } = this.opts.startBackoffMs ?? { initialMs: 1000, maxMs: 30_000 };
      const delayMs = Math.min(maxMs, initialMs * 2 ** attempt);
      this.opts.logger.warn('cannot reach the Kubernetes API server; retrying', { error: messageOf(e), retryInMs: delayMs });
      this.startTimer = this.opts.clock.setTimeout(() => this.start(attempt + 1), delayMs);
    });
  }

  /** Called by the informers on every change. */
  onChange(_kind?: WatchedKind): void {
    if (this.closed || this.timer || !this.opts.informers.synced()) return;
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = undefined;
      this.rebuild();
    }, this.everCommitted ? (this.opts.debounceMs ?? 100) : 0);
  }

  synced(): boolean {
    return this.everCommitted;
  }

  /** Objects skipped, with why (for status conditions and the admin API). */
  problems(): ReadonlyMap<string, ObjectProblem> {
    return this.problemsByKey;
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.startTimer?.cancel();
  }

  /** Validate what the cache holds and hand it to the store. */
  rebuild(): void {
    const inf = this.opts.informers;
    const resources: Located[] = [];
    const objects = new Map<string, KubeObject>();
    const problems = new Map<string, ObjectProblem>();
    const seen = new Set<string>();
    for (const kind of WATCHED_KINDS) {
      if (kind.feeds !== 'config' || !inf.watching(kind.kind)) continue;
      for (const o of inf.list(kind.kind)) {
        if (kind.kind === 'Pod' && !podCounts(o).counts) continue;
        const key = resourceKey({ kind: o.kind, metadata: { name: o.metadata.name, namespace: kind.namespaced ? o.metadata.namespace : undefined } });
        seen.add(key);
        objects.set(key, o);
        const c = this.check(key, kind, o);
        if (c.located) resources.push(c.located);
        else {
          problems.set(key, { object: o, diagnostics: c.diagnostics, keptPrevious: c.lastGood !== undefined });
          if (c.lastGood) resources.push(c.lastGood);
        }
      }
    }
    for (const k of this.checked.keys()) if (!seen.has(k)) this.checked.delete(k);

    const selectorless = new Set<string>();
    for (const l of resources) if (l.resource.kind === 'Service' && !l.resource.spec.selector) selectorless.add(`${l.resource.metadata.namespace}/${l.resource.metadata.name}`);
    const endpoints = selectorlessEndpoints(inf.list('EndpointSlice'), selectorless);
    const endpointsText = JSON.stringify([...endpoints]);
    const force = !this.everCommitted || endpointsText !== this.lastEndpoints;

    let candidates = resources;
    let committed = false;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const r = this.opts.store.setResources(candidates, { serviceEndpointIps: endpoints, force });
      if (r.ok) {
        committed = true;
        break;
      }
      const blamed = new Map<string, Diagnostic[]>();
      for (const d of errorsOf(r.diagnostics)) {
        const key = d.resource ? keyOfRef(d.resource) : undefined;
        if (key && objects.has(key) && candidates.some((l) => resourceKey(l.resource) === key)) blamed.set(key, [...(blamed.get(key) ?? []), d]);
      }
      if (blamed.size === 0) break;
      for (const [key, ds] of blamed) problems.set(key, { object: objects.get(key)!, diagnostics: ds });
      candidates = candidates.filter((l) => !blamed.has(resourceKey(l.resource)));
    }
    this.m?.rebuilds.labels({ result: committed ? 'accepted' : 'refused' }).inc();
    if (!committed) {
      this.opts.logger.error('the objects in the cluster do not make a valid mesh; the last good config keeps serving', { version: this.opts.store.current().version });
    } else {
      this.lastEndpoints = endpointsText;
    }
    this.updateProblems(problems);
    if (committed) {
      const first = !this.everCommitted;
      this.everCommitted = true;
      if (first) this.emit('synced');
      this.emit('committed', this.opts.store.current().version);
    }
  }

  private check(key: string, kind: WatchedKind, o: KubeObject): Checked {
    const rv = o.metadata.resourceVersion;
    const before = this.checked.get(key);
    if (before && rv !== undefined && before.resourceVersion === rv) return before;
    const file = `kubernetes:${kind.plural}/${kind.namespaced ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;
    const { resources, diagnostics } = validateDocuments([{ file, line: 0, value: configDocument(o), locate: () => ({ line: 0, column: 0 }) }]);
    const lastGood = before && before.uid === o.metadata.uid ? before.located ?? before.lastGood : undefined;
    const c: Checked = { resourceVersion: rv, uid: o.metadata.uid, located: resources[0], lastGood: resources[0] ? undefined : lastGood, diagnostics };
    this.checked.set(key, c);
    return c;
  }

  private updateProblems(problems: Map<string, ObjectProblem>): void {
    this.problemsByKey = problems;
    this.m?.invalid.labels({}).set(problems.size);
    for (const [key, p] of problems) {
      const text = errorsOf(p.diagnostics).map((d) => `${d.path ? `${d.path}: ` : ''}${d.message}`).join('; ');
      if (this.reportedText.get(key) === text) continue;
      this.reportedText.set(key, text);
      this.opts.logger.warn('kubernetes object skipped: it is invalid; the rest of the mesh keeps working', {
        object: key, resourceVersion: p.object.metadata.resourceVersion, errors: text, servingPreviousVersion: p.keptPrevious === true,
      });
      try {
        this.opts.reporter?.report(p);
      } catch (e: unknown) {
        this.opts.logger.warn('could not report an invalid object', { object: key, error: messageOf(e) });
      }
    }
    for (const key of [...this.reportedText.keys()]) {
      if (problems.has(key)) continue;
      this.reportedText.delete(key);
      this.opts.logger.info('kubernetes object accepted again', { object: key });
    }
  }
}

/** `Kind ns/name` (a diagnostic's resource) -> the config set's key. */
export function keyOfRef(ref: string): string | undefined {
  const m = /^(\w+) (?:([^/\s]+)\/)?([^/\s]+)$/.exec(ref);
  if (!m) return undefined;
  return m[1] === 'Namespace' ? `Namespace//${m[3]}` : `${m[1]}/${m[2] ?? 'default'}/${m[3]}`;
}
