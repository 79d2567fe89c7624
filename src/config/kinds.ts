// The kinds Ambit reads, their accepted apiVersions, and the shape of each. Kubernetes
// fields that Ambit does not use are accepted (so that real manifests validate) but typed
// loosely; unknown fields are errors, as with `kubectl apply --validate=strict`.
import { any, arr, bool, int, intOrString, labels, map, obj, str, strList, type Schema } from './schema.js';
import type { ResourceKind } from './resources.js';
import { destinationRuleSpec, secretFields, serviceEntrySpec } from './egress-kinds.js';
import { allowedRoutes, grpcRouteSpec, listenerTls, referenceGrantSpec, tcpRouteSpec } from './ingress-kinds.js';

export interface KindInfo {
  kind: ResourceKind;
  apiVersions: readonly string[];
  namespaced: boolean;
  schema: Schema;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const metadata = (nameRequired = true): Schema => obj({
  name: str({ pattern: DNS_SUBDOMAIN, patternHint: 'a valid name (lowercase letters, digits, "-" and ".", starting and ending with a letter or digit)' }),
  generateName: str(),
  namespace: str({ pattern: DNS_LABEL, patternHint: 'a valid namespace name (lowercase letters, digits and "-")' }),
  labels,
  annotations: map(str(), 'annotations'),
  uid: str(),
  resourceVersion: str(),
  generation: int(),
  creationTimestamp: any,
  deletionTimestamp: any,
  ownerReferences: any,
  finalizers: strList,
  managedFields: any,
}, nameRequired ? ['name'] : []);

const top = (spec: Schema | undefined, extra: Record<string, Schema> = {}, required: string[] = []): Schema => obj({
  apiVersion: str(),
  kind: str(),
  metadata: metadata(),
  ...(spec ? { spec } : {}),
  status: any,
  ...extra,
}, ['apiVersion', 'kind', 'metadata', ...required]);

const envVar = obj({ name: str({ nonEmpty: true }), value: str(), valueFrom: any }, ['name']);

const container = obj({
  name: str({ pattern: DNS_LABEL, patternHint: 'a valid container name' }),
  image: str(),
  imagePullPolicy: str({ enum: ['Always', 'IfNotPresent', 'Never'] }),
  command: strList,
  args: strList,
  env: arr(envVar),
  envFrom: any,
  ports: arr(obj({
    name: str(),
    containerPort: int(1, 65535),
    protocol: str({ enum: ['TCP', 'UDP', 'SCTP'] }),
    hostPort: int(1, 65535),
    hostIP: str(),
  }, ['containerPort'])),
  workingDir: str(),
  resources: any,
  readinessProbe: any,
  livenessProbe: any,
  startupProbe: any,
  lifecycle: any,
  securityContext: obj({
    runAsUser: int(0, 2147483647), runAsGroup: int(0, 2147483647), runAsNonRoot: bool,
    allowPrivilegeEscalation: bool, privileged: bool, readOnlyRootFilesystem: bool, capabilities: any, seccompProfile: any,
    seLinuxOptions: any, appArmorProfile: any, procMount: str(), windowsOptions: any,
  }),
  volumeMounts: any,
  volumeDevices: any,
  terminationMessagePath: str(),
  terminationMessagePolicy: str(),
  stdin: bool,
  stdinOnce: bool,
  tty: bool,
  restartPolicy: str(),
  resizePolicy: any,
}, ['name']);

const podSpec = obj({
  nodeName: str({ pattern: DNS_SUBDOMAIN, patternHint: 'a valid node name' }),
  serviceAccountName: str({ pattern: DNS_SUBDOMAIN, patternHint: 'a valid service account name' }),
  serviceAccount: str({ pattern: DNS_SUBDOMAIN, patternHint: 'a valid service account name' }),
  containers: arr(container, 1),
  initContainers: arr(container),
  restartPolicy: str({ enum: ['Always', 'OnFailure', 'Never'] }),
  terminationGracePeriodSeconds: int(0),
  activeDeadlineSeconds: int(0),
  dnsPolicy: str(),
  dnsConfig: any,
  hostname: str(),
  subdomain: str(),
  hostNetwork: bool,
  hostPID: bool,
  hostIPC: bool,
  shareProcessNamespace: bool,
  nodeSelector: labels,
  affinity: any,
  tolerations: any,
  topologySpreadConstraints: any,
  volumes: any,
  securityContext: obj({
    runAsUser: int(0, 2147483647), runAsGroup: int(0, 2147483647), runAsNonRoot: bool, fsGroup: int(0), fsGroupChangePolicy: str(),
    supplementalGroups: arr(int(0)), supplementalGroupsPolicy: str(), seccompProfile: any, seLinuxOptions: any, appArmorProfile: any,
    sysctls: any, windowsOptions: any, seLinuxChangePolicy: str(),
  }),
  imagePullSecrets: any,
  priority: int(),
  priorityClassName: str(),
  schedulerName: str(),
  automountServiceAccountToken: bool,
  enableServiceLinks: bool,
  hostAliases: any,
  readinessGates: any,
  runtimeClassName: str(),
  preemptionPolicy: str(),
  overhead: any,
}, ['containers']);

const podStatus = obj({
  podIP: str(),
  podIPs: arr(obj({ ip: str() }, ['ip'])),
  hostIP: str(),
  hostIPs: any,
  phase: str(),
  conditions: any,
  containerStatuses: any,
  initContainerStatuses: any,
  qosClass: str(),
  startTime: any,
  message: str(),
  reason: str(),
});

export const labelSelector = obj({
  matchLabels: labels,
  matchExpressions: arr(obj({
    key: str({ nonEmpty: true }),
    operator: str({ enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }),
    values: strList,
  }, ['key', 'operator'])),
}, [], 'a label selector (matchLabels / matchExpressions)');

const workloadSelector = obj({ matchLabels: labels }, [], 'a workload selector with matchLabels');

const policyTargetRef = obj({
  group: str(),
  kind: str({ nonEmpty: true }),
  name: str({ nonEmpty: true }),
  namespace: str(),
}, ['kind', 'name'], 'a target reference {group, kind, name}');

const ruleSource = obj({
  principals: strList, notPrincipals: strList,
  requestPrincipals: strList, notRequestPrincipals: strList,
  namespaces: strList, notNamespaces: strList,
  serviceAccounts: strList, notServiceAccounts: strList,
  ipBlocks: strList, notIpBlocks: strList,
  remoteIpBlocks: strList, notRemoteIpBlocks: strList,
});

const ruleOperation = obj({
  hosts: strList, notHosts: strList,
  ports: strList, notPorts: strList,
  methods: strList, notMethods: strList,
  paths: strList, notPaths: strList,
});

const authorizationPolicySpec = obj({
  selector: workloadSelector,
  targetRef: policyTargetRef,
  targetRefs: arr(policyTargetRef),
  action: str({ enum: ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] }),
  provider: obj({ name: str({ nonEmpty: true }) }, ['name']),
  rules: arr(obj({
    from: arr(obj({ source: ruleSource }, ['source'])),
    to: arr(obj({ operation: ruleOperation }, ['operation'])),
    when: arr(obj({ key: str({ nonEmpty: true }), values: strList, notValues: strList }, ['key'])),
  })),
});

