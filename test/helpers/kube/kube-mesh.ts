// A control plane reading the API server stand-in (the Kubernetes source), and ztunnel xDS
// clients connected to it over real gRPC on loopback.
import { memoryLogger, type LogFields } from '../../../src/core/logger.js';
import { systemClock } from '../../../src/core/clock.js';
import { MeshCA } from '../../../src/identity/ca.js';
import { MetricsRegistry } from '../../../src/telemetry/metrics.js';
import { ControlPlane, type CallerPolicy } from '../../../src/controlplane/control-plane.js';
import { issueNodeTokens, type NodeTokens } from '../../../src/controlplane/node-credentials.js';
import { XdsSource } from '../../../src/dataplane/xds-source.js';
import { controlPlaneIdentity, controlPlaneTls } from '../../../src/xds/control-plane-tls.js';
import type { ClientTlsOptions } from '../../../src/xds/credentials.js';
import { randomBytes } from 'node:crypto';
import type { MeshView } from '../../../src/dataplane/mesh-view.js';
import { loadKubeConfig } from '../../../src/kubernetes/kube-client.js';
import { startKubernetesParts, type KubernetesParts, type KubernetesPartsOptions } from '../../../src/kubernetes/kube-control-plane.js';
import { KubeApiServer } from './apiserver.js';

export interface KubeZtunnel {
  node: string;
  states: MeshView[];
  latest(): MeshView | undefined;
  close(): void;
}

export interface KubeMesh {
  api: KubeApiServer;
  ca: MeshCA;
  tokens: NodeTokens;
  cp: ControlPlane;
  parts: KubernetesParts;
  cpLogs: LogFields[];
  metrics: MetricsRegistry;
  xdsAddress: string;
  /** TLS to the control plane as proxies use it (mesh root + the control plane's identity). */
  tls: ClientTlsOptions;
  adminToken: string;
  /** The control plane's admin API, e.g. http://127.0.0.1:PORT (GET /api/status with adminToken). */
  adminUrl: string;
  ztunnel(node: string): KubeZtunnel;
  close(): Promise<void>;
}

export interface KubeMeshOptions {
  nodes?: string[];
  callers?: (api: KubeApiServer, parts: () => KubernetesParts) => CallerPolicy;
  api?: KubeApiServer;
  waypoints?: KubernetesPartsOptions['waypoints'];
  rediscoverMs?: number;
}

export async function startKubeMesh(options: KubeMeshOptions = {}): Promise<KubeMesh> {
  const api = options.api ?? new KubeApiServer();
  if (!api.port) await api.start();
  const ca = await MeshCA.create({ trustDomain: 'cluster.local' });
  const tokens = issueNodeTokens(options.nodes ?? ['node-1', 'node-2']);
  const { logger, lines } = memoryLogger({ component: 'control-plane', level: 'debug' });
  const metrics = new MetricsRegistry();
  const adminToken = randomBytes(16).toString('hex');
  const tls = controlPlaneTls(ca.rootPem, controlPlaneIdentity('cluster.local'));
  const late: { parts?: KubernetesParts } = {};
  const cp = new ControlPlane({
    logger, metrics, clock: systemClock, ca, nodeTokens: tokens, build: { observedPods: true },
    configPaths: [], xdsAddress: '127.0.0.1:0', adminAddress: '127.0.0.1:0', debounceMs: 10,
    holdPushUntilLoaded: true, callers: options.callers?.(api, () => late.parts!),
    adminToken, identity: controlPlaneIdentity('cluster.local'),
  });
  const ports = await cp.start();
  const parts = startKubernetesParts({
    kubeConfig: loadKubeConfig({ kubeconfigText: api.kubeconfig() }), controlPlane: cp, rootNamespace: 'istio-system',
    logger, clock: systemClock, metrics, debounceMs: 20, statusDebounceMs: 20, backoff: { initialMs: 50, maxMs: 400 }, waypoints: options.waypoints, rediscoverMs: options.rediscoverMs,
  });
  late.parts = parts;
  const xdsAddress = `127.0.0.1:${ports.xdsPort}`;
  const ztunnels: KubeZtunnel[] = [];
  return {
    api, ca, tokens, cp, parts, cpLogs: lines, metrics, xdsAddress, tls, adminToken, adminUrl: `http://127.0.0.1:${ports.adminPort}`,
    ztunnel(node) {
      const states: MeshView[] = [];
      const { logger: zl } = memoryLogger({ component: `ztunnel-${node}` });
      const xds = new XdsSource({ address: xdsAddress, node, token: tokens[node]!, tls, logger: zl, onState: (s) => states.push(s) });
      xds.start();
      const z: KubeZtunnel = { node, states, latest: () => states[states.length - 1], close: () => xds.close() };
      ztunnels.push(z);
      return z;
    },
    async close() {
      for (const z of ztunnels) z.close();
      parts.close();
      await cp.close();
      await api.stop();
    },
  };
}
