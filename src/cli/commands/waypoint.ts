// `ambit waypoint`: run one waypoint replica; `ambit waypoint apply|delete`: declare one.
import { readFileSync } from 'node:fs';
import { systemClock } from '../../core/clock.js';
import { parseAuthority } from '../../core/ip.js';
import { Logger } from '../../core/logger.js';
import { MetricsRegistry } from '../../telemetry/metrics.js';
import { HostPodNetwork, NetnsPodNetwork } from '../../dataplane/pod-network.js';
import { Waypoint } from '../../waypoint/waypoint.js';
import { WaypointXdsSource } from '../../waypoint/xds-source.js';
import { parseUpstream } from './dns-upstream.js';
import { POD_PROXY_ARGS, POD_PROXY_REQUIRED, podProxyAdmin, podProxyCredentials, untilStopped } from './pod-proxy.js';
import { callControlPlane, controlPlaneUrl, type ControlPlaneTarget } from '../admin-client.js';
import type { CliIO } from '../command.js';
import { list, parseCommandArgs, usageError, type Command } from '../command.js';
import { WAYPOINT, WAYPOINT_APPLY, WAYPOINT_DELETE } from './specs.js';
import { registerProcessMetrics } from '../../telemetry/process-metrics.js';
import { formatSpiffe } from '../../identity/spiffe.js';

