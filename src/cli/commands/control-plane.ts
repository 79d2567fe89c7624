import { systemClock } from '../../core/clock.js';
import { Logger } from '../../core/logger.js';
import { MeshCA } from '../../identity/ca.js';
import { ControlPlane } from '../../controlplane/control-plane.js';
import { ensureAdminToken } from '../../controlplane/admin-token.js';
import { loadNodeTokens } from '../../controlplane/node-credentials.js';
import { loadProxyKey } from '../../controlplane/proxy-credentials.js';
import { controlPlaneIdentity } from '../../xds/control-plane-tls.js';
import { MetricsRegistry } from '../../telemetry/metrics.js';
import { list, parseCommandArgs, usageError, type Command } from '../command.js';
import { buildOptionsFrom } from './shared-options.js';
import { CONTROL_PLANE } from './specs.js';
import { registerProcessMetrics } from '../../telemetry/process-metrics.js';

export const controlPlaneCommand: Command = {
  ...CONTROL_PLANE,
  help: `Usage: ambit control-plane --ca DIR --node-tokens FILE [-f PATH...] [options]
       ambit control-plane --ca DIR --kubernetes [--kubeconfig FILE] [options]

Reads Kubernetes/Istio YAML (watched files/directories, plus what \`ambit apply\` sends),
validates every change as a whole (an invalid change is refused and the last good config
keeps serving), and pushes the workload API to ztunnels over delta ADS. Runs the CA:
a node may obtain certificates only for workloads scheduled on it.

Options:
  -f, --file PATH       config files or directories to watch (repeatable)
  --ca DIR              the mesh CA (Istio cacerts files; \`ambit ca init\` makes one)
  --node-tokens FILE    per-node credentials (JSON {node: token}), made by \`ambit up\`
  --nodes N             cluster nodes node-1..node-N (default 2)
  --xds ADDR            gRPC address for xDS and the CA (default 127.0.0.1:15010)
  --admin ADDR          admin and monitoring API (default 127.0.0.1:15014):
                        /ready /metrics /debug/syncz /api/apply /api/delete /api/label /api/resources /api/status
  --cert-ttl SECONDS    workload certificate lifetime, and the most any caller gets (default 86400)
  --admin-token-file F  the bearer token of the admin API (made, mode 0600, when missing); every
                        path but /metrics, /stats/prometheus and /ready needs it
  --proxy-key FILE      key of the per-proxy credentials of waypoint replicas and sidecars
                        (made by \`ambit up\`); each such proxy may obtain only its own pod's identity
  --identity SPIFFE     the control plane's identity in its TLS certificate
                        (default spiffe://<trust domain>/ns/istio-system/sa/ambit-control-plane)
  --trust-domain TD     default cluster.local
  --root-namespace NS   default istio-system

xDS and the CA are served over TLS with a certificate the mesh CA issues to the control plane
(renewed at half life); proxies check its identity before they send their credential.

On Kubernetes (--kubernetes): the config comes from the API server instead of files, through
informers (list, then watch with bookmarks; 410 Gone relists; errors back off): Namespaces,
Pods (scheduled, with an IP, not finished), Services, EndpointSlices, the Istio kinds
(security, networking, telemetry) and Gateway API Gateways and HTTPRoutes. Each object is
validated as a file would be; an invalid one is skipped and reported (log, Event, status
condition) and the rest keeps working. Status is written (Gateway, HTTPRoute,
AuthorizationPolicy). With several replicas (POD_NAME/POD_NAMESPACE set, as in the install),
the holder of the Lease ambit-control-plane-leader writes status and applies waypoint and
gateway objects; every replica serves xDS and the CA. Proxies authenticate with projected service-account tokens (audience
istio-ca, checked with a TokenReview); a ztunnel may obtain only identities of pods on its
node, any other proxy only its own.
  --kubernetes          read the cluster (in-cluster config unless --kubeconfig)
  --kubeconfig FILE     a kubeconfig (default: in-cluster service account)
  --context NAME        a kubeconfig context
  --ztunnel-sa NS/SA    the ztunnel DaemonSet's service account (default istio-system/ztunnel)
  --waypoint-image IMG  make a ServiceAccount, Deployment and Service for each waypoint
                        Gateway (class istio-waypoint), running this image
  --pod-xds ADDR        the xDS/CA address waypoint pods dial
                        (default ambit-control-plane.<root namespace>.svc:15012)
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      file: { type: 'string', short: 'f', multiple: true },
      ca: { type: 'string' },
      'node-tokens': { type: 'string' },
      nodes: { type: 'string' },
      xds: { type: 'string', default: '127.0.0.1:15010' },
      admin: { type: 'string', default: '127.0.0.1:15014' },
      'cert-ttl': { type: 'string' },
      'trust-domain': { type: 'string', default: 'cluster.local' },
      'root-namespace': { type: 'string', default: 'istio-system' },
      kubernetes: { type: 'boolean', default: false },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      'ztunnel-sa': { type: 'string', default: 'istio-system/ztunnel' },
      'waypoint-image': { type: 'string' },
      'pod-xds': { type: 'string' },
      'admin-token-file': { type: 'string' },
      'proxy-key': { type: 'string' },
      identity: { type: 'string' },
    });
    if (!values['admin-token-file']) throw usageError(this, '--admin-token-file FILE is required (it is made, mode 0600, when missing)');
    if (!values.ca) throw usageError(this, '--ca DIR is required');
    const onKube = values.kubernetes || values.kubeconfig !== undefined;
    if (!onKube && !values['node-tokens']) throw usageError(this, '--node-tokens FILE is required (or --kubernetes)');
    if (onKube && list(values.file).length) throw usageError(this, '-f and --kubernetes are two config sources; use one');
    const logger = new Logger({ component: 'control-plane' });
    const metrics = new MetricsRegistry();
    registerProcessMetrics(metrics);
    const rootNamespace = values['root-namespace'];
    const build = buildOptionsFrom({ nodes: values.nodes, 'trust-domain': values['trust-domain'], 'root-namespace': rootNamespace });
    // The Kubernetes client is loaded only when the cluster is the source.
    const kube = onKube ? await kubeWiring(values, rootNamespace, logger, metrics, this) : undefined;
    const ca = await MeshCA.load(values.ca, { trustDomain: values['trust-domain'] });
    const cp = new ControlPlane({
      logger, metrics, clock: systemClock,
      ca,
      nodeTokens: values['node-tokens'] ? await loadNodeTokens(values['node-tokens']) : {},
      build: kube ? { settings: build.settings, observedPods: true } : build,
      configPaths: list(values.file),
      xdsAddress: values.xds,
      adminAddress: values.admin,
      certificateTtlSeconds: values['cert-ttl'] ? Number(values['cert-ttl']) : undefined,
      adminToken: await ensureAdminToken(values['admin-token-file']),
      proxyKey: values['proxy-key'] ? await loadProxyKey(values['proxy-key']) : undefined,
      identity: values.identity ?? controlPlaneIdentity(values['trust-domain']),
      ...(kube ? { callers: kube.callers, holdPushUntilLoaded: true } : {}),
    });
    const ports = await cp.start();
    const parts = kube?.start(cp, ca.rootPem);
    io.err(`control plane: xDS and CA on ${values.xds.replace(/:\d+$/, `:${ports.xdsPort}`)}, admin http://${values.admin.replace(/:\d+$/, `:${ports.adminPort}`)}/debug/syncz\n`);
    await new Promise<void>((resolve) => {
      const stop = () => { parts?.close(); void cp.close().then(resolve); };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
    return 0;
  },
};

async function kubeWiring(values: Record<string, string | boolean | string[] | undefined>, rootNamespace: string, logger: Logger, metrics: MetricsRegistry, cmd: Command) {
  const { kubernetesWiring } = await import('../../kubernetes/kube-cli-wiring.js');
  const sa = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(String(values['ztunnel-sa']));
  if (!sa) throw usageError(cmd, '--ztunnel-sa must be NS/SA');
  const image = typeof values['waypoint-image'] === 'string' ? values['waypoint-image'] : undefined;
  const trustDomain = String(values['trust-domain']);
  return kubernetesWiring({
    access: { kubeconfig: typeof values.kubeconfig === 'string' ? values.kubeconfig : undefined, context: typeof values.context === 'string' ? values.context : undefined },
    rootNamespace, trustDomain, ztunnel: { namespace: sa[1]!, serviceAccount: sa[2]! },
    waypoints: image ? { image, xdsAddress: typeof values['pod-xds'] === 'string' ? values['pod-xds'] : `ambit-control-plane.${rootNamespace}.svc:15012`, trustDomain, rootNamespace } : undefined,
    // In a pod (POD_NAME and POD_NAMESPACE from the downward API, as the install sets them) the
    // replicas elect a leader for status and Deployments; run by hand, this one always acts.
    ...(process.env.POD_NAME && process.env.POD_NAMESPACE ? { replica: { name: process.env.POD_NAME, namespace: process.env.POD_NAMESPACE } } : {}),
    logger, clock: systemClock, metrics,
  });
}
