// A control plane and ztunnels in one process, talking real gRPC (xDS + CA) on loopback.
// Workloads are loopback addresses (HostPodNetwork), as in loopback-mesh.ts.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { controlPlaneIdentity, controlPlaneTls } from '../../src/xds/control-plane-tls.js';
import type { ClientTlsOptions } from '../../src/xds/credentials.js';
import { memoryLogger, type LogFields } from '../../src/core/logger.js';
import { systemClock } from '../../src/core/clock.js';
import { MeshCA } from '../../src/identity/ca.js';
import { formatSpiffe } from '../../src/identity/spiffe.js';
import { MetricsRegistry } from '../../src/telemetry/metrics.js';
import { ControlPlane, type ControlPlaneOptions } from '../../src/controlplane/control-plane.js';
import { issueNodeTokens, type NodeTokens } from '../../src/controlplane/node-credentials.js';
import { CaClient } from '../../src/xds/ca-client.js';
import { Ztunnel } from '../../src/ztunnel/ztunnel.js';
import { XdsSource } from '../../src/dataplane/xds-source.js';
import { HostPodNetwork, type Endpoint } from '../../src/dataplane/pod-network.js';
import { managedCertificates } from '../../src/dataplane/certificates.js';

export interface XdsNode {
  name: string;
  ztunnel: Ztunnel;
  xds: XdsSource;
  ca: CaClient;
  logs: LogFields[];
  metrics: MetricsRegistry;
  stop(): Promise<void>;
}

export interface XdsMesh {
  ca: MeshCA;
  tokens: NodeTokens;
  /** The admin API's bearer token. */
  adminToken: string;
  /** TLS to the control plane as the proxies use it (mesh root + the control plane's identity). */
  tls: ClientTlsOptions;
  /** Extra options for the next startControlPlane(). */
  controlPlaneOptions: Partial<ControlPlaneOptions>;
  cp: ControlPlane | undefined;
  cpLogs: LogFields[];
  xdsAddress: string;
  adminUrl: string;
  nodes: Record<string, XdsNode>;
  startControlPlane(): Promise<void>;
  stopControlPlane(): Promise<void>;
  startNode(name: string): Promise<XdsNode>;
  forward(node: string, fromUid: string, dst: Endpoint): Promise<Endpoint>;
  close(): Promise<void>;
}

export async function startXdsMesh(initialYaml: string, nodeNames = ['node-1', 'node-2']): Promise<XdsMesh> {
  const ca = await MeshCA.create({ trustDomain: 'cluster.local' });
  const tokens = issueNodeTokens(nodeNames);
  const servers: net.Server[] = [];
  const cpLog = memoryLogger({ component: 'control-plane' });
  let xdsPort = 0;
  let adminPort = 0;
  const adminToken = randomBytes(16).toString('hex');
  const tls = controlPlaneTls(ca.rootPem, controlPlaneIdentity('cluster.local'));
  const mesh: XdsMesh = {
    ca, tokens, adminToken, tls, controlPlaneOptions: {}, cp: undefined, cpLogs: cpLog.lines, xdsAddress: '', adminUrl: '', nodes: {},
    async startControlPlane() {
      const cp = new ControlPlane({
        logger: cpLog.logger, metrics: new MetricsRegistry(), clock: systemClock, ca, nodeTokens: tokens,
        build: { nodes: nodeNames }, configPaths: [], xdsAddress: `127.0.0.1:${xdsPort}`, adminAddress: `127.0.0.1:${adminPort}`, debounceMs: 10,
        adminToken, identity: controlPlaneIdentity('cluster.local'), ...mesh.controlPlaneOptions,
      });
      const ports = await cp.start();
      xdsPort = ports.xdsPort;
      adminPort = ports.adminPort;
      mesh.xdsAddress = `127.0.0.1:${xdsPort}`;
      mesh.adminUrl = `http://127.0.0.1:${adminPort}`;
      mesh.cp = cp;
      if (initialYaml && cp.store.current().version === 0) {
        const r = cp.store.apply([{ file: 'initial.yaml', text: initialYaml }]);
        if (!r.ok) throw new Error(`invalid initial config: ${JSON.stringify(r.diagnostics)}`);
      }
    },
    async stopControlPlane() {
      await mesh.cp?.close();
      mesh.cp = undefined;
    },
    async startNode(name) {
      const { logger, lines } = memoryLogger({ component: `ztunnel-${name}` });
      const metrics = new MetricsRegistry();
      const caClient = new CaClient({ address: mesh.xdsAddress, token: tokens[name]!, tls, timeoutMs: 2000 });
      const ztunnel = new Ztunnel({
        node: name, trustDomain: 'cluster.local', logger, metrics, clock: systemClock,
        certificates: managedCertificates({
          fetch: (csrPem, id) => caClient.createCertificate({ csrPem, ttlSeconds: 3600, impersonatedIdentity: formatSpiffe(id) }),
          rootPem: ca.rootPem, clock: systemClock, logger,
        }),
        network: () => new HostPodNetwork(), capture: false, bindAddress: (w) => w.addresses[0]!, upstreamConnectTimeoutMs: 3000,
      });
      const xds = new XdsSource({ address: mesh.xdsAddress, node: name, token: tokens[name]!, tls, logger, onState: (s) => void ztunnel.setState(s) });
      xds.start();
      const node: XdsNode = {
        name, ztunnel, xds, ca: caClient, logs: lines, metrics,
        async stop() {
          xds.close();
          caClient.close();
          await ztunnel.close(200);
          delete mesh.nodes[name];
        },
      };
      mesh.nodes[name] = node;
      return node;
    },
    async forward(node, fromUid, dst) {
      const server = net.createServer({ allowHalfOpen: true }, (s) => mesh.nodes[node]!.ztunnel.handleOutbound(s, fromUid, dst));
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const a = server.address() as net.AddressInfo;
      return { ip: a.address, port: a.port };
    },
    async close() {
      for (const s of servers) s.close();
      for (const n of Object.values(mesh.nodes)) await n.stop();
      await mesh.stopControlPlane();
    },
  };
  await mesh.startControlPlane();
  for (const n of nodeNames) await mesh.startNode(n);
  return mesh;
}
