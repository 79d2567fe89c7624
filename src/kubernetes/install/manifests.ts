// The objects of an ambient install, as `istioctl install --set profile=ambient` makes them
// (Ambit's names): namespace, CRDs for the Istio kinds Ambit serves, least-privilege RBAC, the
// control plane (Deployment, Service, PodDisruptionBudget), the ztunnel DaemonSet, the node
// agent DaemonSet (installs ambit-cni and chains it into the node's CNI config), and the
// GatewayClass istio-waypoint. Built with the client library's typed models (the compiler
// checks field names); pure and deterministic: the same values give the same objects.
import type * as k8s from '@kubernetes/client-node';
import { crdFor, CRD_KINDS } from './crds.js';
import type { InstallValues } from './values.js';
import { toWire } from './wire.js';
import { LEADER_LEASE } from '../leader-election.js';
import { formatSpiffe } from '../../identity/spiffe.js';

export const CONTROL_PLANE = 'ambit-control-plane';
export const ZTUNNEL = 'ztunnel';
export const NODE_AGENT = 'ambit-node-agent';
export const XDS_PORT = 15012;
export const MONITORING_PORT = 15014;
const LABELS = { 'app.kubernetes.io/part-of': 'ambit', 'app.kubernetes.io/managed-by': 'ambit-install' };
const TOKEN_VOLUME: k8s.V1Volume = { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } }] } };
const ROOT_CERT_VOLUME: k8s.V1Volume = { name: 'istio-ca-root-cert', configMap: { name: 'istio-ca-root-cert', optional: true } };
const ENV_FROM_POD: k8s.V1EnvVar[] = [
  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
  { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
  { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
];
const NON_ROOT: k8s.V1SecurityContext = {
  runAsNonRoot: true, runAsUser: 1337, runAsGroup: 1337, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
};

function meta(name: string, namespace?: string, app = name): k8s.V1ObjectMeta {
  return { name, ...(namespace ? { namespace } : {}), labels: { app, ...LABELS } };
}

function image(v: InstallValues): string {
  return `${v.image.repository}:${v.image.tag}`;
}

const rule = (apiGroups: string[], resources: string[], verbs: string[]): k8s.V1PolicyRule => ({ apiGroups, resources, verbs });

function rbac(v: InstallValues): k8s.KubernetesObject[] {
  const ns = v.namespace;
  const read = ['get', 'list', 'watch'];
  const istio = ['authorizationpolicies', 'peerauthentications', 'requestauthentications'];
  const controlPlaneRole: k8s.V1ClusterRole = {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: meta(CONTROL_PLANE),
    rules: [
      rule([''], ['namespaces', 'pods', 'services'], read),
      rule(['discovery.k8s.io'], ['endpointslices'], read),
      rule(['security.istio.io'], istio, read),
      rule(['security.istio.io'], istio.map((r) => `${r}/status`), ['patch', 'update']),
      rule(['networking.istio.io'], ['virtualservices', 'serviceentries', 'destinationrules'], read),
      rule(['networking.istio.io'], ['virtualservices/status'], ['patch', 'update']),
      rule(['telemetry.istio.io'], ['telemetries'], read),
      rule(['telemetry.istio.io'], ['telemetries/status'], ['patch', 'update']),
      rule(['gateway.networking.k8s.io'], ['gateways', 'httproutes', 'grpcroutes', 'tcproutes', 'referencegrants', 'gatewayclasses'], read),
      // Certificates of ingress listeners and egress TLS origination (only used ones reach a proxy).
      rule([''], ['secrets'], read),
      rule(['gateway.networking.k8s.io'], ['gateways/status', 'httproutes/status'], ['patch', 'update']),
      rule([''], ['events'], ['create', 'patch']),
      rule(['authentication.k8s.io'], ['tokenreviews'], ['create']),
      // Waypoints: what the control plane makes for each waypoint Gateway (server-side apply).
      ...(v.controlPlane.waypoints ? [
        rule(['apps'], ['deployments'], [...read, 'create', 'patch']),
        rule([''], ['serviceaccounts'], [...read, 'create', 'patch']),
        rule([''], ['services'], ['create', 'patch']),
        rule([''], ['configmaps'], ['create', 'patch']),
      ] : []),
    ],
  };
  const meshConfigRole: k8s.V1Role = {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(CONTROL_PLANE, ns),
    rules: [
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['istio'], verbs: read }, rule([''], ['configmaps'], ['list', 'watch']),
      // Leader election among replicas (status and waypoint/gateway objects): its one Lease.
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [LEADER_LEASE], verbs: ['get', 'update'] },
      rule(['coordination.k8s.io'], ['leases'], ['create']),
    ],
  };
  // The node agent watches its node's pods and all namespaces, and marks captured pods
  // (ambient.istio.io/redirection) with a patch; nothing else.
  const nodeAgentRole: k8s.V1ClusterRole = {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: meta(NODE_AGENT),
    rules: [rule([''], ['pods', 'namespaces'], read), rule([''], ['pods'], ['patch'])],
  };
  const bind = (name: string, sa: string): k8s.V1ClusterRoleBinding => ({
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: meta(name),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name }, subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
  });
  const meshConfigBinding: k8s.V1RoleBinding = {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: meta(CONTROL_PLANE, ns),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: CONTROL_PLANE }, subjects: [{ kind: 'ServiceAccount', name: CONTROL_PLANE, namespace: ns }],
  };
  return [controlPlaneRole, bind(CONTROL_PLANE, CONTROL_PLANE), meshConfigRole, meshConfigBinding, nodeAgentRole, bind(NODE_AGENT, NODE_AGENT)];
}

