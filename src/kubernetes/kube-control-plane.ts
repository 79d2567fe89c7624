// Wires the Kubernetes parts to a control plane: one informer set (the shared cache), the
// config source feeding the control plane's ConfigStore, and the writers that act on the
// cluster (Events for invalid objects, status, waypoint Deployments). Explicit wiring: the
// CLI builds the ControlPlane with `observedPods` and the caller policy, then calls this.
import type * as k8s from '@kubernetes/client-node';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { ControlPlane } from '../controlplane/control-plane.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import { EventRecorder } from './event-recorder.js';
import { InformerSet } from './informers.js';
import { KubeConfigSource } from './kube-config-source.js';
import { StatusWriter } from './status-writer.js';
import { RECONCILED_KINDS, WaypointReconciler } from './waypoint-reconciler.js';
import type { WaypointSettings } from './waypoint-objects.js';
import { WATCHED_KINDS, type WatchedKind } from './watched-kinds.js';

export interface KubernetesPartsOptions {
  kubeConfig: k8s.KubeConfig;
  controlPlane: ControlPlane;
  rootNamespace: string;
  logger: Logger;
  clock: Clock;
  metrics?: MetricsRegistry;
  kinds?: readonly WatchedKind[];
  debounceMs?: number;
  backoff?: { initialMs: number; maxMs: number };
  watchTimeoutSeconds?: [number, number];
  /** How often kinds whose CRDs are missing are looked for again (default 60 s). */
  rediscoverMs?: number;
  /** Write Events for invalid objects (default true). */
  events?: boolean;
  /** Write status (default true). */
  status?: boolean;
  statusDebounceMs?: number;
  /** Make waypoint Deployments (absent: the control plane does not manage waypoints). */
  waypoints?: WaypointSettings & { resyncMs?: number; debounceMs?: number };
}

export interface KubernetesParts {
  informers: InformerSet;
  source: KubeConfigSource;
  status: StatusWriter | undefined;
  waypoints: WaypointReconciler | undefined;
  close(): void;
}

export function startKubernetesParts(opts: KubernetesPartsOptions): KubernetesParts {
  const logger = opts.logger.child({ scope: 'kubernetes' });
  // The informers call back into parts made after them.
  const late: { source?: KubeConfigSource; waypoints?: WaypointReconciler; status?: StatusWriter } = {};
  const informers = new InformerSet({
    kubeConfig: opts.kubeConfig, kinds: opts.kinds ?? WATCHED_KINDS, rootNamespace: opts.rootNamespace,
    logger, clock: opts.clock, metrics: opts.metrics, backoff: opts.backoff, watchTimeoutSeconds: opts.watchTimeoutSeconds, rediscoverMs: opts.rediscoverMs,
    onChange: (k) => {
      // Owned objects do not feed the config, but the first commit waits for every kind's list.
      if (k.feeds !== 'owned' || !late.source?.synced()) late.source?.onChange(k);
      if (RECONCILED_KINDS.includes(k.kind)) late.waypoints?.schedule();
      // A Gateway's address is its Service's (a LoadBalancer's ingress is status only, which
      // does not change the config): the status writer looks again.
      if (k.kind === 'Service') late.status?.schedule();
    },
  });
  const events = opts.events === false ? undefined : new EventRecorder({ kubeConfig: opts.kubeConfig, logger, clock: opts.clock });
  const source = new KubeConfigSource({
    informers, store: opts.controlPlane.store, logger, clock: opts.clock, metrics: opts.metrics,
    debounceMs: opts.debounceMs, startBackoffMs: opts.backoff, reporter: events,
  });
  const status = opts.status === false ? undefined : new StatusWriter({
    kubeConfig: opts.kubeConfig, informers, source, store: opts.controlPlane.store, logger, clock: opts.clock, metrics: opts.metrics, debounceMs: opts.statusDebounceMs,
  });
  late.source = source;
  late.status = status;
  const waypoints = opts.waypoints ? new WaypointReconciler({
      kubeConfig: opts.kubeConfig, informers, settings: opts.waypoints, logger, clock: opts.clock, metrics: opts.metrics,
      resyncMs: opts.waypoints.resyncMs, debounceMs: opts.waypoints.debounceMs,
    }) : undefined;
  late.waypoints = waypoints;
  source.start();
  return {
    informers, source, status, waypoints,
    close() {
      waypoints?.close();
      status?.close();
      source.close();
      informers.close();
    },
  };
}
