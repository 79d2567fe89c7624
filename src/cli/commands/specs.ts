// The words and one-line summary of every `ambit` subcommand: what `ambit --help` and the
// "which one?" suggestions need, without loading any command's code.
//
// Invariant: this file is the only place a command's path and summary are written; each
// command module spreads its spec into its Command (`{ ...ZTUNNEL, help, run }`), so the
// lazy registry (./index.ts) and the loaded command cannot disagree. Imports nothing.
export interface CommandSpec {
  readonly path: readonly string[];
  readonly summary: string;
}

function spec(path: string[], summary: string): CommandSpec {
  return Object.freeze({ path: Object.freeze(path), summary });
}

export const UP = spec(['up'], 'create a local multi-node mesh (network namespaces, real processes)');
export const DOWN = spec(['down'], 'remove the local cluster: processes, namespaces, rules, files');
export const STATUS = spec(['status'], 'nodes, pods (IP, node, enrolled), ztunnel and control-plane health');
export const EXEC = spec(['exec'], 'run a command inside a pod (like kubectl exec)');
export const LOGS = spec(['logs'], 'logs of a pod, a ztunnel, the control plane or the daemon');
export const VALIDATE = spec(['validate'], 'check mesh config files and explain every problem');
export const WORKLOAD_API = spec(['x', 'workload-api'], 'show the workload API objects the control plane would push');
export const AUTHZ_CHECK = spec(['authz', 'check'], 'explain whether a connection or request is allowed, and why');
export const APPLY = spec(['apply'], 'add or change config in the running mesh (validated as a whole)');
export const DELETE = spec(['delete'], 'remove config from the running mesh');
export const GET = spec(['get'], 'list config resources in the running mesh');
export const LABEL = spec(['label'], 'set or remove labels (e.g. enrol a namespace in the mesh)');
export const PROXY_STATUS = spec(['proxy-status'], 'which proxy has the latest config (SYNCED / STALE / NACKED)');
export const CONTROL_PLANE = spec(['control-plane'], 'serve mesh config over delta xDS and run the mesh CA');
export const ZTUNNEL = spec(['ztunnel'], 'run the node proxy for the enrolled workloads of one node');
export const NODE_AGENT = spec(['node-agent'], 'run the node agent of one node (CNI plugin events, capture, ZDS to the ztunnel)');
export const ZTUNNEL_RESTART = spec(['ztunnel', 'restart'], "restart a node's ztunnel without dropping a connection (local cluster)");
export const GATEWAY = spec(['gateway'], 'run an ingress gateway replica (a Gateway of class istio: HTTP, HTTPS with SNI, TCP into the mesh)');
export const WAYPOINT = spec(['waypoint'], 'run a waypoint replica (L7: HTTP routing, L7 authorization, request telemetry)');
export const WAYPOINT_APPLY = spec(['waypoint', 'apply'], 'declare a waypoint for a namespace (like istioctl waypoint apply)');
export const WAYPOINT_DELETE = spec(['waypoint', 'delete'], 'remove a waypoint');
export const SIDECAR = spec(['sidecar'], "run a pod's sidecar proxy (L7 for one pod, HBONE with the pod's identity)");
export const APP_ECHO = spec(['app', 'echo'], 'built-in echo server (HTTP/1.1, h2c and raw TCP on one port)');
export const CLUSTER_DAEMON = spec(['cluster', 'daemon'], '(internal) the process `ambit up` starts to run the cluster');
export const CA_INIT = spec(['ca', 'init'], 'create a mesh root CA (Istio cacerts files)');
export const CA_ISSUE = spec(['ca', 'issue'], 'issue a workload certificate for a SPIFFE identity');
export const INSTALL = spec(['install'], 'install Ambit on a Kubernetes cluster (or print the manifests: --dry-run -o yaml)');
export const UNINSTALL = spec(['uninstall'], 'remove what `ambit install` made from a Kubernetes cluster');
export const CNI_CLEANUP = spec(['x', 'cni-cleanup'], '(internal) take ambit-cni out of a node\'s CNI config (run by `ambit uninstall`)');
