// `ambit gateway`: run one replica of an ingress gateway (a Gateway of class istio).
import { readFileSync } from 'node:fs';
import { systemClock } from '../../core/clock.js';
import { parseAuthority } from '../../core/ip.js';
import { Logger } from '../../core/logger.js';
import { MetricsRegistry } from '../../telemetry/metrics.js';
import { registerProcessMetrics } from '../../telemetry/process-metrics.js';
import { HostPodNetwork, NetnsPodNetwork } from '../../dataplane/pod-network.js';
import { WaypointXdsSource } from '../../waypoint/xds-source.js';
import { IngressGateway } from '../../gateway/ingress-gateway.js';
import { formatSpiffe } from '../../identity/spiffe.js';
import { POD_PROXY_ARGS, POD_PROXY_REQUIRED, podProxyAdmin, podProxyCredentials, untilStopped } from './pod-proxy.js';
import { parseCommandArgs, usageError, type Command } from '../command.js';
import { GATEWAY } from './specs.js';

export const gatewayCommand: Command = {
  ...GATEWAY,
  help: `Usage: ambit gateway --gateway NS/NAME --netns NAME --pod-ip IP --node NODE
                     --xds ADDR --token-file FILE --root-cert FILE [options]

Runs one replica of an ingress gateway: a Gateway of class istio (Istio's ingress class).
It listens in its pod's network namespace on the ports of the Gateway's listeners:
  HTTP    HTTP/1.1 or h2c (prior knowledge), routed by HTTPRoute / GRPCRoute
  HTTPS   TLS terminated with the certificate of the listener whose hostname matches the
          client's SNI (tls.certificateRefs: kubernetes.io/tls Secrets, in another namespace
          only with a ReferenceGrant); ALPN h2 or http/1.1
  TCP     relayed to a TCPRoute's backend (weighted)
Routes attach by parentRefs (this Gateway, sectionName, port) when the listener's
allowedRoutes admit them; a request is routed by the most specific hostname of its port.
Requests go through the waypoint's L7 pipeline (normalization, AuthorizationPolicy bound to
this Gateway by targetRefs, retries, timeouts, DestinationRule policies) and into the mesh
over HBONE with the gateway's own identity
(spiffe://<trust domain>/ns/NS/sa/NAME-istio), so the destination's policies see it. A
Service labelled istio.io/ingress-use-waypoint=true that has a waypoint is reached through
the waypoint. Telemetry: istio_requests_total etc. with reporter="source", one access-log
line per request; /config_dump shows listeners, virtual hosts, routes and certificates
(Secret names only, never key material).

The local cluster starts it for each replica pod (<NAME>-istio-<i>) of a Gateway of class
istio; the pod's address is reachable from the outside host (\`ambit status\` prints it).

Options:
  --gateway NS/NAME     the Gateway this replica serves
  --netns NAME          the pod's network namespace (listeners and upstream sockets are made there)
  --in-pod              run inside the pod itself (a Kubernetes Deployment): no --netns
  --pod-ip IP           the pod's address
  --node NODE           the node it runs on
  --service-account SA  identity (default NAME-istio)
  --xds ADDR, --token-file FILE, --root-cert FILE
                        the control plane (xDS + CA), the proxy's credential, the mesh root
  --admin ADDR          /metrics, /stats/prometheus, /healthz/ready, /config_dump
  --trust-domain TD     default cluster.local
  --root-namespace NS   default istio-system
  --drain-ms N          on SIGTERM: keep accepting 1.2 s, then let connections finish N ms (default 1500)
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      gateway: { type: 'string' },
      ...POD_PROXY_ARGS,
      'service-account': { type: 'string', default: process.env.SERVICE_ACCOUNT },
      'in-pod': { type: 'boolean', default: false },
    });
    const gw = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(values.gateway ?? '');
    if (!gw) throw usageError(this, '--gateway NS/NAME is required');
    for (const k of POD_PROXY_REQUIRED) {
      if (!values[k] && !(k === 'netns' && values['in-pod'])) throw usageError(this, `--${k} is required`);
    }
    if (values.admin && !parseAuthority(values.admin)) throw usageError(this, `--admin "${values.admin}" is not ip:port`);
    const [, namespace, name] = gw as unknown as [string, string, string];
    const podName = process.env.POD_NAME ?? `${name}-istio-0`;
    const logger = new Logger({ component: 'gateway' }).child({ gateway: `${namespace}/${name}`, pod: podName });
    const metrics = new MetricsRegistry();
    registerProcessMetrics(metrics);
    const { token, tls, ca, certificates } = await podProxyCredentials({ xds: values.xds!, tokenFile: values['token-file']!, rootCert: values['root-cert']!, trustDomain: values['trust-domain'], xdsIdentity: values['xds-identity'], logger });
    const identity = formatSpiffe({ trustDomain: values['trust-domain']!, namespace, serviceAccount: values['service-account'] ?? `${name}-istio` });
    const gateway = new IngressGateway({
      gateway: { namespace, name }, identity, trustDomain: values['trust-domain'], rootNamespace: values['root-namespace'],
      podIp: values['pod-ip']!, network: values['in-pod'] ? new HostPodNetwork() : NetnsPodNetwork.open(values.netns!), bindAddress: '0.0.0.0',
      certificates, logger, metrics, clock: systemClock, readFile: (p) => readFileSync(p, 'utf8'),
    });
    let synced = false;
    const xds = new WaypointXdsSource({
      address: values.xds!, nodeId: `${values.node}~${podName}.${namespace}`, token, tls, logger,
      onConfig: (state, objects, version) => { gateway.setConfig(state, objects, version); synced = true; },
    });
    xds.start();
    await gateway.start();
    const admin = values.admin ? await podProxyAdmin(values.admin, {
      logger, metrics,
      ready: () => {
        if (!synced) return { ready: false, reason: 'no config from the control plane yet' };
        const want = [...gateway.current().config.ports.keys()];
        const missing = want.filter((p) => !gateway.listening.includes(p));
        return missing.length ? { ready: false, reason: `not listening on ${missing.join(', ')} yet` } : { ready: true };
      },
      configDump: () => ({ xds: xds.status(), identity, ingress: gateway.current().config.describe(), warnings: gateway.current().config.warnings, destinationRules: gateway.current().config.l7.traffic.describe(), clusters: gateway.clusterState() }),
    }) : undefined;
    io.err(`ingress gateway ${namespace}/${name} (${podName}) on ${values['pod-ip']} as ${identity}${values.admin ? `; metrics http://${values.admin}/metrics` : ''}\n`);
    await untilStopped(logger, async (sig) => {
      xds.close();
      ca.close();
      await gateway.close(Number(values['drain-ms']), sig === 'SIGTERM' ? 1_200 : 0);
      await admin?.close();
    });
    return 0;
  },
};
