// Keeps each waypoint Gateway's ServiceAccount, Deployment and Service as waypoint-objects.ts
// says, through server-side apply (field manager ambit-control-plane, force).
//
// Invariants:
// - Runs only once the shared cache has synced; triggered by changes to Gateways and to the
//   objects it makes (so a drift, e.g. a hand-edited image, is repaired at once), plus a
//   periodic resync.
// - An object is applied only when it lacks a field Ambit sets (hasFields); fields others own
//   (spec.replicas under an HPA, server defaults) are never compared nor sent.
// - An existing object of the same name that the Gateway does not own is left alone, and the
//   conflict is logged: Ambit never takes over a user's Deployment or Service.
// - Deletion is the garbage collector's: every object carries an ownerReference to its Gateway.
// - The mesh root is published in the root namespace and each waypoint namespace (ConfigMap
//   istio-ca-root-cert, as Istio does), applied once per namespace and resync.
import * as k8s from '@kubernetes/client-node';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { WAYPOINT_CLASS } from '../config/labels.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import type { InformerSet } from './informers.js';
import { messageOf } from './informers.js';
import type { KubeObject } from './kube-object.js';
import { FIELD_MANAGER, hasFields, rootCertConfigMap, waypointObjects, type WaypointSettings } from './waypoint-objects.js';
import { ingressGatewayName, ingressGatewayObjects } from './ingress-objects.js';
import { INGRESS_CLASS } from '../config/ingress-resources.js';

export interface WaypointReconcilerOptions {
  kubeConfig: k8s.KubeConfig;
  informers: InformerSet;
  settings: WaypointSettings;
  logger: Logger;
  clock: Clock;
  metrics?: MetricsRegistry;
  debounceMs?: number;
  resyncMs?: number;
  /** With several control-plane replicas, only the leader applies (absent: always). */
  isLeader?: () => boolean;
}

export const RECONCILED_KINDS = ['Gateway', 'Deployment', 'Service', 'ServiceAccount'];

export class WaypointReconciler {
  private readonly api: k8s.KubernetesObjectApi;
  private timer: TimerHandle | undefined;
  private resync: TimerHandle | undefined;
  private running = false;
  private again = false;
  private closed = false;
  private readonly conflicts = new Set<string>();
  /** Namespaces whose root-cert ConfigMap was applied since the last resync. */
  private readonly published = new Set<string>();
  private readonly m;

  constructor(private readonly opts: WaypointReconcilerOptions) {
    this.api = k8s.KubernetesObjectApi.makeApiClient(opts.kubeConfig);
    this.m = opts.metrics?.counter({ name: 'ambit_waypoint_applies_total', help: 'Server-side applies of waypoint objects, by kind and result.', labelNames: ['kind', 'result'] });
    this.armResync();
  }

  schedule(): void {
    if (this.closed || this.timer || !(this.opts.isLeader?.() ?? true)) return;
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, this.opts.debounceMs ?? 100);
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.resync?.cancel();
  }

  private armResync(): void {
    this.resync = this.opts.clock.setTimeout(() => {
      this.published.clear();
      this.schedule();
      if (!this.closed) this.armResync();
    }, this.opts.resyncMs ?? 5 * 60_000);
  }

  private async run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      await this.reconcile();
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.schedule();
      }
    }
  }

  /** One pass over every waypoint Gateway; returns the number of objects applied. */
  async reconcile(): Promise<number> {
    const inf = this.opts.informers;
    if (!inf.synced() || !inf.watching('Gateway')) return 0;
    let applied = 0;
    // The ztunnels and the control plane's own namespace need the mesh root too.
    const root = this.opts.settings.rootNamespace;
    if (this.opts.settings.rootCertPem && !this.published.has(root)) {
      if (await this.apply(rootCertConfigMap(root, this.opts.settings.rootCertPem))) this.published.add(root);
    }
    for (const g of inf.list('Gateway')) {
      const spec = g.spec as { gatewayClassName?: string; listeners?: { name: string; port: number; protocol: string }[]; infrastructure?: { labels?: Record<string, string>; annotations?: Record<string, string> } } | undefined;
      // Waypoints (istio-waypoint) and ingress gateways (istio, objects named <gateway>-istio).
      const ingress = spec?.gatewayClassName === INGRESS_CLASS;
      if ((spec?.gatewayClassName !== WAYPOINT_CLASS && !ingress) || !g.metadata.uid || g.metadata.deletionTimestamp) continue;
      const ns = g.metadata.namespace ?? 'default';
      if (this.opts.settings.rootCertPem && !this.published.has(ns)) {
        if (await this.apply(rootCertConfigMap(ns, this.opts.settings.rootCertPem))) this.published.add(ns);
      }
      const ref = { apiVersion: g.apiVersion, name: g.metadata.name, namespace: ns, uid: g.metadata.uid, infrastructure: spec!.infrastructure, annotations: g.metadata.annotations };
      const want = ingress ? ingressGatewayObjects({ ...ref, listeners: spec!.listeners ?? [] }, this.opts.settings) : waypointObjects(ref, this.opts.settings);
      const objectName = ingress ? ingressGatewayName(g.metadata.name) : g.metadata.name;
      for (const desired of [want.serviceAccount, want.service, want.deployment] as k8s.KubernetesObject[]) {
        const kind = desired.kind!;
        const actual = inf.get(kind, ns, objectName);
        if (actual && !ownedBy(actual, g.metadata.uid)) {
          const key = `${kind}/${ns}/${objectName}`;
          if (!this.conflicts.has(key)) {
            this.conflicts.add(key);
            this.opts.logger.warn('waypoint object exists and is not owned by its Gateway; left alone', { gateway: `${ns}/${g.metadata.name}`, object: key, hint: 'delete it, or rename the Gateway' });
          }
          continue;
        }
        if (actual && hasFields(actual, stripForCompare(desired))) continue;
        if (await this.apply(desired)) applied++;
      }
    }
    return applied;
  }

  private async apply(o: k8s.KubernetesObject): Promise<boolean> {
    try {
      await this.api.patch(o, undefined, undefined, FIELD_MANAGER, true, k8s.PatchStrategy.ServerSideApply);
      this.m?.labels({ kind: o.kind!, result: 'ok' }).inc();
      this.opts.logger.info('waypoint object applied', { object: `${o.kind} ${o.metadata?.namespace}/${o.metadata?.name}` });
      return true;
    } catch (e: unknown) {
      this.m?.labels({ kind: o.kind!, result: 'error' }).inc();
      this.opts.logger.warn('waypoint object apply failed; retried on the next change or resync', { object: `${o.kind} ${o.metadata?.namespace}/${o.metadata?.name}`, error: messageOf(e) });
      return false;
    }
  }
}

function ownedBy(o: KubeObject, uid: string): boolean {
  return (o.metadata.ownerReferences ?? []).some((r) => r.uid === uid);
}

/** The desired object as the cache holds objects (no apiVersion/kind to compare). */
function stripForCompare(o: k8s.KubernetesObject): unknown {
  const { apiVersion: _a, kind: _k, ...rest } = o as Record<string, unknown>;
  void _a;
  void _k;
  return JSON.parse(JSON.stringify(rest));
}