const telemetrySpec = obj({
  selector: workloadSelector,
  targetRef: policyTargetRef,
  targetRefs: arr(policyTargetRef),
  accessLogging: arr(obj({
    match: obj({ mode: str({ enum: ['CLIENT_AND_SERVER', 'CLIENT', 'SERVER'] }) }),
    providers: arr(obj({ name: str({ nonEmpty: true }) }, ['name'])),
    disabled: bool,
    filter: obj({ expression: str() }),
  })),
  metrics: any,
  tracing: any,
});

const mtlsMode = str({ enum: ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] });
const peerAuthenticationSpec = obj({
  selector: workloadSelector,
  mtls: obj({ mode: mtlsMode }),
  portLevelMtls: map(obj({ mode: mtlsMode }), 'port: {mode}'),
});

const requestAuthenticationSpec = obj({
  selector: workloadSelector,
  targetRef: policyTargetRef,
  targetRefs: arr(policyTargetRef),
  jwtRules: arr(obj({
    issuer: str({ nonEmpty: true }),
    audiences: strList,
    jwks: str(),
    jwksUri: str(),
    jwks_uri: str(),
    fromHeaders: arr(obj({ name: str({ nonEmpty: true }), prefix: str() }, ['name'])),
    fromParams: strList,
    fromCookies: strList,
    outputPayloadToHeader: str(),
    forwardOriginalToken: bool,
    outputClaimToHeaders: arr(obj({ header: str(), claim: str() }, ['header', 'claim'])),
    timeout: str(),
  }, ['issuer'])),
});

