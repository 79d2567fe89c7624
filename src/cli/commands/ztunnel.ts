import net from 'node:net';
import { systemClock } from '../../core/clock.js';
import { parseAuthority } from '../../core/ip.js';
import { Logger } from '../../core/logger.js';
import { AdminServer } from '../../telemetry/admin-server.js';
import { MetricsRegistry } from '../../telemetry/metrics.js';
import { localCaFetcher, managedCertificates, type CertificateSource } from '../../dataplane/certificates.js';
import { HostPodNetwork, NetnsPodNetwork, type PodNetwork } from '../../dataplane/pod-network.js';
import type { XdsSource } from '../../dataplane/xds-source.js';
import { podNetnsName } from '../../sys/netns-names.js';
import type { CaClient } from '../../xds/ca-client.js';
import type { ClientTlsOptions, TokenSource } from '../../xds/credentials.js';
import { tokenFromFile } from '../../xds/token-file.js';
import { formatSpiffe } from '../../identity/spiffe.js';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ZdsClient } from '../../ztunnel/zds-client.js';
import { Ztunnel } from '../../ztunnel/ztunnel.js';
import type { Workload } from '../../xds/workload-api.js';
import { list, parseCommandArgs, usageError, type Command } from '../command.js';
import { ZTUNNEL } from './specs.js';
import { registerProcessMetrics } from '../../telemetry/process-metrics.js';
import { parseUpstream } from './dns-upstream.js';

// Each config mode imports only what it uses, to keep a ztunnel's resident memory low: --xds loads gRPC and
// the protos, --config loads yaml and the local CA.

