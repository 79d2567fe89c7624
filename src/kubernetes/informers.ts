// One shared cache of the watched Kubernetes objects, kept by @kubernetes/client-node
// informers (ListWatch: list, then watch from the list's resourceVersion).
//
// Invariants:
// - One ListWatch per watched kind; every consumer (config source, status writer, waypoint
//   reconciler, CA authorizer) reads this one cache.
// - The watch asks for bookmarks (allowWatchBookmarks=true) and a server-side timeout with
//   jitter (timeoutSeconds 300..600, as client-go does); the library's own watch does
//   neither, so its Watch is wrapped. A bookmark moves the resourceVersion the next watch
//   starts from, so a reconnect does not replay or relist.
// - 410 Gone (an HTTP 410, or an ERROR event carrying a 410 Status) makes the library relist;
//   the relist deletes what vanished and reports as updates only objects whose
//   resourceVersion changed, so it loses and duplicates nothing.
// - Any other error stops the library's ListWatch (it does not retry by itself): it is
//   restarted here after a back-off (1 s doubling to 30 s with jitter; Retry-After of a 429
//   is honoured when longer), from the last resourceVersion. The cache keeps its objects
//   meanwhile: an API server that went away leaves the last good view in place.
// - Objects are projected (kube-object.ts) before they enter the cache.
// - A kind whose CRD is not installed is not watched; discovery is asked again every minute and
//   a kind that appears (CRDs installed after start) is watched from then on, without a restart.
//   Such a late informer does not hold back synced(): its objects join at its first list.
import * as k8s from '@kubernetes/client-node';
import type { Clock, TimerHandle } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import { project, type KubeObject } from './kube-object.js';
import { apiVersionOf, chooseVersion, collectionPath, type WatchedKind } from './watched-kinds.js';

export interface InformerSetOptions {
  kubeConfig: k8s.KubeConfig;
  kinds: readonly WatchedKind[];
  rootNamespace: string;
  logger: Logger;
  clock: Clock;
  metrics?: MetricsRegistry;
  backoff?: { initialMs: number; maxMs: number };
  /** Server-side watch timeout range in seconds (default 300..600). */
  watchTimeoutSeconds?: [number, number];
  /** How often kinds not served at start are looked for again (default 60 s; 0: never). */
  rediscoverMs?: number;
  /** Called after any add, update or delete, and when a kind finishes its first list. */
  onChange: (kind: WatchedKind) => void;
}

// The library types metadata.creationTimestamp as a Date, which holds for a list's typed items
// but not for a watch event's parsed JSON; the cache holds projected objects (strings), so it
// is typed as the library's object and read back as ours.
type Cached = k8s.KubernetesObject;
const asOurs = (o: Cached): KubeObject => o as unknown as KubeObject;
const asCached = (o: KubeObject): Cached => o as unknown as Cached;

interface Entry {
  kind: WatchedKind;
  apiVersion: string;
  informer: k8s.ListWatch<Cached>;
  synced: boolean;
  /** Started after the first sync (its CRD was installed later): not waited for by synced(). */
  late: boolean;
  failures: number;
  timer: TimerHandle | undefined;
}

type WatchCallback = (phase: string, apiObj: unknown, watchObj?: unknown) => void;

/** The library's Watch, asking for bookmarks and a server-side timeout, projecting objects. */
class ProjectingWatch extends k8s.Watch {
  constructor(config: k8s.KubeConfig, private readonly hooks: {
    timeoutSeconds: () => number;
    project: (o: unknown) => KubeObject;
    onWatch: () => void;
    onEvent: (type: string, obj: unknown) => void;
  }) {
    super(config);
  }

  override async watch(path: string, query: Record<string, string | number | boolean | undefined>, callback: WatchCallback, done: (err: unknown) => void): Promise<AbortController> {
    const timeoutSeconds = this.hooks.timeoutSeconds();
    // The library aborts a watch that received nothing for requestTimeoutMs (30 s); a quiet
    // collection gets a bookmark about once a minute, so give it the whole server timeout.
    (this as unknown as { requestTimeoutMs: number }).requestTimeoutMs = (timeoutSeconds + 30) * 1000;
    this.hooks.onWatch();
    return super.watch(path, { ...query, allowWatchBookmarks: true, timeoutSeconds }, (type, obj, raw) => {
      this.hooks.onEvent(type, obj);
      callback(type, type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED' ? asCached(this.hooks.project(obj)) : obj, raw);
    }, done);
  }
}

export class InformerSet {
  private readonly entries = new Map<string, Entry>();
  /** Kinds not served (their CRDs are not installed), looked for again every rediscoverMs. */
  private missing: WatchedKind[] = [];
  private rediscovery: TimerHandle | undefined;
  private closed = false;
  private readonly objectApi: k8s.KubernetesObjectApi;
  private readonly m;

