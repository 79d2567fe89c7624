// What an ingress Gateway (class istio) becomes on a cluster, as Istio's gateway deployment
// controller makes it: a ServiceAccount, Deployment and Service named `<gateway>-istio`, owned by
// the Gateway and labelled gateway.networking.k8s.io/gateway-name; the Service of the type the
// Gateway's `networking.istio.io/service-type` annotation names (LoadBalancer by default), with
// a port per listener port. The pods run `ambit gateway --in-pod`. Pure; built from the client
// library's typed models like waypoint-objects.ts, whose invariants it shares (no
// spec.replicas; projected token with audience istio-ca; drain on SIGTERM).
import { gatewayProxyObjects, type GatewayRef, type WaypointObjects, type WaypointSettings } from './waypoint-objects.js';

export const ANNOTATION_SERVICE_TYPE = 'networking.istio.io/service-type';

export interface IngressGatewayRef extends GatewayRef {
  listeners: { name: string; port: number; protocol: string }[];
}

export function ingressGatewayName(gateway: string): string {
  return `${gateway}-istio`;
}

export function ingressGatewayObjects(gw: IngressGatewayRef, s: WaypointSettings): WaypointObjects {
  const ports = [...new Map(gw.listeners.filter((l) => ['HTTP', 'HTTPS', 'TCP'].includes(l.protocol)).map((l) => [l.port, l])).values()].sort((a, b) => a.port - b.port);
  return gatewayProxyObjects(gw, s, {
    name: ingressGatewayName(gw.name), command: 'gateway', containerName: 'istio-proxy',
    ports: ports.map((l) => ({ name: `${l.protocol.toLowerCase()}-${l.port}`, containerPort: l.port, protocol: 'TCP' })),
    // Listener ports below 1024 need NET_BIND_SERVICE (Istio's gateways set the unprivileged port sysctl instead).
    addCapabilities: ports.some((l) => l.port < 1024) ? ['NET_BIND_SERVICE'] : [],
    service: {
      type: gw.annotations?.[ANNOTATION_SERVICE_TYPE] ?? 'LoadBalancer',
      ports: ports.map((l) => ({ name: `${l.protocol.toLowerCase()}-${l.port}`, port: l.port, targetPort: l.port, protocol: 'TCP' })),
    },
  });
}
