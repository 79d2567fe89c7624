// The local cluster's "kubelet + container runtime" for pod networking (pod-sandbox.ts is the
// processes' side): a pod sandbox is a network namespace, networked by the node's CNI chain
// exactly as a Kubernetes runtime does it.
//
//   create: ip netns add <prefix>-<ns>-<pod>, lo up (tagged, see topology.ts)
//           CNI ADD <node>/net.d/10-ambit.conflist, run in the node's namespace:
//             ptp (veth, static IPAM: the model's pod IP in the node's pod CIDR, gateway .1)
//             ambit-cni (added by the node agent: enrolment, capture, ZDS)
//           node side of the veth tagged `ambit-pod:<ns>/<name>:<ip>` (listPods reads it)
//   remove: CNI DEL (from the cached ADD result), then the namespace goes
//
// Invariants:
//  - A pod's processes start only after its ADD succeeded: a pod that should be captured
//    never runs uncaptured (the agent captured it before ambit-cni answered).
//  - An ADD that fails is undone (CNI DEL, namespace deleted) before the error is reported;
//    the caller retries later (the agent may have asked to try again).
//  - Each sandbox is recorded in <stateDir>/sandboxes/<netns>.json (container ID, node, netns),
//    so `ambit down` and a restarted daemon can run DEL for it; DEL is idempotent.
//  - The CNI environment is the spec's: CNI_COMMAND, CNI_CONTAINERID (64 hex, as runtimes
//    make them), CNI_NETNS (/var/run/netns/...), CNI_IFNAME eth0, CNI_ARGS with
//    IgnoreUnknown=1, K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID and the
//    static IPAM's IP and GATEWAY, CNI_PATH (Debian's plugins, then Ambit's).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmbitError } from '../core/errors.js';
import { parseCidr, nthAddress } from '../core/ip.js';
import { CniRuntime, parseConfList, type ConfList, type RuntimeConf } from '../cni/runtime.js';
import type { NodeInfo } from '../model/types.js';
import { podNetnsName } from '../sys/netns-names.js';
import { deleteNetns, ipBatch, waitForCarrier } from './netns.js';
import { formatTag, nodeNetnsName } from './topology.js';

export const POD_IFNAME = 'eth0';
export const NETWORK_NAME = 'ambit';
/** Debian's containernetworking-plugins. */
export const SYSTEM_CNI_DIR = '/usr/lib/cni';

export interface SandboxPod {
  namespace: string;
  name: string;
  node: string;
  ip: string;
}

export interface SandboxRecord extends SandboxPod {
  containerId: string;
  netns: string;
  /** The node's pod CIDR (the static IPAM arguments of DEL need no control plane). */
  podCidr: string;
}

export function nodeDir(stateDir: string, node: string): string {
  return join(stateDir, 'nodes', node);
}

export function nodeConfListPath(stateDir: string, node: string): string {
  return join(nodeDir(stateDir, node), 'net.d', '10-ambit.conflist');
}

/** Where ambit-cni is built (native/build, next to the addon). */
export function ambitCniDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'native', 'binding.gyp'))) return join(dir, 'native', 'build');
    const up = dirname(dir);
    if (up === dir) throw new AmbitError('AMBIT_ERR_CNI', 'cannot find native/build (ambit-cni)', { hint: 'run `npm run setup`' });
    dir = up;
  }
}

/** The node's base network configuration: ptp with static IPAM (pure). The agent appends ambit-cni. */
export function baseConfList(): ConfList {
  return {
    cniVersion: '1.0.0',
    name: NETWORK_NAME,
    plugins: [{ type: 'ptp', ipam: { type: 'static', routes: [{ dst: '0.0.0.0/0' }] } }],
  };
}

/** Writes the node's conflist when it does not exist yet (an agent may have extended it). */
export function ensureNodeConfList(stateDir: string, node: string): string {
  const path = nodeConfListPath(stateDir, node);
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(`${path}.tmp`, JSON.stringify(baseConfList(), null, 2) + '\n');
    renameSync(`${path}.tmp`, path);
  }
  return path;
}

/** The static IPAM arguments for a pod: its IP in the node's pod CIDR, gateway the CIDR's .1 (pure). */
export function ipamArgs(node: Pick<NodeInfo, 'podCidr'>, ip: string): Array<[string, string]> {
  const cidr = parseCidr(node.podCidr);
  if (!cidr) throw new AmbitError('AMBIT_ERR_CNI', `node pod CIDR ${node.podCidr} is not a CIDR`);
  return [['IP', `${ip}/${cidr.prefix}`], ['GATEWAY', nthAddress(cidr, 1)]];
}

export class PodSandboxes {
  private readonly dir: string;

  constructor(private readonly opts: { prefix: string; stateDir: string; nodes?: readonly NodeInfo[] }) {
    this.dir = join(opts.stateDir, 'sandboxes');
    mkdirSync(this.dir, { recursive: true });
  }