  constructor(private readonly opts: InformerSetOptions) {
    this.objectApi = k8s.KubernetesObjectApi.makeApiClient(opts.kubeConfig);
    const reg = opts.metrics;
    this.m = reg ? {
      events: reg.counter({ name: 'ambit_kube_watch_events_total', help: 'Watch events received from the Kubernetes API, by kind and type.', labelNames: ['kind', 'type'] }),
      lists: reg.counter({ name: 'ambit_kube_lists_total', help: 'Lists (initial and relists after 410 Gone) of a kind.', labelNames: ['kind'] }),
      errors: reg.counter({ name: 'ambit_kube_watch_errors_total', help: 'List or watch failures, by kind and HTTP status (0: no answer).', labelNames: ['kind', 'code'] }),
    } : undefined;
  }

  /** Discover which versions are served, then start one informer per kind. Throws when the API server cannot be reached. */
  async start(): Promise<void> {
    const served = await this.servedVersions();
    for (const kind of this.opts.kinds) {
      const version = chooseVersion(kind.versions, served.get(kind.group) ?? []);
      if (!version) {
        this.missing.push(kind);
        continue;
      }
      this.entries.set(kind.kind, this.makeEntry(kind, version, false));
    }
    if (this.missing.length) {
      this.opts.logger.warn('kinds not served by this cluster are not watched yet', {
        missing: this.notServed(),
        hint: 'install their CRDs (Gateway API: the standard channel; Istio kinds: ambit install); they are looked for again every minute',
      });
    }
    for (const e of this.entries.values()) void this.run(e);
    this.scheduleRediscovery();
  }

  /** Kinds not served by the API server (their CRDs are not installed). */
  notServed(): readonly string[] {
    return this.missing.map((k) => `${k.kind} (${k.group || 'core'} ${k.versions.join('/')})`);
  }

  /** Every informer started with the set has completed its first list (late ones count once they have). */
  synced(): boolean {
    return [...this.entries.values()].every((e) => e.synced || e.late);
  }

  /** Looks for the missing kinds again; starts watching those now served. Returns how many. */
  async rediscover(): Promise<number> {
    if (this.closed || this.missing.length === 0) return 0;
    const served = await this.servedVersions();
    const found: WatchedKind[] = [];
    for (const kind of this.missing) {
      const version = chooseVersion(kind.versions, served.get(kind.group) ?? []);
      if (!version || this.closed) continue;
      const e = this.makeEntry(kind, version, true);
      this.entries.set(kind.kind, e);
      found.push(kind);
      this.opts.logger.info('a kind is now served: watching it', { kind: kind.kind, apiVersion: e.apiVersion });
      void this.run(e);
    }
    this.missing = this.missing.filter((k) => !found.includes(k));
    return found.length;
  }

  private scheduleRediscovery(): void {
    const every = this.opts.rediscoverMs ?? 60_000;
    if (this.closed || this.rediscovery || every <= 0 || this.missing.length === 0) return;
    this.rediscovery = this.opts.clock.setTimeout(() => {
      this.rediscovery = undefined;
      this.rediscover().catch((e: unknown) => {
        this.opts.logger.debug('API discovery failed; trying again later', { error: describeError(e).message });
      }).finally(() => this.scheduleRediscovery());
    }, every);
  }

  watching(kind: string): boolean {
    return this.entries.has(kind);
  }

  apiVersion(kind: string): string | undefined {
    return this.entries.get(kind)?.apiVersion;
  }

  list(kind: string): readonly KubeObject[] {
    return (this.entries.get(kind)?.informer.list() ?? []).map(asOurs);
  }

  get(kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.entries.get(kind)?.informer.get(name, namespace);
    return o && asOurs(o);
  }

  close(): void {
    this.closed = true;
    this.rediscovery?.cancel();
    for (const e of this.entries.values()) {
      e.timer?.cancel();
      void e.informer.stop();
    }
  }

  private async servedVersions(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>([['', ['v1']]]);
    const groups = await this.opts.kubeConfig.makeApiClient(k8s.ApisApi).getAPIVersions();
    for (const g of groups.groups) out.set(g.name, g.versions.map((v) => v.version));
    return out;
  }

