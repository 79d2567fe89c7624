// Which data plane a pod is in, from its labels and its namespace's: the one rule the control
// plane (model), the cluster daemon and the node agent all apply, so they never disagree.
//
//   waypoint pod                                  none (it speaks HBONE itself)
//   namespace in EXCLUDED_NAMESPACES              none, whatever the labels (Istio's node agent default)
//   sidecar.istio.io/inject=true (label or annotation), or the namespace has
//     istio-injection=enabled and the pod does not say "false"       sidecar
//   istio.io/dataplane-mode on the pod: none | ambient               that
//   else istio.io/dataplane-mode=ambient on the namespace            ambient
//   else                                                             none
import { LABEL_DATAPLANE_MODE } from '../config/labels.js';
import type { DataplaneMode } from './types.js';

export const SIDECAR_INJECT_LABEL = 'sidecar.istio.io/inject';
export const NAMESPACE_INJECTION_LABEL = 'istio-injection';
/** Never enrolled (Istio's istio-cni `excludeNamespaces` default). */
export const EXCLUDED_NAMESPACES: readonly string[] = ['kube-system'];

export interface EnrolmentInput {
  namespace: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  /** Set for a waypoint's own pods. */
  waypointOf?: unknown;
}

export function dataplaneMode(pod: EnrolmentInput, nsLabels: Record<string, string>): DataplaneMode {
  if (pod.waypointOf) return 'none';
  if (EXCLUDED_NAMESPACES.includes(pod.namespace)) return 'none';
  const annotations = pod.annotations ?? {};
  if (pod.labels[SIDECAR_INJECT_LABEL] === 'true' || annotations[SIDECAR_INJECT_LABEL] === 'true') return 'sidecar';
  if (nsLabels[NAMESPACE_INJECTION_LABEL] === 'enabled' && pod.labels[SIDECAR_INJECT_LABEL] !== 'false') return 'sidecar';
  const podMode = pod.labels[LABEL_DATAPLANE_MODE];
  if (podMode === 'none') return 'none';
  if (podMode === 'ambient') return 'ambient';
  return nsLabels[LABEL_DATAPLANE_MODE] === 'ambient' ? 'ambient' : 'none';
}