  /** Creates the sandbox and runs the node's CNI chain (ADD); undone on failure. */
  async create(pod: SandboxPod): Promise<SandboxRecord> {
    const node = this.opts.nodes?.find((n) => n.name === pod.node);
    if (!node) throw new AmbitError('AMBIT_ERR_CLUSTER', `pod ${pod.namespace}/${pod.name}: no node ${pod.node}`);
    const name = podNetnsName(this.opts.prefix, pod.namespace, pod.name);
    const netns = `/var/run/netns/${name}`;
    if (existsSync(netns)) await this.remove(pod);
    const record: SandboxRecord = { ...pod, containerId: randomBytes(32).toString('hex'), netns, podCidr: node.podCidr };
    await ipBatch(null, [`netns add ${name}`]);
    this.save(record);
    try {
      await ipBatch(name, [`link set lo up alias ${formatTag({ prefix: this.opts.prefix, kind: 'pod', namespace: pod.namespace, name: pod.name })}`]);
      const result = await this.runtime(node.name).add(runtimeConf(record));
      const hostIf = hostInterface(result);
      if (hostIf) await ipBatch(nodeNetnsName(this.opts.prefix, node.name), [`link set ${hostIf} alias ambit-pod:${pod.namespace}/${pod.name}:${pod.ip}`]);
      await waitForCarrier(new Map([[name, [POD_IFNAME]]]));
      return record;
    } catch (e: unknown) {
      await this.remove(pod).catch(() => undefined);
      throw e;
    }
  }

  /** CNI DEL, then the namespace (and what runs in it) goes. Idempotent. */
  async remove(pod: Pick<SandboxPod, 'namespace' | 'name'>): Promise<void> {
    const name = podNetnsName(this.opts.prefix, pod.namespace, pod.name);
    const record = this.load(name);
    if (record) {
      try {
        await this.runtime(record.node).del(runtimeConf(record));
      } catch {
        // DEL tried every plugin; what is left goes with the namespace
      }
    }
    await deleteNetns([name]);
    rmSync(this.recordPath(name), { force: true });
  }

  /** Every recorded sandbox (for teardown). */
  records(): SandboxRecord[] {
    return readdirSync(this.dir).filter((f) => f.endsWith('.json')).map((f) => this.load(f.slice(0, -5))).filter((r): r is SandboxRecord => !!r);
  }

  record(pod: Pick<SandboxPod, 'namespace' | 'name'>): SandboxRecord | undefined {
    return this.load(podNetnsName(this.opts.prefix, pod.namespace, pod.name));
  }

  /** CNI CHECK of a sandbox (tests, diagnosis). */
  async check(pod: Pick<SandboxPod, 'namespace' | 'name'>): Promise<void> {
    const record = this.record(pod);
    if (!record) throw new AmbitError('AMBIT_ERR_NOT_FOUND', `no sandbox for ${pod.namespace}/${pod.name}`);
    await this.runtime(record.node).check(runtimeConf(record));
  }

  private runtime(node: string): CniRuntime {
    const path = ensureNodeConfList(this.opts.stateDir, node);
    return new CniRuntime({
      confList: parseConfList(readFileSync(path, 'utf8'), path),
      binDirs: [SYSTEM_CNI_DIR, ambitCniDir()],
      cacheDir: join(this.opts.stateDir, 'cni', 'results'),
      execNetns: `/var/run/netns/${nodeNetnsName(this.opts.prefix, node)}`,
    });
  }

  private recordPath(netnsName: string): string {
    return join(this.dir, `${netnsName}.json`);
  }

  private save(r: SandboxRecord): void {
    const path = this.recordPath(resolve(r.netns).split('/').pop()!);
    writeFileSync(`${path}.tmp`, JSON.stringify(r) + '\n');
    renameSync(`${path}.tmp`, path);
  }

  private load(netnsName: string): SandboxRecord | undefined {
    try {
      return JSON.parse(readFileSync(this.recordPath(netnsName), 'utf8')) as SandboxRecord;
    } catch {
      return undefined;
    }
  }
}

/** The CNI environment of a sandbox (pure). */
export function runtimeConf(r: SandboxRecord): RuntimeConf {
  return {
    containerId: r.containerId,
    netns: r.netns,
    ifName: POD_IFNAME,
    args: [
      ['IgnoreUnknown', '1'], ['K8S_POD_NAMESPACE', r.namespace], ['K8S_POD_NAME', r.name], ['K8S_POD_INFRA_CONTAINER_ID', r.containerId],
      ...ipamArgs({ podCidr: r.podCidr }, r.ip),
    ],
  };
}

/** The host-side interface of an ADD result (the one without a sandbox). */
function hostInterface(result: Record<string, unknown>): string | undefined {
  const ifs = result.interfaces;
  if (!Array.isArray(ifs)) return undefined;
  const host = ifs.find((i) => typeof i === 'object' && i !== null && !(i as { sandbox?: unknown }).sandbox);
  const name = (host as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' && /^[a-zA-Z0-9_.-]{1,15}$/.test(name) ? name : undefined;
}