function controlPlane(v: InstallValues): k8s.KubernetesObject[] {
  const ns = v.namespace;
  const selector = { app: CONTROL_PLANE };
  const deployment: k8s.V1Deployment = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta(CONTROL_PLANE, ns),
    spec: {
      replicas: v.controlPlane.replicas, selector: { matchLabels: selector },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels: { ...selector, 'istio.io/dataplane-mode': 'none' } },
        spec: {
          serviceAccountName: CONTROL_PLANE,
          securityContext: { fsGroup: 1337 },
          containers: [{
            name: 'control-plane', image: image(v), imagePullPolicy: v.image.pullPolicy,
            args: [
              'control-plane', '--kubernetes', '--ca', '/etc/cacerts', '--xds', `0.0.0.0:${XDS_PORT}`, '--admin', `0.0.0.0:${MONITORING_PORT}`,
              '--admin-token-file', '/var/run/ambit/admin-token', '--trust-domain', v.trustDomain, '--root-namespace', ns,
              '--identity', formatSpiffe({ trustDomain: v.trustDomain, namespace: ns, serviceAccount: CONTROL_PLANE }), '--ztunnel-sa', `${ns}/${ZTUNNEL}`,
              '--cert-ttl', String(v.controlPlane.certTtlSeconds),
              ...(v.controlPlane.waypoints ? ['--waypoint-image', image(v), '--pod-xds', `${CONTROL_PLANE}.${ns}.svc:${XDS_PORT}`] : []),
            ],
            env: ENV_FROM_POD,
            ports: [{ name: 'grpc-xds', containerPort: XDS_PORT, protocol: 'TCP' }, { name: 'http-monitoring', containerPort: MONITORING_PORT, protocol: 'TCP' }],
            readinessProbe: { httpGet: { path: '/ready', port: MONITORING_PORT }, periodSeconds: 3, timeoutSeconds: 5 },
            livenessProbe: { tcpSocket: { port: MONITORING_PORT }, initialDelaySeconds: 10, periodSeconds: 10 },
            resources: v.controlPlane.resources as k8s.V1ResourceRequirements,
            securityContext: NON_ROOT,
            volumeMounts: [{ name: 'cacerts', mountPath: '/etc/cacerts', readOnly: true }, { name: 'run', mountPath: '/var/run/ambit' }],
          }],
          volumes: [{ name: 'cacerts', secret: { secretName: 'cacerts' } }, { name: 'run', emptyDir: { medium: 'Memory' } }],
        },
      },
    },
  };
  const service: k8s.V1Service = {
    apiVersion: 'v1', kind: 'Service', metadata: meta(CONTROL_PLANE, ns),
    spec: {
      selector, type: 'ClusterIP',
      ports: [
        { name: 'grpc-xds', port: XDS_PORT, targetPort: XDS_PORT, protocol: 'TCP' },
        { name: 'http-monitoring', port: MONITORING_PORT, targetPort: MONITORING_PORT, protocol: 'TCP' },
      ],
    },
  };
  const pdb: k8s.V1PodDisruptionBudget = {
    apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: meta(CONTROL_PLANE, ns),
    spec: { selector: { matchLabels: selector }, ...(v.controlPlane.replicas > 1 ? { minAvailable: 1 } : { maxUnavailable: 1 }) },
  };
  return [deployment, service, pdb];
}

