// What `ambit control-plane --kubernetes` adds to a control plane, from its command-line
// values: the kubeconfig, the caller policy (TokenReview) and the Kubernetes parts.
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { CallerPolicy, ControlPlane } from '../controlplane/control-plane.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import { loadKubeConfig, type KubeAccess } from './kube-client.js';
import { kubernetesCallerPolicy } from './kube-callers.js';
import { startKubernetesParts, type KubernetesParts } from './kube-control-plane.js';
import { KubeTokenReviewer } from './token-review.js';
import type { WaypointSettings } from './waypoint-objects.js';

export interface KubeWiringOptions {
  access: KubeAccess;
  rootNamespace: string;
  trustDomain: string;
  ztunnel: { namespace: string; serviceAccount: string };
  waypoints?: WaypointSettings;
  /** This replica's name and namespace (the pod's, from the downward API): it joins the leader election. */
  replica?: { name: string; namespace: string };
  logger: Logger;
  clock: Clock;
  metrics: MetricsRegistry;
}

export interface KubeWiring {
  callers: CallerPolicy;
  /** Start watching once the control plane exists. */
  start(cp: ControlPlane, rootCertPem: string): KubernetesParts;
}

export function kubernetesWiring(o: KubeWiringOptions): KubeWiring {
  const kubeConfig = loadKubeConfig(o.access);
  let parts: KubernetesParts | undefined;
  const callers = kubernetesCallerPolicy({
    reviewer: new KubeTokenReviewer({ kubeConfig, clock: o.clock }),
    informers: { get: (kind, ns, name) => parts?.informers.get(kind, ns, name) },
    ztunnel: o.ztunnel, trustDomain: o.trustDomain,
  });
  return {
    callers,
    start(cp, rootCertPem) {
      parts = startKubernetesParts({
        kubeConfig, controlPlane: cp, rootNamespace: o.rootNamespace, logger: o.logger, clock: o.clock, metrics: o.metrics,
        waypoints: o.waypoints && { ...o.waypoints, rootCertPem },
        ...(o.replica ? { leaderElection: { namespace: o.replica.namespace, identity: o.replica.name } } : {}),
      });
      return parts;
    },
  };
}
