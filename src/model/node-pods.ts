// What a node agent knows of the pods of its node: the view every pod source hands it (the
// control plane's admin API for the local cluster, Pod and Namespace informers on Kubernetes).
// Plain data, here so that the node agent and the Kubernetes room share one definition
// without importing each other.

export interface AgentPod {
  /** The workload uid the control plane gives the pod (`<cluster id>//Pod/<ns>/<name>`); also its ZDS uid. */
  uid: string;
  namespace: string;
  name: string;
  node: string;
  /** status.podIP; '' while the pod has none yet (its sandbox is being made: CNI ADD knows it). */
  ip: string;
  serviceAccount: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Set for a waypoint's own pods (never captured). */
  waypointOf: unknown;
}

export interface PodView {
  /** Moves whenever the view differs from the one before. */
  version: number;
  /** Pods of this node by `namespace/name`. */
  pods: Map<string, AgentPod>;
  namespaceLabels: Map<string, Record<string, string>>;
}

/** Istio's pod annotation: "enabled" while the node agent redirects the pod's traffic. */
export const REDIRECTION_ANNOTATION = 'ambient.istio.io/redirection';

export const podKey = (namespace: string, name: string): string => `${namespace}/${name}`;