function ztunnel(v: InstallValues): k8s.V1DaemonSet {
  const ns = v.namespace;
  const selector = { app: ZTUNNEL };
  return {
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: meta(ZTUNNEL, ns),
    spec: {
      selector: { matchLabels: selector },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: { labels: { ...selector, 'istio.io/dataplane-mode': 'none' } },
        spec: {
          serviceAccountName: ZTUNNEL, priorityClassName: 'system-node-critical', terminationGracePeriodSeconds: 30,
          tolerations: [{ operator: 'Exists' }],
          containers: [{
            name: 'ztunnel', image: image(v), imagePullPolicy: v.image.pullPolicy,
            args: [
              'ztunnel', '--node', '$(NODE_NAME)', '--xds', `${CONTROL_PLANE}.${ns}.svc:${XDS_PORT}`,
              '--token-file', '/var/run/secrets/tokens/istio-token', '--root-cert', '/var/run/secrets/istio/root-cert.pem',
              '--zds', '/var/run/ambit/ztunnel.sock', '--metrics', '0.0.0.0:15020', '--readiness', '0.0.0.0:15021',
            ],
            env: ENV_FROM_POD,
            ports: [{ name: 'http-metrics', containerPort: 15020, protocol: 'TCP' }, { name: 'http-ready', containerPort: 15021, protocol: 'TCP' }],
            readinessProbe: { httpGet: { path: '/healthz/ready', port: 15021 }, periodSeconds: 5 },
            resources: v.ztunnel.resources as k8s.V1ResourceRequirements,
            // It opens sockets inside pods' network namespaces, marks them and binds
            // transparently: root with these capabilities, nothing else.
            securityContext: {
              runAsUser: 0, runAsNonRoot: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false,
              capabilities: { add: ['NET_ADMIN', 'SYS_ADMIN', 'NET_RAW'], drop: ['ALL'] },
            },
            volumeMounts: [
              { name: 'istio-token', mountPath: '/var/run/secrets/tokens', readOnly: true },
              { name: 'istio-ca-root-cert', mountPath: '/var/run/secrets/istio', readOnly: true },
              { name: 'ambit-run', mountPath: '/var/run/ambit' },
            ],
          }],
          volumes: [TOKEN_VOLUME, ROOT_CERT_VOLUME, { name: 'ambit-run', hostPath: { path: '/var/run/ambit', type: 'DirectoryOrCreate' } }],
        },
      },
    },
  };
}

function nodeAgent(v: InstallValues): k8s.V1DaemonSet {
  const ns = v.namespace;
  const selector = { app: NODE_AGENT };
  // The primary network's configuration is the first conflist of the node's CNI directory, as
  // istio-cni picks it.
  const agent = [
    'conf=$(ls /host/etc/cni/net.d/*.conflist 2>/dev/null | head -n 1)',
    '[ -n "$conf" ] || { echo "no CNI .conflist in ' + v.cni.confDir + '" >&2; exit 1; }',
    // Pods and namespace labels from the API server (Pods of NODE_NAME, from the downward API),
    // with the node agent's own least-privilege ServiceAccount; no admin token.
    'exec ambit node-agent --kubernetes --dir /var/run/ambit --cni-conf "$conf"',
  ].join('\n');
  return {
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: meta(NODE_AGENT, ns),
    spec: {
      selector: { matchLabels: selector },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: { labels: { ...selector, 'istio.io/dataplane-mode': 'none' } },
        spec: {
          serviceAccountName: NODE_AGENT, priorityClassName: 'system-node-critical', hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet',
          terminationGracePeriodSeconds: 5, tolerations: [{ operator: 'Exists' }],
          initContainers: [{
            name: 'install-cni', image: image(v), imagePullPolicy: v.image.pullPolicy,
            command: ['sh', '-c', 'cp /opt/ambit/native/build/ambit-cni /host/opt/cni/bin/ambit-cni.tmp && mv /host/opt/cni/bin/ambit-cni.tmp /host/opt/cni/bin/ambit-cni'],
            securityContext: { runAsUser: 0, runAsNonRoot: false, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['DAC_OVERRIDE', 'CHOWN', 'FOWNER'] } },
            volumeMounts: [{ name: 'cni-bin', mountPath: '/host/opt/cni/bin' }],
          }],
          containers: [{
            name: 'node-agent', image: image(v), imagePullPolicy: v.image.pullPolicy,
            command: ['sh', '-c', agent],
            env: ENV_FROM_POD,
            resources: v.nodeAgent.resources as k8s.V1ResourceRequirements,
            // It enters pods' network namespaces to install capture rules.
            securityContext: { privileged: true, runAsUser: 0, runAsNonRoot: false },
            volumeMounts: [
              { name: 'cni-net-dir', mountPath: '/host/etc/cni/net.d' },
              { name: 'ambit-run', mountPath: '/var/run/ambit' },
              { name: 'netns', mountPath: '/var/run/netns', mountPropagation: 'HostToContainer' },
            ],
          }],
          volumes: [
            { name: 'cni-bin', hostPath: { path: v.cni.binDir, type: 'DirectoryOrCreate' } },
            { name: 'cni-net-dir', hostPath: { path: v.cni.confDir, type: 'DirectoryOrCreate' } },
            { name: 'ambit-run', hostPath: { path: '/var/run/ambit', type: 'DirectoryOrCreate' } },
            { name: 'netns', hostPath: { path: '/var/run/netns', type: 'DirectoryOrCreate' } },
          ],
        },
      },
    },
  };
}

