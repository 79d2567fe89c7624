// The labels and annotations that steer the mesh, with Istio's names.
export const LABEL_DATAPLANE_MODE = 'istio.io/dataplane-mode';
export const LABEL_USE_WAYPOINT = 'istio.io/use-waypoint';
export const LABEL_USE_WAYPOINT_NAMESPACE = 'istio.io/use-waypoint-namespace';
export const LABEL_WAYPOINT_FOR = 'istio.io/waypoint-for';
export const WAYPOINT_FOR_VALUES = ['service', 'workload', 'all', 'none'] as const;
export type WaypointFor = (typeof WAYPOINT_FOR_VALUES)[number];
export const LABEL_GATEWAY_NAME = 'gateway.networking.k8s.io/gateway-name';
export const ANNOTATION_DRY_RUN = 'istio.io/dry-run';
export const LABEL_CANONICAL_NAME = 'service.istio.io/canonical-name';
export const LABEL_CANONICAL_REVISION = 'service.istio.io/canonical-revision';
export const ANNOTATION_WAYPOINT_REPLICAS = 'ambit.dev/replicas';
export const WAYPOINT_CLASS = 'istio-waypoint';