export const ztunnelCommand: Command = {
  ...ZTUNNEL,
  help: `Usage: ambit ztunnel --node NAME --config FILE --ca DIR [options]

Runs a ztunnel: for each workload of NODE that speaks HBONE it serves 15008 (HBONE, mTLS,
L4 authorization) and carries the workload's outbound traffic over HBONE, recording Istio's
TCP metrics and one access-log line per connection (JSON on stderr).

Config and certificates (one of):
  --xds ADDR --token-file FILE --root-cert FILE
                         the control plane: delta xDS and the CA service at ADDR, with this
                         node's credential; the mesh root to verify peers with
  --config FILE --ca DIR a workload API file (\`ambit x workload-api -f ... -o yaml\`), watched,
                         and a local CA directory (\`ambit ca init\`) to sign certificates
Networks:
  --zds PATH             capture mode, pods from the node agent (the local cluster): connect
                         to the agent's ZDS socket (unix SOCK_SEQPACKET); serve the pods it
                         sends, each with its network namespace and the listening sockets the
                         agent holds on 15001/15006/15008; upstream sockets carry mark 0x539
  --pod-netns-prefix P  capture mode without an agent: each workload is the network
                         namespace \`ambit up\` made for it (P-<ns>-<pod>); 15001/15006/15008
                         are opened inside it and upstream sockets carry mark 0x539
  (default)              workloads are addresses of this host; listeners bind them
  --dns-capture on|off   capture mode: the DNS proxy on each pod's 15053 (UDP and TCP), where
                         the pod's port-53 traffic is redirected; answers Services and
                         ServiceEntry hosts, forwards the rest (default on, as Istio 1.25+)
  --dns-upstream IP[:PORT]
                         the resolver the DNS proxy forwards to (the pods' own nameserver);
                         repeatable; without one, forwarded queries get SERVFAIL
  --cluster-domain D     default cluster.local
  --forward L=NS/POD>DST explicit outbound forwarder standing in for capture: connections to
                         L (ip:port) are NS/POD's connections to DST (ip:port). Repeatable.
Operator endpoints:
  --admin ADDR           /config_dump, /logging (default 127.0.0.1:15000)
  --metrics ADDR         /metrics, /stats/prometheus (default 127.0.0.1:15020)
  --readiness ADDR       /healthz/ready (default 127.0.0.1:15021)
  --drain-ms N           on SIGTERM: stop accepting (sockets handed over by the node agent stay
                         with it, so a successor loses nothing), let live connections finish
                         this long, then reset the rest (default 5000)
  --admin-reuse-port     admin/metrics/readiness with SO_REUSEPORT, so a successor can start
                         beside this ztunnel (graceful restarts of the local cluster)

Examples:
  ambit ztunnel --node node-1 --xds 127.0.0.1:15010 --token-file node-1.token --root-cert root-cert.pem
  ambit x workload-api -f examples/demo -o yaml > /tmp/wl.yaml
  ambit ca init --out /tmp/ca
  ambit ztunnel --node node-1 --config /tmp/wl.yaml --ca /tmp/ca
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      node: { type: 'string' },
      config: { type: 'string' },
      ca: { type: 'string' },
      xds: { type: 'string' },
      'token-file': { type: 'string' },
      'root-cert': { type: 'string' },
      'xds-identity': { type: 'string' },
      'pod-netns-prefix': { type: 'string' },
      zds: { type: 'string' },
      'admin-reuse-port': { type: 'boolean' },
      forward: { type: 'string', multiple: true },
      admin: { type: 'string', default: '127.0.0.1:15000' },
      metrics: { type: 'string', default: '127.0.0.1:15020' },
      readiness: { type: 'string', default: '127.0.0.1:15021' },
      'drain-ms': { type: 'string', default: '5000' },
      'trust-domain': { type: 'string', default: 'cluster.local' },
      'dns-capture': { type: 'string', default: 'on' },
      'dns-upstream': { type: 'string', multiple: true },
      'cluster-domain': { type: 'string', default: 'cluster.local' },
    });
    if (!['on', 'off'].includes(values['dns-capture'])) throw usageError(this, '--dns-capture is on or off');
    const dnsUpstreams = list(values['dns-upstream']).map((u) => parseUpstream(u) ?? (() => { throw usageError(this, `--dns-upstream "${u}" is not IP or IP:PORT`); })());
    if (!values.node) throw usageError(this, '--node NAME is required');
    if (!values.xds === !values.config) throw usageError(this, 'give either --xds ADDR (with --token-file and --root-cert) or --config FILE (with --ca DIR)');
    const logger = new Logger({ component: 'ztunnel' }).child({ node: values.node });
    const metrics = new MetricsRegistry();
    registerProcessMetrics(metrics);
    const template = values['pod-netns-prefix'];
    if (template && values.zds) throw usageError(this, 'give --zds or --pod-netns-prefix, not both');
    let zds: ZdsClient | undefined;
    const network = (w: Workload): PodNetwork | undefined => {
      if (zds) {
        const z = zds.lookup(w.namespace, w.name);
        return z ? NetnsPodNetwork.fromNetnsFd(z.netnsFd, `${z.info.namespace}/${z.info.name}`, () => zds?.lookup(w.namespace, w.name)?.listeners ?? new Map()) : undefined;
      }
      return template ? NetnsPodNetwork.open(podNetnsName(template, w.namespace, w.name)) : new HostPodNetwork();
    };
    const capture = !!template || !!values.zds;
    let certificates: CertificateSource;
    let token: TokenSource | undefined;
    let caClient: CaClient | undefined;
    let tls: ClientTlsOptions | undefined;
    if (values.xds) {
      if (!values['token-file'] || !values['root-cert']) throw usageError(this, '--xds needs --token-file and --root-cert');
      token = tokenFromFile(values['token-file']);
      const rootPem = await readFile(values['root-cert'], 'utf8');
      const { CaClient } = await import('../../xds/ca-client.js');
      const { controlPlaneIdentity, controlPlaneTls } = await import('../../xds/control-plane-tls.js');
      tls = controlPlaneTls(rootPem, values['xds-identity'] ?? controlPlaneIdentity(values['trust-domain']));
      const client = new CaClient({ address: values.xds, token, tls });
      caClient = client;
      certificates = managedCertificates({
        fetch: (csrPem, identity) => client.createCertificate({ csrPem, ttlSeconds: 24 * 3600, impersonatedIdentity: formatSpiffe(identity) }),
        rootPem, clock: systemClock, logger,
      });
    } else {
      if (!values.ca) throw usageError(this, '--config needs --ca DIR');
      const { MeshCA } = await import('../../identity/ca.js');
      const ca = await MeshCA.load(values.ca, { trustDomain: values['trust-domain'] });
      certificates = managedCertificates({ fetch: localCaFetcher(ca), rootPem: ca.rootPem, clock: systemClock, logger });
    }
    const ztunnel = new Ztunnel({
      node: values.node, trustDomain: values['trust-domain'], logger, metrics, clock: systemClock,
      certificates, network, capture, bindAddress: (w) => (capture ? '0.0.0.0' : w.addresses[0]!),
      ...(values.zds ? {
        enrolled: (w: Workload) => !!zds?.lookup(w.namespace, w.name),
        networkVersion: (w: Workload) => {
          const z = zds?.lookup(w.namespace, w.name);
          return z ? { netns: z.netnsId, listeners: z.listenersVersion } : undefined;
        },
      } : {}),
      dns: capture && values['dns-capture'] === 'on' ? { upstreams: dnsUpstreams, clusterDomain: values['cluster-domain'] } : undefined,
    });
    if (values.zds) {
      zds = new ZdsClient({
        path: resolve(io.cwd, values.zds), clock: systemClock, logger,
        onChange: () => void ztunnel.refresh(),
        ready: () => ztunnel.ready(),
      });
      zds.start();
    }
    const ready = () => (zds && !zds.synced ? { ready: false, reason: 'no snapshot from the node agent yet' } : ztunnel.ready());
    let stopSource: () => void;
    let xds: XdsSource | undefined;
    if (values.xds) {
      const { XdsSource } = await import('../../dataplane/xds-source.js');
      xds = new XdsSource({ address: values.xds, node: values.node, token, tls, logger, meshSettings: true, onState: (s) => void ztunnel.setState(s) });
      xds.start();
      stopSource = () => xds!.close();
    } else {
      const { loadStaticState, watchStaticState } = await import('../../ztunnel/static-source.js');
      await ztunnel.setState(await loadStaticState(values.config!, '1'));
      stopSource = watchStaticState(values.config!, logger, (s) => void ztunnel.setState(s));
    }

    const admin = new AdminServer({
      logger, metrics, ready,
      routes: { '/config_dump': () => ({ json: { ...ztunnel.configDump(), xds: xds?.status() ?? null, zds: zds?.status() ?? null } }) },
    });
    for (const addr of new Set([values.admin, values.metrics, values.readiness])) {
      const a = parseAuthority(addr);
      if (!a) throw usageError(this, `"${addr}" is not ip:port`);
      await admin.listen(a.ip, a.port, { reusePort: values['admin-reuse-port'] === true });
    }
    const forwarders: net.Server[] = [];
    for (const f of list(values.forward)) {
      const m = /^(.+?)=([a-z0-9-]+)\/([a-z0-9.-]+)>(.+)$/.exec(f);
      const listen = m && parseAuthority(m[1]!);
      const dst = m && parseAuthority(m[4]!);
      if (!m || !listen || !dst) throw usageError(this, `--forward must be LISTEN=NS/POD>DST with ip:port addresses, not "${f}"`);
      const uid = `Kubernetes//Pod/${m[2]}/${m[3]}`;
      const server = net.createServer({ allowHalfOpen: true }, (s) => ztunnel.handleOutbound(s, uid, dst));
      await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(listen.port, listen.ip, () => resolve()); });
      forwarders.push(server);
    }
    const r = ready();
    io.err(`ztunnel ${values.node}: serving ${ztunnel.localWorkloads().length} workload(s); admin http://${values.admin}/config_dump, metrics http://${values.metrics}/metrics${r.ready ? '' : ` (not ready: ${r.reason})`}\n`);

    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        logger.info('shutting down', { signal: sig });
        stopSource();
        zds?.close();
        caClient?.close();
        for (const f of forwarders) f.close();
        void ztunnel.close(Number(values['drain-ms'])).then(() => admin.close()).then(resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    return 0;
  },
};

