// The local cluster's state directory: everything `ambit up` makes that is not a kernel
// object lives here, so `ambit down` (even after a crash) knows what to remove.
//
//   cluster.json        what was created: prefix, nodes, addresses, config paths
//   status.json         the daemon's progress and health (written by the daemon)
//   ca/                 the mesh CA (Istio cacerts files)
//   root-cert.pem       the mesh root, for ztunnels
//   node-tokens.json    per-node credentials (0600); tokens/<node>.token for each ztunnel
//   proxy-key           key of the per-proxy credentials (0600); tokens/<ns>_<pod>.token for each
//                       waypoint replica and sidecar
//   admin-token         the control plane's admin API token (0600); `ambit` reads it
//   logs/               control-plane.log, ztunnel-<node>.log, node-agent-<node>.log, daemon.log,
//                       pods/<ns>_<pod>_<container>.log
//   nodes/<node>/       the node agent's sockets (cni.sock, ztunnel.sock, agent.sock) and pod
//                       records (pods/), the node's CNI configuration (net.d/10-ambit.conflist)
//   sandboxes/          one record per pod sandbox (container ID, netns) for CNI DEL
//   cni/results/        the CNI runtime's cache of ADD results (as libcni keeps them)
//   pids/               one PID file per supervised process; daemon.pid for the daemon
// The directory itself is 0700: pods (unprivileged, and without the state dir in their mount
// namespace) never see any of it.
import { existsSync } from 'node:fs';
import { readFile, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { CryptoMode } from '../core/crypto-policy.js';
import { AmbitError } from '../core/errors.js';

export const DEFAULT_STATE_DIR = '/var/run/ambit';
export const DEFAULT_PREFIX = 'ambit';

export interface ClusterSpec {
  prefix: string;
  nodes: string[];
  stateDir: string;
  configPaths: string[];
  xdsAddress: string;
  adminAddress: string;
  /** ztunnel admin/metrics/readiness listen on <ztunnelAdminNet>.<node index> (default 127.0.1). */
  ztunnelAdminNet: string;
  /** `node <repo>/bin/ambit.js`: how pods and daemons run `ambit`. */
  ambit: { node: string; script: string };
  createdAt: string;
  trustDomain: string;
  /** false: the daemon runs no node agents (a person runs `ambit node-agent`, as installing istio-cni later). */
  nodeAgents?: boolean;
  /** The outside host (cluster/outside-host.ts) and the names its DNS resolver answers with its address. */
  outside?: { ip: string; hosts: string[]; demoPartner?: boolean };
  /** The ztunnel's DNS proxy and the pods' port-53 capture; default true (Istio 1.25+). */
  dnsCapture?: boolean;
}

export type Phase = 'starting' | 'network' | 'control-plane' | 'node-agents' | 'ztunnels' | 'pods' | 'ready' | 'degraded' | 'stopping' | 'failed';

export interface ClusterStatusFile {
  phase: Phase;
  message: string;
  updatedAt: string;
  configVersion: number;
  pods: { namespace: string; name: string; node: string; ip: string; mode: string; captured: boolean; annotations?: Record<string, string>; user?: { uid: number; gid: number }; processes: { name: string; state: string; restarts: number; pid?: number }[] }[];
  components: { name: string; state: string; restarts: number; pid?: number; ready?: boolean; log: string }[];
  /** The crypto mode of the cluster's processes (they share the daemon's environment). */
  crypto?: CryptoMode;
  error?: string;
}

export function statePaths(dir: string) {
  return {
    dir,
    spec: join(dir, 'cluster.json'),
    status: join(dir, 'status.json'),
    ca: join(dir, 'ca'),
    root: join(dir, 'root-cert.pem'),
    tokens: join(dir, 'node-tokens.json'),
    tokenFile: (node: string) => join(dir, 'tokens', `${node}.token`),
    proxyTokenFile: (ns: string, pod: string) => join(dir, 'tokens', `${ns}_${pod}.token`),
    proxyKey: join(dir, 'proxy-key'),
    adminToken: join(dir, 'admin-token'),
    logs: join(dir, 'logs'),
    log: (name: string) => join(dir, 'logs', `${name}.log`),
    podLog: (ns: string, pod: string, container: string) => join(dir, 'logs', 'pods', `${ns}_${pod}_${container}.log`),
    pids: join(dir, 'pids'),
    daemonPid: join(dir, 'pids', 'daemon.json'),
  };
}

export function stateDirFrom(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? env.AMBIT_STATE_DIR ?? DEFAULT_STATE_DIR;
}

export async function readSpec(dir: string): Promise<ClusterSpec> {
  const p = statePaths(dir).spec;
  if (!existsSync(p)) {
    throw new AmbitError('AMBIT_ERR_NOT_FOUND', `no cluster in ${dir}`, { hint: 'start one with `ambit up` (or set --state-dir / AMBIT_STATE_DIR)' });
  }
  return JSON.parse(await readFile(p, 'utf8')) as ClusterSpec;
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o644 });
  await rename(tmp, path);
}

export async function readStatus(dir: string): Promise<ClusterStatusFile | undefined> {
  try {
    return JSON.parse(await readFile(statePaths(dir).status, 'utf8')) as ClusterStatusFile;
  } catch {
    return undefined;
  }
}

/** The admin/metrics/readiness address of a node's ztunnel: <net>.<index> (127.0.1.<index>). */
/** The k-th waypoint replica's admin/metrics host (k from 1). */
export function waypointAdminHost(spec: Pick<ClusterSpec, 'ztunnelAdminNet'>, k: number): string {
  return `${spec.ztunnelAdminNet}.${200 + (k % 50)}`;
}

export function ztunnelAdminHost(spec: Pick<ClusterSpec, 'ztunnelAdminNet'>, nodeIndex: number): string {
  return `${spec.ztunnelAdminNet}.${nodeIndex}`;
}
