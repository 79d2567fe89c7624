// Objects as a Kubernetes API server holds them (for the stand-in), and the same config as
// files, so tests can compare the two sources.
type Obj = Record<string, unknown>;

export function namespace(name: string, labels: Record<string, string> = {}): Obj {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
}

export function pod(ns: string, name: string, o: { node?: string; ip?: string; sa?: string; labels?: Record<string, string>; phase?: string; hostNetwork?: boolean } = {}): Obj {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name, namespace: ns, labels: o.labels ?? { app: name },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${name}-rs`, uid: '0000', controller: true, blockOwnerDeletion: true }],
      managedFields: [{ manager: 'kube-controller-manager', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': {} } }],
    },
    spec: {
      ...(o.node ? { nodeName: o.node } : {}), serviceAccountName: o.sa ?? 'default', serviceAccount: o.sa ?? 'default',
      containers: [{ name: 'app', image: 'registry.example/app:1', ports: [{ containerPort: 8080, protocol: 'TCP', name: 'http' }], resources: {}, terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent' }],
      restartPolicy: 'Always', terminationGracePeriodSeconds: 30, dnsPolicy: 'ClusterFirst', schedulerName: 'default-scheduler', enableServiceLinks: true, preemptionPolicy: 'PreemptLowerPriority', priority: 0,
      tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
      ...(o.hostNetwork ? { hostNetwork: true } : {}),
    },
    status: {
      phase: o.phase ?? (o.ip ? 'Running' : 'Pending'), qosClass: 'BestEffort',
      ...(o.ip ? { podIP: o.ip, podIPs: [{ ip: o.ip }], hostIP: '192.0.2.1', hostIPs: [{ ip: '192.0.2.1' }], startTime: '2026-01-01T00:00:00Z' } : {}),
      conditions: [{ type: 'Ready', status: o.ip ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: '2026-01-01T00:00:00Z' }],
    },
  };
}

export function service(ns: string, name: string, o: { clusterIP: string; selector?: Record<string, string> | null; port?: number; targetPort?: number | string; labels?: Record<string, string> }): Obj {
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns, ...(o.labels ? { labels: o.labels } : {}) },
    spec: {
      ...(o.selector === null ? {} : { selector: o.selector ?? { app: name } }), clusterIP: o.clusterIP, clusterIPs: [o.clusterIP], type: 'ClusterIP',
      ports: [{ name: 'http', port: o.port ?? 80, targetPort: o.targetPort ?? 8080, protocol: 'TCP' }],
      sessionAffinity: 'None', ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', internalTrafficPolicy: 'Cluster',
    },
    status: { loadBalancer: {} },
  };
}

export function authorizationPolicy(ns: string, name: string, spec: Obj, apiVersion = 'security.istio.io/v1'): Obj {
  return { apiVersion, kind: 'AuthorizationPolicy', metadata: { name, namespace: ns }, spec };
}

export function waypointGateway(ns: string, name: string, labels: Record<string, string> = {}): Obj {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name, namespace: ns, labels },
    spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE', allowedRoutes: { namespaces: { from: 'Same' } } }] },
  };
}
