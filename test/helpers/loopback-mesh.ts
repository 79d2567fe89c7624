// A two-node mesh on loopback for the direct tier: real ztunnels (HostPodNetwork: workloads
// are 127.0.x.y addresses of this host), a real CA, real application sockets. Explicit
// forwarders stand in for capture: a test connects to a forwarder as "workload X connecting
// to destination D".
import net from 'node:net';
import { memoryLogger, type LogFields } from '../../src/core/logger.js';
import { systemClock } from '../../src/core/clock.js';
import { MeshCA } from '../../src/identity/ca.js';
import { MetricsRegistry } from '../../src/telemetry/metrics.js';
import { Ztunnel } from '../../src/ztunnel/ztunnel.js';
import { MeshView } from '../../src/dataplane/mesh-view.js';
import { HostPodNetwork, type Endpoint } from '../../src/dataplane/pod-network.js';
import { localCaFetcher, managedCertificates } from '../../src/dataplane/certificates.js';
import { meshFromYaml } from './config.js';
import type { WorkloadApi } from '../../src/controlplane/translate.js';

export interface LoopbackNode {
  name: string;
  ztunnel: Ztunnel;
  metrics: MetricsRegistry;
  logs: LogFields[];
}

export interface LoopbackMesh {
  ca: MeshCA;
  api: WorkloadApi;
  nodes: Record<string, LoopbackNode>;
  /** A listener that hands each connection to `uid`'s ztunnel as an outbound connection to `dst`. */
  forward(fromUid: string, dst: Endpoint): Promise<Endpoint>;
  /** A listener that hands each connection to `uid`'s ztunnel as plaintext inbound to `target`. */
  plaintext(toUid: string, target: Endpoint): Promise<Endpoint>;
  /** Apply new config to every ztunnel (as a push would). */
  update(yamlText: string): Promise<void>;
  accessLogs(node: string): LogFields[];
  close(): Promise<void>;
}

export async function startLoopbackMesh(yamlText: string, nodeNames = ['node-1', 'node-2']): Promise<LoopbackMesh> {
  const ca = await MeshCA.create({ trustDomain: 'cluster.local' });
  let check = meshFromYaml(yamlText, { nodes: nodeNames });
  if (!check.api) throw new Error(`invalid test mesh: ${JSON.stringify(check.diagnostics, null, 1)}`);
  const nodes: Record<string, LoopbackNode> = {};
  let version = 1;
  for (const name of nodeNames) {
    const { logger, lines } = memoryLogger({ component: `ztunnel-${name}`, level: 'info' });
    const metrics = new MetricsRegistry();
    const ztunnel = new Ztunnel({
      node: name, trustDomain: 'cluster.local', logger, metrics, clock: systemClock,
      certificates: managedCertificates({ fetch: localCaFetcher(ca), rootPem: ca.rootPem, clock: systemClock, logger }),
      network: () => new HostPodNetwork(),
      capture: false,
      bindAddress: (w) => w.addresses[0]!,
      upstreamConnectTimeoutMs: 3000,
    });
    await ztunnel.setState(new MeshView(check.api, String(version)));
    nodes[name] = { name, ztunnel, metrics, logs: lines };
  }
  const servers: net.Server[] = [];
  const listen = async (handler: (s: net.Socket) => void): Promise<Endpoint> => {
    const server = net.createServer({ allowHalfOpen: true }, handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const a = server.address() as net.AddressInfo;
    return { ip: a.address, port: a.port };
  };
  const nodeOf = (uid: string) => {
    const w = check.api!.workloads.find((x) => x.uid === uid);
    if (!w) throw new Error(`no workload ${uid}`);
    return nodes[w.node]!;
  };
  return {
    ca,
    get api() { return check.api!; },
    nodes,
    forward: (fromUid, dst) => listen((s) => nodeOf(fromUid).ztunnel.handleOutbound(s, fromUid, dst)),
    plaintext: (toUid, target) => listen((s) => nodeOf(toUid).ztunnel.handleInboundPlaintext(s, toUid, target)),
    async update(text) {
      check = meshFromYaml(text, { nodes: nodeNames });
      if (!check.api) throw new Error(`invalid test mesh: ${JSON.stringify(check.diagnostics, null, 1)}`);
      version++;
      for (const n of Object.values(nodes)) await n.ztunnel.setState(new MeshView(check.api, String(version)));
    },
    accessLogs: (node) => nodes[node]!.logs.filter((l) => l.msg === 'connection complete'),
    async close() {
      for (const s of servers) s.close();
      await Promise.all(Object.values(nodes).map((n) => n.ztunnel.close(500)));
    },
  };
}