/** What `ambit uninstall` runs on every node to take ambit-cni out of the CNI config. */
export function cniCleanup(v: InstallValues): k8s.V1DaemonSet {
  const selector = { app: 'ambit-cni-cleanup' };
  return {
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: meta('ambit-cni-cleanup', v.namespace),
    spec: {
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: { ...selector, 'istio.io/dataplane-mode': 'none' } },
        spec: {
          priorityClassName: 'system-node-critical', tolerations: [{ operator: 'Exists' }], terminationGracePeriodSeconds: 1,
          containers: [{
            name: 'cni-cleanup', image: image(v), imagePullPolicy: v.image.pullPolicy,
            args: ['x', 'cni-cleanup', '--conf-dir', '/host/etc/cni/net.d', '--bin-dir', '/host/opt/cni/bin', '--then-wait'],
            readinessProbe: { exec: { command: ['cat', '/tmp/cni-cleanup-done'] }, periodSeconds: 2 },
            securityContext: { runAsUser: 0, runAsNonRoot: false, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['DAC_OVERRIDE', 'FOWNER'] } },
            volumeMounts: [{ name: 'cni-bin', mountPath: '/host/opt/cni/bin' }, { name: 'cni-net-dir', mountPath: '/host/etc/cni/net.d' }],
          }],
          volumes: [
            { name: 'cni-bin', hostPath: { path: v.cni.binDir, type: 'DirectoryOrCreate' } },
            { name: 'cni-net-dir', hostPath: { path: v.cni.confDir, type: 'DirectoryOrCreate' } },
          ],
        },
      },
    },
  };
}

/** The GatewayClass of waypoints (a Gateway API kind: its CRD is a prerequisite). */
function waypointClass(): k8s.KubernetesObject & { spec: { controllerName: string; description: string } } {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'istio-waypoint', labels: { ...LABELS } },
    spec: { controllerName: 'istio.io/mesh-controller', description: 'The default Istio waypoint GatewayClass (served by Ambit)' },
  };
}

/** The GatewayClass of ingress gateways (Istio's `istio` class, served by Ambit's gateway). */
function ingressClass(): k8s.KubernetesObject & { spec: { controllerName: string; description: string } } {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'istio', labels: { ...LABELS } },
    spec: { controllerName: 'istio.io/gateway-controller', description: 'The default Istio GatewayClass (ingress gateways served by Ambit)' },
  };
}

/** Every object of the install, in apply order, as typed models (CRDs already in wire form). */
export function installObjects(v: InstallValues): (k8s.KubernetesObject | Record<string, unknown>)[] {
  const ns = v.namespace;
  const namespace: k8s.V1Namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { ...LABELS } } };
  const sa = (name: string): k8s.V1ServiceAccount => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(name, ns) });
  return [
    namespace,
    ...CRD_KINDS.map((k) => crdFor(k, LABELS)),
    sa(CONTROL_PLANE), sa(ZTUNNEL), sa(NODE_AGENT),
    ...rbac(v),
    ...controlPlane(v),
    ztunnel(v),
    nodeAgent(v),
    waypointClass(),
    ingressClass(),
  ];
}

/** The same objects as the API server reads them. */
export function installManifests(v: InstallValues): Record<string, unknown>[] {
  return installObjects(v).map((o) => ('spec' in o && (o as { kind?: string }).kind === 'CustomResourceDefinition' ? o as Record<string, unknown> : toWire(o as k8s.KubernetesObject)));
}