export const waypointCommand: Command = {
  ...WAYPOINT,
  help: `Usage: ambit waypoint --gateway NS/NAME --netns NAME --pod-ip IP --node NODE
                      --xds ADDR --token-file FILE --root-cert FILE [options]

Runs one replica of a waypoint (a Gateway of class istio-waypoint). It listens on 15008 in
its pod's network namespace (HBONE: mTLS with the waypoint's identity), reads the original
destination from :authority, and for HTTP/1.1 and HTTP/2 (h2c, gRPC) applies
RequestAuthentication (JWT), AuthorizationPolicy bound by targetRefs, HTTPRoute /
VirtualService routing (matches, weights, redirects, rewrites, header edits, mirrors,
timeouts, retries, faults), then forwards over HBONE to the chosen endpoint's ztunnel.
Other protocols are relayed as TCP. Config arrives over xDS. Istio's request metrics
(reporter=waypoint) and one access-log line per request (JSON on stderr), unless a
Telemetry (accessLogging: disabled, or a filter such as "response.code >= 400") bound to
the mesh, the namespace, this Gateway or the destination Service says otherwise;
/config_dump shows the decision per service.

The local cluster starts it for each waypoint pod; POD_NAME, POD_NAMESPACE, POD_IP,
NODE_NAME and SERVICE_ACCOUNT from the environment fill the options not given.

Options:
  --gateway NS/NAME     the Gateway this replica serves
  --netns NAME          the pod's network namespace (listeners and upstream sockets are made there)
  --in-pod              run inside the pod itself (a Kubernetes waypoint Deployment): no --netns
  --pod-ip IP           the pod's address
  --node NODE           the node it runs on (its node credential authenticates it)
  --service-account SA  identity: spiffe://<trust domain>/ns/<NS>/sa/<SA> (default: NAME)
  --xds ADDR, --token-file FILE, --root-cert FILE
                        the control plane (xDS + CA), the node credential, the mesh root
  --admin ADDR          /metrics, /stats/prometheus, /healthz/ready, /config_dump
  --dns-upstream IP[:PORT]
                        the cluster's DNS resolver, for ServiceEntry hosts with resolution DNS
                        (egress); repeatable. Without it such hosts cannot be reached.
  --trust-domain TD     default cluster.local
  --root-namespace NS   default istio-system
  --drain-ms N          on SIGTERM: keep accepting 1.2 s, then let tunnels finish N ms (default 1500)

Declaring a waypoint (through the control plane, like istioctl waypoint apply):
  ambit waypoint apply -n NS [--name waypoint] [--for service|workload|all] [--replicas N] [--enroll-namespace]
  ambit waypoint delete -n NS [--name waypoint]
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      gateway: { type: 'string' },
      ...POD_PROXY_ARGS,
      'service-account': { type: 'string', default: process.env.SERVICE_ACCOUNT },
      'dns-upstream': { type: 'string', multiple: true },
      'in-pod': { type: 'boolean', default: false },
    });
    const dnsUpstreams = list(values['dns-upstream']).map((u) => parseUpstream(u) ?? (() => { throw usageError(this, `--dns-upstream "${u}" is not IP or IP:PORT`); })());
    const gw = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(values.gateway ?? '');
    if (!gw) throw usageError(this, '--gateway NS/NAME is required');
    for (const k of POD_PROXY_REQUIRED) {
      if (!values[k] && !(k === 'netns' && values['in-pod'])) throw usageError(this, `--${k} is required`);
    }
    const [, namespace, name] = gw as unknown as [string, string, string];
    const podName = process.env.POD_NAME ?? `${name}-0`;
    const logger = new Logger({ component: 'waypoint' }).child({ waypoint: `${namespace}/${name}`, pod: podName });
    const metrics = new MetricsRegistry();
    registerProcessMetrics(metrics);
    const { token, tls, ca, certificates } = await podProxyCredentials({ xds: values.xds!, tokenFile: values['token-file']!, rootCert: values['root-cert']!, trustDomain: values['trust-domain'], xdsIdentity: values['xds-identity'], logger });
    const identity = formatSpiffe({ trustDomain: values['trust-domain']!, namespace, serviceAccount: values['service-account'] ?? name });
    const waypoint = new Waypoint({
      waypoint: { namespace, name }, identity, trustDomain: values['trust-domain'], rootNamespace: values['root-namespace'],
      podIp: values['pod-ip']!, network: values['in-pod'] ? new HostPodNetwork() : NetnsPodNetwork.open(values.netns!), bindAddress: '0.0.0.0',
      certificates, logger, metrics, clock: systemClock, readFile: (p) => readFileSync(p, 'utf8'), dnsUpstreams,
    });
    let synced = false;
    const xds = new WaypointXdsSource({
      address: values.xds!, nodeId: `${values.node}~${podName}.${namespace}`, token, tls, logger,
      onConfig: (state, objects, version) => { waypoint.setConfig(state, objects, version); synced = true; },
    });
    xds.start();
    await waypoint.start();
    if (values.admin && !parseAuthority(values.admin)) throw usageError(this, `--admin "${values.admin}" is not ip:port`);
    const admin = values.admin ? await podProxyAdmin(values.admin, { logger, metrics, ready: () => (synced ? { ready: true } : { ready: false, reason: 'no config from the control plane yet' }), configDump: () => ({ xds: xds.status(), warnings: waypoint.current().config.warnings, services: waypoint.current().state.services.size, accessLogging: waypoint.accessLogging(), egress: waypoint.current().config.egress.describe(), destinationRules: waypoint.current().config.traffic.describe(), clusters: waypoint.clusterState() }) }) : undefined;
    io.err(`waypoint ${namespace}/${name} (${podName}): HBONE on ${values['pod-ip']}:15008 as ${identity}${values.admin ? `; metrics http://${values.admin}/metrics` : ''}\n`);
    await untilStopped(logger, async (sig) => {
      xds.close();
      ca.close();
      // Scale-down: keep serving for a moment while the ztunnels stop picking this replica.
      await waypoint.close(Number(values['drain-ms']), sig === 'SIGTERM' ? 1_200 : 0);
      await admin?.close();
    });
    return 0;
  },
};

/** The Gateway `ambit waypoint apply` declares (as istioctl waypoint apply does). */
export function waypointGatewayYaml(o: { namespace: string; name: string; waypointFor: string; replicas?: number }): string {
  return [
    'apiVersion: gateway.networking.k8s.io/v1',
    'kind: Gateway',
    'metadata:',
    `  name: ${o.name}`,
    `  namespace: ${o.namespace}`,
    `  labels: {istio.io/waypoint-for: ${o.waypointFor}}`,
    ...(o.replicas ? [`  annotations: {ambit.dev/replicas: "${o.replicas}"}`] : []),
    'spec:',
    '  gatewayClassName: istio-waypoint',
    '  listeners: [{name: mesh, port: 15008, protocol: HBONE}]',
    '',
  ].join('\n');
}

export const waypointApplyCommand: Command = {
  ...WAYPOINT_APPLY,
  help: `Usage: ambit waypoint apply -n NS [--name waypoint] [--for service|workload|all] [--replicas N] [--enroll-namespace]

Applies a Gateway of class istio-waypoint through the control plane. With
--enroll-namespace the namespace is labelled istio.io/use-waypoint=NAME, so its services
(or workloads, per --for) are reached through the waypoint from now on.
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      namespace: { type: 'string', short: 'n' },
      name: { type: 'string', default: 'waypoint' },
      for: { type: 'string', default: 'service' },
      replicas: { type: 'string' },
      'enroll-namespace': { type: 'boolean', default: false },
      'control-plane': { type: 'string' },
    });
    if (!values.namespace) throw usageError(this, '-n NAMESPACE is required');
    if (!['service', 'workload', 'all', 'none'].includes(values.for)) throw usageError(this, '--for must be service, workload, all or none');
    const replicas = values.replicas ? Number(values.replicas) : undefined;
    if (replicas !== undefined && !(Number.isInteger(replicas) && replicas >= 1 && replicas <= 20)) throw usageError(this, '--replicas must be 1..20');
    const yaml = waypointGatewayYaml({ namespace: values.namespace, name: values.name, waypointFor: values.for, replicas });
    const base = controlPlaneUrl(values['control-plane'], io.env);
    if (!(await send(io, base, '/api/apply', yaml))) return 1;
    io.out(`waypoint ${values.namespace}/${values.name} applied (for ${values.for})\n`);
    if (values['enroll-namespace']) {
      const l = await callControlPlane<{ ok: boolean }>(base, '/api/label', { method: 'POST', body: JSON.stringify({ kind: 'Namespace', name: values.namespace, labels: { 'istio.io/use-waypoint': values.name } }) });
      if (!l.json.ok) { io.err(`${JSON.stringify(l.json, null, 2)}\n`); return 1; }
      io.out(`namespace ${values.namespace} labelled istio.io/use-waypoint=${values.name}\n`);
    }
    return 0;
  },
};

export const waypointDeleteCommand: Command = {
  ...WAYPOINT_DELETE,
  help: `Usage: ambit waypoint delete -n NS [--name waypoint]
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      namespace: { type: 'string', short: 'n' },
      name: { type: 'string', default: 'waypoint' },
      'control-plane': { type: 'string' },
    });
    if (!values.namespace) throw usageError(this, '-n NAMESPACE is required');
    const yaml = `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: ${values.name}, namespace: ${values.namespace}}\n`;
    if (!(await send(io, controlPlaneUrl(values['control-plane'], io.env), '/api/delete', yaml))) return 1;
    io.out(`waypoint ${values.namespace}/${values.name} deleted\n`);
    return 0;
  },
};

async function send(io: CliIO, base: ControlPlaneTarget, path: '/api/apply' | '/api/delete', yaml: string): Promise<boolean> {
  const r = await callControlPlane<{ ok: boolean; diagnostics?: { message: string }[] }>(base, path, { method: 'POST', body: yaml, headers: { 'x-ambit-file': 'ambit-waypoint' } });
  if (r.json.ok) return true;
  for (const d of r.json.diagnostics ?? []) io.err(`${d.message}\n`);
  return false;
}
