// Ingress gateways in the model (pure): a Gateway of class `istio` becomes replica pods that run
// `ambit gateway` and a Service in front of them, named as Istio's gateway deployment controller
// names them: Deployment, ServiceAccount and Service `<gateway>-istio`, pods labelled
// `gateway.networking.k8s.io/gateway-name=<gateway>`. The pods are not in the mesh's data plane
// (dataplane-mode none: the gateway speaks HBONE itself, like a waypoint).
import type { ConfigSet } from '../config/config-set.js';
import { ANNOTATION_WAYPOINT_REPLICAS, LABEL_DATAPLANE_MODE, LABEL_GATEWAY_NAME } from '../config/labels.js';
import { INGRESS_CLASS } from '../config/ingress-resources.js';
import type { SourceLocation } from '../config/resources.js';
import type { ServiceInfo } from './types.js';

/** Istio: the Service's type comes from this annotation on the Gateway (default LoadBalancer). */
export const ANNOTATION_SERVICE_TYPE = 'networking.istio.io/service-type';

export interface IngressGatewayInfo {
  namespace: string;
  name: string;
  /** `<name>-istio`: the ServiceAccount, Deployment and Service. */
  deploymentName: string;
  replicas: number;
  serviceType: string;
  ports: number[];
  source?: SourceLocation;
}

export function ingressGateways(set: ConfigSet): IngressGatewayInfo[] {
  return set.located('Gateway').filter((l) => l.resource.spec.gatewayClassName === INGRESS_CLASS).map((l) => {
    const g = l.resource;
    return {
      namespace: g.metadata.namespace ?? 'default',
      name: g.metadata.name,
      deploymentName: `${g.metadata.name}-istio`,
      replicas: Number(g.metadata.annotations?.[ANNOTATION_WAYPOINT_REPLICAS] ?? '1'),
      serviceType: g.metadata.annotations?.[ANNOTATION_SERVICE_TYPE] ?? 'LoadBalancer',
      ports: [...new Set(g.spec.listeners.filter((x) => ['HTTP', 'HTTPS', 'TCP'].includes(x.protocol)).map((x) => x.port))].sort((a, b) => a - b),
      source: l.source,
    };
  });
}

/** The replica pods of an ingress gateway, as pod drafts (build-model places and numbers them). */
export function ingressReplicaDrafts(g: IngressGatewayInfo): { name: string; namespace: string; labels: Record<string, string>; serviceAccount: string; container: { name: string; image: string; command: string[] }; index: number }[] {
  return Array.from({ length: g.replicas }, (_, i) => ({
    name: `${g.deploymentName}-${i}`, namespace: g.namespace, index: i,
    labels: { [LABEL_GATEWAY_NAME]: g.name, [LABEL_DATAPLANE_MODE]: 'none', 'istio.io/gateway-name': g.name, app: g.deploymentName },
    serviceAccount: g.deploymentName,
    container: { name: 'istio-proxy', image: 'ambit/gateway', command: ['ambit', 'gateway'] },
  }));
}

/** The Service in front of the replicas: every listener port, to the same port on the pods. */
export function ingressService(g: IngressGatewayInfo, clusterDomain: string): ServiceInfo {
  return {
    namespace: g.namespace, name: g.deploymentName, hostname: `${g.deploymentName}.${g.namespace}.svc.${clusterDomain}`, vip: '',
    ports: g.ports.map((p) => ({ name: `port-${p}`, port: p, targetPort: p })),
    selector: { [LABEL_GATEWAY_NAME]: g.name }, labels: { [LABEL_GATEWAY_NAME]: g.name }, endpoints: [], source: g.source,
  };
}
