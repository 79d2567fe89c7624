// What a waypoint Gateway (class istio-waypoint) becomes on a cluster, as Istio makes it: a
// ServiceAccount, a Deployment and a Service, each named after the Gateway, owned by it
// (deleted with it by the garbage collector) and labelled gateway.networking.k8s.io/
// gateway-name. Built with the client library's typed models, so the compiler checks every
// field name. Pure.
//
// Invariants:
// - The Deployment never sets spec.replicas: whoever scales it (an HPA, `kubectl scale`) owns
//   that field; the API server defaults it to 1 on create.
// - Waypoint pods opt out of capture (istio.io/dataplane-mode: none): they terminate HBONE.
// - The pod presents a projected service-account token with audience istio-ca to the
//   control plane, which checks it with a TokenReview.
// - SIGTERM: the replica keeps accepting for 1.2 s, then drains tunnels (--drain-ms); the
//   grace period leaves room for both.
import type * as k8s from '@kubernetes/client-node';
import { LABEL_DATAPLANE_MODE, LABEL_GATEWAY_NAME } from '../config/labels.js';
import { HBONE_PORT } from '../core/mesh-constants.js';

export const WAYPOINT_HBONE_PORT = HBONE_PORT;
export const WAYPOINT_READY_PORT = 15021;
export const WAYPOINT_METRICS_PORT = 15020;
export const TOKEN_AUDIENCE = 'istio-ca';
export const TOKEN_PATH = '/var/run/secrets/tokens/istio-token';
export const ROOT_CERT_CONFIGMAP = 'istio-ca-root-cert';
export const FIELD_MANAGER = 'ambit-control-plane';

export interface WaypointSettings {
  image: string;
  imagePullPolicy?: string;
  /** The control plane's xDS/CA address as pods reach it, e.g. ambit-control-plane.istio-system.svc:15012. */
  xdsAddress: string;
  trustDomain: string;
  rootNamespace: string;
  resources?: k8s.V1ResourceRequirements;
  /** The mesh root, published as ConfigMap istio-ca-root-cert in each waypoint's namespace. */
  rootCertPem?: string;
}

export interface GatewayRef {
  apiVersion: string;
  name: string;
  namespace: string;
  uid: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  infrastructure?: { labels?: Record<string, string>; annotations?: Record<string, string> };
}

export interface WaypointObjects {
  serviceAccount: k8s.V1ServiceAccount;
  deployment: k8s.V1Deployment;
  service: k8s.V1Service;
}

/** What a waypoint's and an ingress gateway's objects differ in. */
export interface ProxyShape {
  /** Name of the ServiceAccount, Deployment and Service. */
  name: string;
  /** `ambit <command>` the container runs. */
  command: 'waypoint' | 'gateway';
  containerName: string;
  /** Container ports besides the status port. */
  ports: k8s.V1ContainerPort[];
  /** Capabilities added (a listener below 1024 needs NET_BIND_SERVICE). */
  addCapabilities?: string[];
  /** The Service's type and ports besides the status port. */
  service: { type: string; ports: k8s.V1ServicePort[] };
}

/**
 * A ServiceAccount, Deployment and Service for one Gateway's proxy replicas, owned by the
 * Gateway and labelled as Istio labels them; what varies between waypoints and ingress
 * gateways is in `shape`.
 */
export function gatewayProxyObjects(gw: GatewayRef, s: WaypointSettings, shape: ProxyShape): WaypointObjects {
  const selector = { [LABEL_GATEWAY_NAME]: gw.name };
  const labels = { ...gw.infrastructure?.labels, ...selector };
  const owner: k8s.V1OwnerReference = { apiVersion: gw.apiVersion, kind: 'Gateway', name: gw.name, uid: gw.uid };
  const meta = (): k8s.V1ObjectMeta => ({
    name: shape.name, namespace: gw.namespace, labels: { ...labels }, ...(gw.infrastructure?.annotations ? { annotations: { ...gw.infrastructure.annotations } } : {}),
    ownerReferences: [{ ...owner }],
  });
  const container: k8s.V1Container = {
    name: shape.containerName,
    image: s.image,
    imagePullPolicy: s.imagePullPolicy ?? 'IfNotPresent',
    args: [
      shape.command, '--gateway', `${gw.namespace}/${gw.name}`, '--in-pod',
      '--xds', s.xdsAddress, '--token-file', TOKEN_PATH, '--root-cert', '/var/run/secrets/istio/root-cert.pem',
      '--admin', `0.0.0.0:${WAYPOINT_READY_PORT}`, '--trust-domain', s.trustDomain, '--root-namespace', s.rootNamespace,
      '--service-account', shape.name,
    ],
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      { name: 'SERVICE_ACCOUNT', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
    ],
    ports: [...shape.ports, { name: 'status-port', containerPort: WAYPOINT_READY_PORT, protocol: 'TCP' }],
    readinessProbe: { httpGet: { path: '/healthz/ready', port: WAYPOINT_READY_PORT }, periodSeconds: 5, failureThreshold: 3 },
    resources: s.resources ?? { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
    securityContext: {
      runAsNonRoot: true, runAsUser: 1337, runAsGroup: 1337, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'], ...(shape.addCapabilities?.length ? { add: shape.addCapabilities } : {}) },
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
          serviceAccountName: shape.name,
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
      type: shape.service.type, selector: { ...selector },
      ports: [{ name: 'status-port', port: WAYPOINT_READY_PORT, targetPort: WAYPOINT_READY_PORT, protocol: 'TCP' }, ...shape.service.ports],
    },
  };
  const serviceAccount: k8s.V1ServiceAccount = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta() };
  return { serviceAccount, deployment, service };
}

export function waypointObjects(gw: GatewayRef, s: WaypointSettings): WaypointObjects {
  return gatewayProxyObjects(gw, s, {
    name: gw.name, command: 'waypoint', containerName: 'waypoint',
    ports: [{ name: 'hbone', containerPort: WAYPOINT_HBONE_PORT, protocol: 'TCP' }],
    service: { type: 'ClusterIP', ports: [{ name: 'mesh', port: WAYPOINT_HBONE_PORT, targetPort: WAYPOINT_HBONE_PORT, protocol: 'TCP', appProtocol: 'all' }] },
  });
}

/**
 * Whether `actual` already has every field `desired` sets (fields the API server defaulted,
 * and fields others own, such as spec.replicas, are ignored).
 */
export function hasFields(actual: unknown, desired: unknown): boolean {
  if (desired === undefined) return true;
  if (Array.isArray(desired)) {
    return Array.isArray(actual) && actual.length === desired.length && desired.every((d, i) => hasFields(actual[i], d));
  }
  if (desired !== null && typeof desired === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false;
    return Object.entries(desired).every(([k, v]) => hasFields((actual as Record<string, unknown>)[k], v));
  }
  // The API server answers an int-or-string port as given; compare as text.
  return actual === desired || (typeof actual !== 'object' && String(actual) === String(desired));
}

/** The mesh root for the pods of a namespace (Istio publishes the same ConfigMap). */
export function rootCertConfigMap(namespace: string, rootCertPem: string): k8s.V1ConfigMap {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: ROOT_CERT_CONFIGMAP, namespace }, data: { 'root-cert.pem': rootCertPem } };
}