const gatewaySpec = obj({
  gatewayClassName: str({ nonEmpty: true }),
  listeners: arr(obj({
    name: str({ nonEmpty: true }),
    port: int(1, 65535),
    protocol: str({ nonEmpty: true }),
    hostname: str(),
    tls: listenerTls,
    allowedRoutes,
  }, ['name', 'port', 'protocol']), 1),
  addresses: any,
  infrastructure: obj({ labels, annotations: map(str(), 'annotations'), parametersRef: any }),
}, ['gatewayClassName', 'listeners']);

const parentRef = obj({
  group: str(), kind: str(), name: str({ nonEmpty: true }), namespace: str(), port: int(1, 65535), sectionName: str(),
}, ['name']);

const backendRef = {
  group: str(), kind: str(), name: str({ nonEmpty: true }), namespace: str(), port: int(1, 65535),
};

const headerList = arr(obj({ name: str({ nonEmpty: true }), value: str() }, ['name', 'value']));
const headerFilter = obj({ set: headerList, add: headerList, remove: strList });
const pathModifier = obj({
  type: str({ enum: ['ReplaceFullPath', 'ReplacePrefixMatch'] }),
  replaceFullPath: str(),
  replacePrefixMatch: str(),
}, ['type']);

const httpFilter = obj({
  type: str({ enum: ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite', 'RequestMirror', 'ExtensionRef'] }),
  requestHeaderModifier: headerFilter,
  responseHeaderModifier: headerFilter,
  requestRedirect: obj({
    scheme: str({ enum: ['http', 'https'] }),
    hostname: str(),
    path: pathModifier,
    port: int(1, 65535),
    statusCode: int(),
  }),
  urlRewrite: obj({ hostname: str(), path: pathModifier }),
  requestMirror: obj({ backendRef: obj(backendRef, ['name']), percent: int(0, 100), fraction: obj({ numerator: int(0), denominator: int(1) }, ['numerator']) }, ['backendRef']),
  extensionRef: any,
}, ['type']);

const headerMatch = obj({
  type: str({ enum: ['Exact', 'RegularExpression'] }),
  name: str({ nonEmpty: true }),
  value: str(),
}, ['name', 'value']);

const httpRouteSpec = obj({
  parentRefs: arr(parentRef),
  hostnames: strList,
  rules: arr(obj({
    name: str(),
    matches: arr(obj({
      path: obj({ type: str({ enum: ['Exact', 'PathPrefix', 'RegularExpression'] }), value: str() }),
      headers: arr(headerMatch),
      queryParams: arr(headerMatch),
      method: str({ enum: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] }),
    })),
    filters: arr(httpFilter),
    backendRefs: arr(obj({ ...backendRef, weight: int(0, 1000000), filters: arr(httpFilter) }, ['name'])),
    timeouts: obj({ request: str(), backendRequest: str() }),
    retry: obj({ codes: arr(int(400, 599)), attempts: int(0, 100), backoff: str() }),
    sessionPersistence: any,
  })),
});

// ---- networking.istio.io VirtualService (the HTTP part; tcp/tls are accepted and ignored) ----
const stringMatch = obj({ exact: str(), prefix: str(), regex: str() }, [], 'a string match {exact | prefix | regex}');
// percentage.value is a double; the schema language has only whole numbers, so the value is
// checked in validate-virtual-service.ts.
const percent = obj({ value: any }, [], 'a percentage {value: 0..100}');
const istioDestination = obj({
  host: str({ nonEmpty: true }),
  subset: str(),
  port: obj({ number: int(1, 65535) }),
}, ['host'], 'a destination {host, port: {number}}');
const headerOperations = obj({ set: map(str(), 'header: value'), add: map(str(), 'header: value'), remove: strList });
const istioHeaders = obj({ request: headerOperations, response: headerOperations });

const virtualServiceHttpRoute = obj({
  name: str(),
  match: arr(obj({
    name: str(),
    uri: stringMatch,
    scheme: stringMatch,
    method: stringMatch,
    authority: stringMatch,
    headers: map(stringMatch, 'header: string match'),
    withoutHeaders: map(stringMatch, 'header: string match'),
    queryParams: map(stringMatch, 'parameter: string match'),
    port: int(1, 65535),
    ignoreUriCase: bool,
    sourceLabels: labels,
    sourceNamespace: str(),
    gateways: strList,
    statPrefix: str(),
  })),
  route: arr(obj({ destination: istioDestination, weight: int(0, 1000000), headers: istioHeaders }, ['destination'])),
  redirect: obj({
    uri: str(),
    authority: str(),
    port: int(1, 65535),
    derivePort: str({ enum: ['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'] }),
    scheme: str(),
    redirectCode: int(),
  }),
  directResponse: any,
  delegate: any,
  rewrite: obj({ uri: str(), authority: str(), uriRegexRewrite: obj({ match: str(), rewrite: str() }, ['match', 'rewrite']) }),
  timeout: str(),
  retries: obj({ attempts: int(0, 100), perTryTimeout: str(), retryOn: str(), retryRemoteLocalities: bool, backoff: str() }),
  fault: obj({
    delay: obj({ fixedDelay: str(), exponentialDelay: str(), percentage: percent, percent: int(0, 100) }),
    abort: obj({ httpStatus: int(200, 599), grpcStatus: str(), http2Error: str(), percentage: percent }),
  }),
  mirror: istioDestination,
  mirrorPercentage: percent,
  mirrorPercent: int(0, 100),
  mirrors: arr(obj({ destination: istioDestination, percentage: percent }, ['destination'])),
  corsPolicy: any,
  headers: istioHeaders,
});

const virtualServiceSpec = obj({
  hosts: arr(str({ nonEmpty: true }), 1),
  gateways: strList,
  http: arr(virtualServiceHttpRoute),
  tcp: any,
  tls: any,
  exportTo: strList,
}, ['hosts']);

const serviceSpec = obj({
  selector: labels,
  ports: arr(obj({
    name: str({ pattern: DNS_LABEL, patternHint: 'a valid port name (lowercase letters, digits and "-")' }),
    port: int(1, 65535),
    targetPort: intOrString,
    protocol: str({ enum: ['TCP', 'UDP', 'SCTP'] }),
    appProtocol: str(),
    nodePort: int(1, 65535),
  }, ['port'])),
  clusterIP: str(),
  clusterIPs: strList,
  type: str({ enum: ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] }),
  ipFamilies: strList,
  ipFamilyPolicy: str(),
  sessionAffinity: str(),
  sessionAffinityConfig: any,
  externalName: str(),
  externalTrafficPolicy: str(),
  internalTrafficPolicy: str(),
  publishNotReadyAddresses: bool,
  loadBalancerIP: str(),
  loadBalancerSourceRanges: strList,
  externalIPs: strList,
  trafficDistribution: str(),
  allocateLoadBalancerNodePorts: bool,
  healthCheckNodePort: int(),
  loadBalancerClass: str(),
});

