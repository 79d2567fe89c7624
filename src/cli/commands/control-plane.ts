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

xDS and the CA are served over TLS with a certificate the mesh CA issues to the control plane
(renewed at half life); proxies check its identity before they send their credential.
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
      'admin-token-file': { type: 'string' },
      'proxy-key': { type: 'string' },
      identity: { type: 'string' },
    });
    if (!values['admin-token-file']) throw usageError(this, '--admin-token-file FILE is required (it is made, mode 0600, when missing)');
    if (!values.ca) throw usageError(this, '--ca DIR is required');
    if (!values['node-tokens']) throw usageError(this, '--node-tokens FILE is required');
    const logger = new Logger({ component: 'control-plane' });
    const metrics = new MetricsRegistry();
    registerProcessMetrics(metrics);
    const cp = new ControlPlane({
      logger, metrics, clock: systemClock,
      ca: await MeshCA.load(values.ca, { trustDomain: values['trust-domain'] }),
      nodeTokens: await loadNodeTokens(values['node-tokens']),
      build: buildOptionsFrom({ nodes: values.nodes, 'trust-domain': values['trust-domain'] }),
      configPaths: list(values.file),
      xdsAddress: values.xds,
      adminAddress: values.admin,
      certificateTtlSeconds: values['cert-ttl'] ? Number(values['cert-ttl']) : undefined,
      adminToken: await ensureAdminToken(values['admin-token-file']),
      proxyKey: values['proxy-key'] ? await loadProxyKey(values['proxy-key']) : undefined,
      identity: values.identity ?? controlPlaneIdentity(values['trust-domain']),
    });
    const ports = await cp.start();
    io.err(`control plane: xDS and CA on ${values.xds.replace(/:\d+$/, `:${ports.xdsPort}`)}, admin http://${values.admin.replace(/:\d+$/, `:${ports.adminPort}`)}/debug/syncz\n`);
    await new Promise<void>((resolve) => {
      const stop = () => void cp.close().then(resolve);
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
    return 0;
  },
};
