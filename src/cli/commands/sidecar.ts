// `ambit sidecar`: run the dedicated proxy of one sidecar-mode pod.
import { readFileSync } from 'node:fs';
import { systemClock } from '../../core/clock.js';
import { parseAuthority } from '../../core/ip.js';
import { Logger } from '../../core/logger.js';
import { MetricsRegistry } from '../../telemetry/metrics.js';
import { NetnsPodNetwork } from '../../dataplane/pod-network.js';
import { Sidecar } from '../../sidecar/sidecar.js';
import { WaypointXdsSource } from '../../waypoint/xds-source.js';
import { parseCommandArgs, usageError, type Command } from '../command.js';
import { SIDECAR } from './specs.js';
import { POD_PROXY_ARGS, POD_PROXY_REQUIRED, podProxyAdmin, podProxyCredentials, untilStopped } from './pod-proxy.js';
import { registerProcessMetrics } from '../../telemetry/process-metrics.js';
import { formatSpiffe } from '../../identity/spiffe.js';

export const sidecarCommand: Command = {
  ...SIDECAR,
  help: `Usage: ambit sidecar --pod NS/NAME --netns NAME --pod-ip IP --node NODE --service-account SA
                     --xds ADDR --token-file FILE --root-cert FILE [options]

Runs the proxy of one pod in sidecar mode (label or annotation sidecar.istio.io/inject: "true",
or namespace label istio-injection=enabled). Its listeners live in the pod's network
namespace, where the pod's capture rules send its traffic (the node's ztunnel leaves the
pod alone: its workload has native_tunnel):
  15008  HBONE inbound with the pod's identity, inbound AuthorizationPolicy with HTTP attributes
  15006  plaintext inbound, refused when PeerAuthentication is STRICT
  15001  outbound: to a waypoint when the destination uses one (so its L7 policy applies),
         else HTTPRoute/VirtualService routing here and HBONE to the endpoint's 15008
Request metrics with reporter source/destination; one access-log line per request (stderr),
unless a Telemetry selecting the pod turns it off or filters it (mode CLIENT outbound, SERVER inbound).

Options:
  --pod NS/NAME          the pod
  --netns NAME           the pod's network namespace
  --pod-ip IP            the pod's address
  --node NODE            its node (the node credential authenticates the sidecar)
  --service-account SA   identity spiffe://<trust domain>/ns/<NS>/sa/<SA> (default: default)
  --xds ADDR, --token-file FILE, --root-cert FILE
  --admin ADDR           /metrics, /stats/prometheus, /healthz/ready, /config_dump
  --trust-domain TD      default cluster.local
  --root-namespace NS    default istio-system
  --drain-ms N           on SIGTERM: let open requests finish N ms (default 1500)
  --labels JSON          the pod's labels (default: $POD_LABELS), for selector-based
                         RequestAuthentication and Telemetry (access logging)
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      pod: { type: 'string' },
      ...POD_PROXY_ARGS,
      'service-account': { type: 'string', default: process.env.SERVICE_ACCOUNT ?? 'default' },
      labels: { type: 'string', default: process.env.POD_LABELS ?? '{}' },
    });
    const pod = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(values.pod ?? '');
    if (!pod) throw usageError(this, '--pod NS/NAME is required');
    for (const k of POD_PROXY_REQUIRED) {
      if (!values[k]) throw usageError(this, `--${k} is required`);
    }
    const [, namespace, name] = pod as unknown as [string, string, string];
    let labels: Record<string, string>;
    try {
      labels = JSON.parse(values.labels) as Record<string, string>;
    } catch {
      throw usageError(this, '--labels must be a JSON object of the pod\'s labels');
    }
    const logger = new Logger({ component: 'sidecar' }).child({ pod: `${namespace}/${name}` });
    const metrics = new MetricsRegistry();
    registerProcessMetrics(metrics);
    const { token, tls, ca, certificates } = await podProxyCredentials({ xds: values.xds!, tokenFile: values['token-file']!, rootCert: values['root-cert']!, trustDomain: values['trust-domain'], xdsIdentity: values['xds-identity'], logger });
    const identity = formatSpiffe({ trustDomain: values['trust-domain']!, namespace, serviceAccount: values['service-account']! });
    const sidecar = new Sidecar({
      pod: { namespace, name }, labels, identity, trustDomain: values['trust-domain'], rootNamespace: values['root-namespace'],
      podIp: values['pod-ip']!, network: NetnsPodNetwork.open(values.netns!), bindAddress: '0.0.0.0',
      certificates, logger, metrics, clock: systemClock, readFile: (p) => readFileSync(p, 'utf8'),
    });
    const xds = new WaypointXdsSource({
      address: values.xds!, nodeId: `${values.node}~${name}.${namespace}`, token, tls, logger, authorizations: true, userAgent: 'ambit-sidecar',
      onConfig: (state, objects, version) => sidecar.setConfig(state, objects, version),
    });
    xds.start();
    await sidecar.start();
    if (values.admin && !parseAuthority(values.admin)) throw usageError(this, `--admin "${values.admin}" is not ip:port`);
    const admin = values.admin ? await podProxyAdmin(values.admin, { logger, metrics, ready: () => sidecar.ready(), configDump: () => ({ xds: xds.status(), self: sidecar.self() ?? null, warnings: sidecar.current().config.warnings }) }) : undefined;
    io.err(`sidecar ${namespace}/${name}: HBONE on ${values['pod-ip']}:15008 as ${identity}${values.admin ? `; metrics http://${values.admin}/metrics` : ''}\n`);
    await untilStopped(logger, async () => {
      xds.close();
      ca.close();
      await sidecar.close(Number(values['drain-ms']));
      await admin?.close();
    });
    return 0;
  },
};