const deploymentSpec = obj({
  replicas: int(0, 1000),
  selector: labelSelector,
  template: obj({ metadata: metadata(false), spec: podSpec }, ['spec']),
  strategy: any,
  minReadySeconds: int(0),
  revisionHistoryLimit: int(0),
  progressDeadlineSeconds: int(0),
  paused: bool,
}, ['selector', 'template']);

const ISTIO_SECURITY = ['security.istio.io/v1', 'security.istio.io/v1beta1'];
const GATEWAY_API = ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'];
const ISTIO_TELEMETRY = ['telemetry.istio.io/v1', 'telemetry.istio.io/v1alpha1'];
const ISTIO_NETWORKING = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'];

export const KINDS: readonly KindInfo[] = [
  { kind: 'Namespace', apiVersions: ['v1'], namespaced: false, schema: top(any) },
  { kind: 'ConfigMap', apiVersions: ['v1'], namespaced: true, schema: top(undefined, { data: map(str(), 'key: text'), binaryData: any, immutable: bool }) },
  { kind: 'ServiceAccount', apiVersions: ['v1'], namespaced: true, schema: top(undefined, { secrets: any, imagePullSecrets: any, automountServiceAccountToken: bool }) },
  { kind: 'Pod', apiVersions: ['v1'], namespaced: true, schema: top(podSpec, { status: podStatus }, ['spec']) },
  { kind: 'Deployment', apiVersions: ['apps/v1'], namespaced: true, schema: top(deploymentSpec, {}, ['spec']) },
  { kind: 'Service', apiVersions: ['v1'], namespaced: true, schema: top(serviceSpec, {}, ['spec']) },
  { kind: 'AuthorizationPolicy', apiVersions: ISTIO_SECURITY, namespaced: true, schema: top(authorizationPolicySpec) },
  { kind: 'PeerAuthentication', apiVersions: ISTIO_SECURITY, namespaced: true, schema: top(peerAuthenticationSpec) },
  { kind: 'RequestAuthentication', apiVersions: ISTIO_SECURITY, namespaced: true, schema: top(requestAuthenticationSpec) },
  { kind: 'Gateway', apiVersions: GATEWAY_API, namespaced: true, schema: top(gatewaySpec, {}, ['spec']) },
  { kind: 'HTTPRoute', apiVersions: GATEWAY_API, namespaced: true, schema: top(httpRouteSpec, {}, ['spec']) },
  { kind: 'VirtualService', apiVersions: ISTIO_NETWORKING, namespaced: true, schema: top(virtualServiceSpec, {}, ['spec']) },
  { kind: 'Telemetry', apiVersions: ISTIO_TELEMETRY, namespaced: true, schema: top(telemetrySpec) },
  { kind: 'ServiceEntry', apiVersions: ISTIO_NETWORKING, namespaced: true, schema: top(serviceEntrySpec, {}, ['spec']) },
  { kind: 'DestinationRule', apiVersions: ISTIO_NETWORKING, namespaced: true, schema: top(destinationRuleSpec, {}, ['spec']) },
  { kind: 'Secret', apiVersions: ['v1'], namespaced: true, schema: top(undefined, secretFields) },
  { kind: 'ReferenceGrant', apiVersions: ['gateway.networking.k8s.io/v1beta1', 'gateway.networking.k8s.io/v1alpha2'], namespaced: true, schema: top(referenceGrantSpec, {}, ['spec']) },
  { kind: 'GRPCRoute', apiVersions: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1alpha2'], namespaced: true, schema: top(grpcRouteSpec, {}, ['spec']) },
  { kind: 'TCPRoute', apiVersions: ['gateway.networking.k8s.io/v1alpha2'], namespaced: true, schema: top(tcpRouteSpec, {}, ['spec']) },
];

export function kindInfo(kind: string): KindInfo | undefined {
  return KINDS.find((k) => k.kind === kind);
}