  private makeEntry(kind: WatchedKind, version: string, late: boolean): Entry {
    const apiVersion = apiVersionOf(kind.group, version);
    const namespace = kind.namespace === 'root' ? this.opts.rootNamespace : undefined;
    const path = collectionPath(kind, version, namespace);
    const [lo, hi] = this.opts.watchTimeoutSeconds ?? [300, 600];
    const entry = {} as Entry;
    const watch = new ProjectingWatch(this.opts.kubeConfig, {
      timeoutSeconds: () => Math.floor(lo + Math.random() * (hi - lo + 1)),
      project: (o) => project(kind, apiVersion, o),
      onWatch: () => {
        // The library starts watching right after it has put a list's items in the cache.
        if (!entry.synced) {
          entry.synced = true;
          this.opts.logger.info('kubernetes kind synced', { kind: kind.kind, apiVersion, objects: entry.informer.list().length });
          this.opts.onChange(kind);
        }
      },
      onEvent: (type, obj) => {
        entry.failures = 0;
        this.m?.events.labels({ kind: kind.kind, type }).inc();
        if (type === 'ERROR') {
          const status = obj as { code?: number; message?: string };
          this.opts.logger.info('watch ended by the API server', { kind: kind.kind, code: status.code, message: status.message, relist: status.code === 410 });
        }
      },
    });
    const listFn = async (): Promise<k8s.KubernetesListObject<Cached>> => {
      this.m?.lists.labels({ kind: kind.kind }).inc();
      const list = await this.objectApi.list(apiVersion, kind.kind, namespace, undefined, undefined, undefined, kind.fieldSelector, kind.labelSelector);
      entry.failures = 0;
      return { metadata: { resourceVersion: list.metadata?.resourceVersion }, items: list.items.map((i) => asCached(project(kind, apiVersion, i))) };
    };
    const informer = new k8s.ListWatch<Cached>(path, watch, listFn, false, kind.labelSelector, kind.fieldSelector, {
      delayFn: (ms) => new Promise<void>((resolve) => { this.opts.clock.setTimeout(resolve, ms); }),
    });
    Object.assign(entry, { kind, apiVersion, informer, synced: false, late, failures: 0, timer: undefined });
    const changed = () => { if (entry.synced) this.opts.onChange(kind); };
    informer.on('add', changed);
    informer.on('update', changed);
    informer.on('delete', changed);
    informer.on('error', (err: unknown) => this.failed(entry, err));
    return entry;
  }

  private async run(e: Entry): Promise<void> {
    if (this.closed) return;
    try {
      await e.informer.start();
    } catch (err: unknown) {
      this.failed(e, err);
    }
  }

  /** The library stopped this informer: restart it after a back-off, from its resourceVersion. */
  private failed(e: Entry, err: unknown): void {
    if (this.closed || e.timer) return;
    const code = httpStatusOf(err);
    // A 404 on the first list: the group serves this version but not this kind (a CRD of the
    // group not installed, e.g. TCPRoute outside Gateway API's experimental channel). It is not
    // watched, like a kind of a group the server does not serve, and does not hold up sync.
    if (code === 404 && !e.synced) {
      void e.informer.stop();
      this.entries.delete(e.kind.kind);
      this.missing.push(e.kind);
      // Said once; a kind looked for again (late) and still missing is not news.
      if (!e.late) this.opts.logger.warn('a kind is not served by this cluster and is not watched yet', { kind: e.kind.kind, apiVersion: e.apiVersion, hint: 'install its CRD; it is looked for again every minute' });
      this.scheduleRediscovery();
      return;
    }
    this.m?.errors.labels({ kind: e.kind.kind, code: String(code ?? 0) }).inc();
    const { initialMs, maxMs } = this.opts.backoff ?? { initialMs: 1000, maxMs: 30_000 };
    const exp = Math.min(maxMs, initialMs * 2 ** e.failures);
    const retryAfterMs = code === 429 ? retryAfterOf(err) : undefined;
    const delayMs = Math.max(Math.round(exp * (0.8 + Math.random() * 0.4)), retryAfterMs ?? 0);
    e.failures++;
    this.opts.logger.warn('kubernetes list/watch failed; the last good objects keep serving', {
      kind: e.kind.kind, code, error: messageOf(err), retryInMs: delayMs, failures: e.failures,
    });
    e.timer = this.opts.clock.setTimeout(() => {
      e.timer = undefined;
      void this.run(e);
    }, delayMs);
  }
}

export function httpStatusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | undefined;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  if (typeof e?.code === 'number') return e.code;
  return undefined;
}

function retryAfterOf(err: unknown): number | undefined {
  const headers = (err as { headers?: Record<string, string> } | undefined)?.headers;
  const v = headers?.['retry-after'] ?? headers?.['Retry-After'];
  const s = v === undefined ? NaN : Number(v);
  return Number.isFinite(s) && s >= 0 ? Math.min(s, 600) * 1000 : undefined;
}

export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? err.message;
  return String(err);
}
