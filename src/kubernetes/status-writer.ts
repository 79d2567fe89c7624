// Writes the status computed by status-desired.ts: merge patches of the status subresource
// only, skipped when nothing changed.
//
// Invariants:
// - Runs after the config source committed (debounced); reads the one informer cache.
// - A patch is sent only when the merged status differs from what the cache holds (compared
//   with keys sorted) and from what this writer last sent for that generation; the API
//   server's echo (a MODIFIED event) then finds nothing to do, so writes never loop.
// - Failures are logged and retried on the next run; they never block config.
import { resourceKey } from '../config/config-set.js';
import * as k8s from '@kubernetes/client-node';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { ConfigStore } from '../controlplane/config-store.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import type { InformerSet } from './informers.js';
import { messageOf } from './informers.js';
import type { KubeConfigSource } from './kube-config-source.js';
import type { KubeObject } from './kube-object.js';
import { desiredStatuses, mergeStatus } from './status-desired.js';
import { WATCHED_KINDS } from './watched-kinds.js';

const ISTIO_KINDS = ['AuthorizationPolicy', 'PeerAuthentication', 'RequestAuthentication', 'VirtualService', 'Telemetry'];

export interface StatusWriterOptions {
  kubeConfig: k8s.KubeConfig;
  informers: InformerSet;
  source: KubeConfigSource;
  store: ConfigStore;
  logger: Logger;
  clock: Clock;
  metrics?: MetricsRegistry;
  debounceMs?: number;
}

/** JSON with object keys sorted, for "did anything change". */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));
}

export class StatusWriter {
  private readonly api: k8s.CustomObjectsApi;
  private timer: TimerHandle | undefined;
  private running = false;
  private again = false;
  private readonly sent = new Map<string, string>();
  private readonly m;

  constructor(private readonly opts: StatusWriterOptions) {
    this.api = opts.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    opts.source.on('committed', () => this.schedule());
    this.m = opts.metrics?.counter({ name: 'ambit_kube_status_writes_total', help: 'Status patches sent to the Kubernetes API, by kind and result.', labelNames: ['kind', 'result'] });
  }

  schedule(): void {
    if (this.timer) return;
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, this.opts.debounceMs ?? 200);
  }

  close(): void {
    this.timer?.cancel();
  }

  private async run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      const r = await this.reconcile();
      // A failed patch is tried again even if nothing else changes.
      if (r.failed > 0 && !this.timer) this.timer = this.opts.clock.setTimeout(() => { this.timer = undefined; void this.run(); }, 5000);
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.schedule();
      }
    }
  }

  /** One pass: patch every object whose status should change. */
  async reconcile(): Promise<{ patched: number; failed: number }> {
    const inf = this.opts.informers;
    const snap = this.opts.store.current();
    const problems = this.opts.source.problems();
    // Only objects the served config has taken in as they are now (or refused): an object the
    // store has not applied yet would be judged against a config without it.
    const takenIn = (o: KubeObject): boolean => {
      const key = resourceKey({ kind: o.kind, metadata: { name: o.metadata.name, namespace: o.metadata.namespace } });
      if (problems.has(key)) return true;
      const served = snap.set.get(key)?.resource as { spec?: unknown } | undefined;
      return served !== undefined && JSON.stringify(served.spec ?? {}) === JSON.stringify(o.spec ?? {});
    };
    const desired = desiredStatuses({
      model: snap.model, warnings: snap.warnings, problems,
      gateways: inf.list('Gateway').filter(takenIn), httpRoutes: inf.list('HTTPRoute').filter(takenIn), services: inf.list('Service'),
      otherRoutes: [...inf.list('GRPCRoute'), ...inf.list('TCPRoute')].filter(takenIn),
      istio: ISTIO_KINDS.flatMap((k) => inf.list(k)).filter(takenIn),
    });
    const now = new Date(this.opts.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    let patched = 0;
    let failed = 0;
    const live = new Set<string>();
    for (const d of desired) {
      const o = d.object;
      const key = `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
      live.add(key);
      const current = o.status as Record<string, unknown> | undefined;
      const next = mergeStatus(current, d, now);
      const text = canonical(next);
      if (text === canonical(current ?? {}) || this.sent.get(key) === `${o.metadata.generation}:${text}`) continue;
      if (await this.patch(o, next)) {
        this.sent.set(key, `${o.metadata.generation}:${text}`);
        patched++;
      } else {
        failed++;
      }
    }
    for (const k of this.sent.keys()) if (!live.has(k)) this.sent.delete(k);
    return { patched, failed };
  }

  private async patch(o: KubeObject, status: Record<string, unknown>): Promise<boolean> {
    const kind = WATCHED_KINDS.find((k) => k.kind === o.kind)!;
    const [group, version] = o.apiVersion.split('/') as [string, string];
    try {
      await this.api.patchNamespacedCustomObjectStatus(
        { group, version, namespace: o.metadata.namespace ?? 'default', plural: kind.plural, name: o.metadata.name, body: { status } },
        // The generated client sends a JSON patch unless told otherwise.
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      this.m?.labels({ kind: o.kind, result: 'ok' }).inc();
      return true;
    } catch (e: unknown) {
      this.m?.labels({ kind: o.kind, result: 'error' }).inc();
      this.opts.logger.warn('status patch failed; retried in 5 s', { object: `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`, error: messageOf(e) });
      return false;
    }
  }
}
