// What an ingress Gateway (class istio) becomes on a cluster, as Istio's gateway deployment
// controller makes it: a ServiceAccount, Deployment and Service named `<gateway>-istio`, owned by
// the Gateway and labelled gateway.networking.k8s.io/gateway-name; the Service of the type the
// Gateway's `networking.istio.io/service-type` annotation names (LoadBalancer by default), with
// a port per listener port. The pods run `ambit gateway --in-pod`. Pure; built from the client
// library's typed models like waypoint-objects.ts, whose invariants it shares (no
// spec.replicas; projected token with audience istio-ca; drain on SIGTERM).
import type * as k8s from '@kubernetes/client-node';
import { LABEL_DATAPLANE_MODE, LABEL_GATEWAY_NAME } from '../config/labels.js';
import { ROOT_CERT_CONFIGMAP, TOKEN_AUDIENCE, TOKEN_PATH, WAYPOINT_READY_PORT, type GatewayRef, type WaypointObjects, type WaypointSettings } from './waypoint-objects.js';

export const ANNOTATION_SERVICE_TYPE = 'networking.istio.io/service-type';

export interface IngressGatewayRef extends GatewayRef {
  listeners: { name: string; port: number; protocol: string }[];
}

export function ingressGatewayName(gateway: string): string {
  return `${gateway}-istio`;
}

export function ingressGatewayObjects(gw: IngressGatewayRef, s: WaypointSettings): WaypointObjects {
  const name = ingressGatewayName(gw.name);
  const selector = { [LABEL_GATEWAY_NAME]: gw.name };
  const labels = { ...gw.infrastructure?.labels, ...selector };
  const owner: k8s.V1OwnerReference = { apiVersion: gw.apiVersion, kind: 'Gateway', name: gw.name, uid: gw.uid };
  const meta = (): k8s.V1ObjectMeta => ({
    name, namespace: gw.namespace, labels: { ...labels }, ...(gw.infrastructure?.annotations ? { annotations: { ...gw.infrastructure.annotations } } : {}),
    ownerReferences: [{ ...owner }],
  });
  const ports = [...new Map(gw.listeners.filter((l) => ['HTTP', 'HTTPS', 'TCP'].includes(l.protocol)).map((l) => [l.port, l])).values()].sort((a, b) => a.port - b.port);
  const container: k8s.V1Container = {
    name: 'istio-proxy',
    image: s.image,
    imagePullPolicy: s.imagePullPolicy ?? 'IfNotPresent',
    args: [
      'gateway', '--gateway', `${gw.namespace}/${gw.name}`, '--in-pod',
      '--xds', s.xdsAddress, '--token-file', TOKEN_PATH, '--root-cert', '/var/run/secrets/istio/root-cert.pem',
      '--admin', `0.0.0.0:${WAYPOINT_READY_PORT}`, '--trust-domain', s.trustDomain, '--root-namespace', s.rootNamespace,
      '--service-account', name,
    ],
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      { name: 'SERVICE_ACCOUNT', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
    ],
    ports: [
      ...ports.map((l) => ({ name: `${l.protocol.toLowerCase()}-${l.port}`, containerPort: l.port, protocol: 'TCP' })),
      { name: 'status-port', containerPort: WAYPOINT_READY_PORT, protocol: 'TCP' },
    ],
    readinessProbe: { httpGet: { path: '/healthz/ready', port: WAYPOINT_READY_PORT }, periodSeconds: 5, failureThreshold: 3 },
    resources: s.resources ?? { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
    // Listener ports below 1024 need NET_BIND_SERVICE (Istio's gateways set the unprivileged port sysctl instead).
    securityContext: {
      runAsNonRoot: true, runAsUser: 1337, runAsGroup: 1337, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'], ...(ports.some((l) => l.port < 1024) ? { add: ['NET_BIND_SERVICE'] } : {}) },
    },
    volumeMounts: [
      { name: 'istio-token', mountPath: '/var/run/secrets/tokens', readOnly: true },
      { name: 'istio-ca-root-cert', mountPath: '/var/run/secrets/istio', readOnly: true },
    ],
  };
  const deployment: k8s.V1Deployment = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta(),
    spec: {
      selector: { matchLabels: { ...selector } },
      template: {
        metadata: { labels: { ...labels, [LABEL_DATAPLANE_MODE]: 'none' } },
        spec: {
          serviceAccountName: name,
          terminationGracePeriodSeconds: 5,
          containers: [container],
          volumes: [
            { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { audience: TOKEN_AUDIENCE, expirationSeconds: 43200, path: 'istio-token' } }] } },
            { name: 'istio-ca-root-cert', configMap: { name: ROOT_CERT_CONFIGMAP, items: [{ key: 'root-cert.pem', path: 'root-cert.pem' }] } },
          ],
        },
      },
    },
  };
  const service: k8s.V1Service = {
    apiVersion: 'v1', kind: 'Service', metadata: meta(),
    spec: {
      type: gw.annotations?.[ANNOTATION_SERVICE_TYPE] ?? 'LoadBalancer', selector: { ...selector },
      ports: [
        { name: 'status-port', port: WAYPOINT_READY_PORT, targetPort: WAYPOINT_READY_PORT, protocol: 'TCP' },
        ...ports.map((l) => ({ name: `${l.protocol.toLowerCase()}-${l.port}`, port: l.port, targetPort: l.port, protocol: 'TCP' })),
      ],
    },
  };
  const serviceAccount: k8s.V1ServiceAccount = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta() };
  return { serviceAccount, deployment, service };
}
