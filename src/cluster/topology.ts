// The local cluster's network: an underlay namespace with a bridge, a
// namespace per node hung on that bridge, a namespace per pod joined to its node by a veth.
//
//   <prefix>-underlay     br0, n<i> (one port per node)
//   <prefix>-<node>       ul0 172.30.0.<10+i>/24; ip_forward; <other pod CIDR> via <other ul0>;
//                         local <service CIDR> dev lo (VIPs are the node's own: see service-proxy.ts);
//                         av<hash> per pod (no address, MAC ee:ee:ee:ee:ee:ee), <podIP>/32 dev av<hash>
//   <pod netns>           eth0 <podIP>/32; 169.254.1.1 dev eth0 scope link; default via 169.254.1.1
//
// Invariants:
//  - Addresses exist only inside these namespaces. Nothing is linked to the host's namespace
//    (veth ends are created directly in their namespaces, never in the host's), and no node
//    has a default route: a packet for the host's networks dies at the node ("network
//    unreachable"). Pod CIDRs are routed node to node over the underlay.
//  - Calico-style pod links: every packet a pod sends goes to its node at layer 3 (the pod's
//    only routes are a link route to 169.254.1.1 and a default via it), so the node sees and
//    conntracks every flow, even pod-to-pod on one node; this is what makes the service DNAT
//    and its hairpin work without a bridge or br_netfilter. Calico answers the pod's ARP for
//    169.254.1.1 with proxy_arp on the host-side veth; proxy_arp only answers for an address
//    the node routes out of *another* interface, and a node here has no default route, so
//    instead the neighbours are static: the pod has a permanent entry 169.254.1.1 ->
//    ee:ee:ee:ee:ee:ee (the node side's fixed MAC), the node a permanent entry podIP -> the
//    pod's MAC (0a:58:<IPv4 bytes>, as the CNI bridge plugin derives it). No ARP crosses a
//    pod link, so the host's inherited arp_ignore/arp_filter settings cannot break it.
//  - Every namespace is tagged with the alias of its `lo`: `ambit:<prefix>:underlay`,
//    `ambit:<prefix>:node:<node>`, `ambit:<prefix>:pod:<ns>/<name>`; the node side of a pod
//    link carries `ambit-pod:<ns>/<name>:<ip>`. The kernel keeps this record with the
//    namespace, so listPods and destroyTopology need no state file and work after a crash.
//    destroyTopology removes the namespaces named `<prefix>-...` that carry its tag or none
//    (a crash between `netns add` and tagging), never one tagged by another prefix.
//  - Idempotent: createTopology and addPods create what is missing and re-apply the rest with
//    `replace` commands; a pod namespace left half-made (or made for another IP or node) is
//    rebuilt. removePod and destroyTopology succeed when there is nothing to remove.
//  - Pod IPs come from the caller (the model's allocation); the gateway is 169.254.1.1, so the
//    .1 the model keeps free in each pod CIDR is simply unused.
//  - Interface names are fixed or hashed (br0, n<i>, ul0, eth0, av<12 hex>), so they are
//    ≤ 15 characters whatever the prefix and names.
//  - Speed: a few `ip -batch` processes do the work: one in the host namespace for all
//    `netns add`/`link add`, one per node and one per pod (run in parallel), then one carrier
//    poll per namespace.
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { AmbitError } from '../core/errors.js';
import { cidrContains, isCanonicalCidr, parseCidr, parseIp } from '../core/ip.js';
import { DEFAULT_SETTINGS, type NodeInfo } from '../model/types.js';
import { deleteNetns, execInNetns, ipBatch, listNetns, mapLimit, readLinks, waitForCarrier, type LinkState } from './netns.js';

export const UNDERLAY_BRIDGE = 'br0';
export const NODE_UNDERLAY_IF = 'ul0';
export const POD_IF = 'eth0';
/** The pods' gateway address; the node side of every pod link answers for it (static neighbour). */
export const POD_GATEWAY = '169.254.1.1';
/** MAC of the node side of every pod link (as Calico). */
export const NODE_SIDE_MAC = 'ee:ee:ee:ee:ee:ee';
export const UNDERLAY_PREFIX_LENGTH = 24;

const MAX_PARALLEL = 16;
const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const POD_NAME_RE = /^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/;
const PREFIX_RE = /^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$/;
const MAX_ALIAS = 255;

export interface TopologyOptions {
  prefix: string;
  nodes: readonly NodeInfo[];
  /** Service VIP range, a local range of every node; default 10.96.0.0/16 (the model's default). */
  serviceCidr?: string;
}

export interface NodeNetwork extends NodeInfo {
  netns: string;
  underlayIp: string;
}

export interface Topology {
  prefix: string;
  underlayNetns: string;
  nodes: NodeNetwork[];
}

export interface PodSpec {
  prefix: string;
  node: string;
  namespace: string;
  name: string;
  ip: string;
}

export interface PodNetwork {
  namespace: string;
  name: string;
  node: string;
  ip: string;
  /** The pod's network namespace. */
  netns: string;
  /** The node side of the pod's veth (in the node's namespace). */
  nodeIf: string;
  mac: string;
}

// ---------------------------------------------------------------------------------------
// Names (pure)

export function underlayNetnsName(prefix: string): string {
  return `${prefix}-underlay`;
}

export function nodeNetnsName(prefix: string, node: string): string {
  return `${prefix}-${node}`;
}

import { podNetnsName } from '../sys/netns-names.js';
export { podNetnsName };

/** The node side of a pod's veth: `av` + 12 hex of sha1(ns/name) (14 chars). */
export function podNodeIfName(namespace: string, name: string): string {
  return `av${createHash('sha1').update(`${namespace}/${name}`).digest('hex').slice(0, 12)}`;
}

/** A pod's MAC from its IPv4 address: 0a:58:<the four bytes> (locally administered). */
export function podMac(ip: string): string {
  return ['0a', '58', ...ip.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');
}

export function nodeUnderlayIp(index: number): string {
  return `172.30.0.${10 + index}`;
}

export function underlayPortName(index: number): string {
  return `n${index}`;
}

type Tag = { prefix: string; kind: 'underlay' } | { prefix: string; kind: 'node'; node: string } | { prefix: string; kind: 'pod'; namespace: string; name: string };

export function formatTag(tag: Tag): string {
  switch (tag.kind) {
    case 'underlay':
      return `ambit:${tag.prefix}:underlay`;
    case 'node':
      return `ambit:${tag.prefix}:node:${tag.node}`;
    case 'pod':
      return `ambit:${tag.prefix}:pod:${tag.namespace}/${tag.name}`;
  }
}

export function parseTag(alias: string | undefined): Tag | undefined {
  const m = /^ambit:([^:]+):(underlay|node|pod)(?::(.*))?$/.exec(alias ?? '');
  if (!m) return undefined;
  const [, prefix, kind, rest] = m as unknown as [string, string, string, string | undefined];
  if (kind === 'underlay') return { prefix, kind };
  if (kind === 'node' && rest) return { prefix, kind, node: rest };
  const pod = /^([^/]+)\/(.+)$/.exec(rest ?? '');
  return kind === 'pod' && pod ? { prefix, kind, namespace: pod[1]!, name: pod[2]! } : undefined;
}

function podAlias(namespace: string, name: string, ip: string): string {
  return `ambit-pod:${namespace}/${name}:${ip}`;
}

function parsePodAlias(alias: string | undefined): { namespace: string; name: string; ip: string } | undefined {
  const m = /^ambit-pod:([^/]+)\/([^:]+):([\d.]+)$/.exec(alias ?? '');
  return m ? { namespace: m[1]!, name: m[2]!, ip: m[3]! } : undefined;
}

// ---------------------------------------------------------------------------------------
// Plans (pure): the `ip -batch` lines for each namespace

/** Lines run in the underlay namespace (the bridge and its ports up). */
export function underlayBatch(prefix: string, nodes: readonly NodeInfo[]): string[] {
  return [
    `link set lo up alias ${formatTag({ prefix, kind: 'underlay' })}`,
    `link set ${UNDERLAY_BRIDGE} up`,
    ...nodes.map((n) => `link set ${underlayPortName(n.index)} master ${UNDERLAY_BRIDGE} up`),
  ];
}

/** Lines run in a node's namespace: underlay address and routes to the other nodes' pod CIDRs. */
export function nodeBatch(prefix: string, node: NodeInfo, nodes: readonly NodeInfo[], serviceCidr: string = DEFAULT_SETTINGS.serviceCidr): string[] {
  return [
    `link set lo up alias ${formatTag({ prefix, kind: 'node', node: node.name })}`,
    `route replace local ${serviceCidr} dev lo`,
    `addr replace ${nodeUnderlayIp(node.index)}/${UNDERLAY_PREFIX_LENGTH} dev ${NODE_UNDERLAY_IF}`,
    `link set ${NODE_UNDERLAY_IF} up`,
    ...nodes.filter((o) => o.name !== node.name).map((o) => `route replace ${o.podCidr} via ${nodeUnderlayIp(o.index)} dev ${NODE_UNDERLAY_IF}`),
  ];
}

/** The host-namespace line that makes a pod's veth, each end directly in its namespace. */
export function podLinkAddLine(prefix: string, pod: Omit<PodSpec, 'prefix'>): string {
  return (
    `link add ${podNodeIfName(pod.namespace, pod.name)} netns ${nodeNetnsName(prefix, pod.node)} address ${NODE_SIDE_MAC} ` +
    `type veth peer name ${POD_IF} netns ${podNetnsName(prefix, pod.namespace, pod.name)} address ${podMac(pod.ip)}`
  );
}

/** Lines run in the node's namespace for one pod. */
export function podNodeSideBatch(pod: Omit<PodSpec, 'prefix'>): string[] {
  const dev = podNodeIfName(pod.namespace, pod.name);
  return [
    `link set ${dev} up alias ${podAlias(pod.namespace, pod.name, pod.ip)}`,
    `route replace ${pod.ip}/32 dev ${dev}`,
    `neigh replace ${pod.ip} lladdr ${podMac(pod.ip)} dev ${dev} nud permanent`,
  ];
}

/** Lines run in the pod's namespace. */
export function podSideBatch(prefix: string, pod: Omit<PodSpec, 'prefix'>): string[] {
  return [
    `link set lo up alias ${formatTag({ prefix, kind: 'pod', namespace: pod.namespace, name: pod.name })}`,
    `addr replace ${pod.ip}/32 dev ${POD_IF}`,
    `link set ${POD_IF} up`,
    `route replace ${POD_GATEWAY}/32 dev ${POD_IF} scope link`,
    `route replace default via ${POD_GATEWAY} dev ${POD_IF}`,
    `neigh replace ${POD_GATEWAY} lladdr ${NODE_SIDE_MAC} dev ${POD_IF} nud permanent`,
  ];
}

// ---------------------------------------------------------------------------------------
// Validation (pure)

function usage(message: string, hint?: string): AmbitError {
  return new AmbitError('AMBIT_ERR_USAGE', message, { hint });
}

export function validatePrefix(prefix: string): void {
  if (!PREFIX_RE.test(prefix)) {
    throw usage(`cluster prefix '${prefix}' is not valid`, 'use 1-32 lowercase letters, digits and dashes, e.g. `ambit`');
  }
}

export function validateNodes(nodes: readonly NodeInfo[]): void {
  if (nodes.length === 0) throw usage('a cluster needs at least one node');
  const seen = new Set<string>();
  const indexes = new Set<number>();
  for (const n of nodes) {
    if (!NAME_RE.test(n.name) || n.name.length > 63 || n.name === 'underlay') {
      throw usage(`node name '${n.name}' is not valid`, 'node names are DNS labels (lowercase letters, digits, dashes), not `underlay`');
    }
    if (!Number.isInteger(n.index) || n.index < 1 || n.index > 240) throw usage(`node ${n.name}: index ${n.index} must be 1..240`);
    const cidr = parseCidr(n.podCidr);
    if (!cidr || cidr.family !== 4 || !isCanonicalCidr(cidr)) throw usage(`node ${n.name}: pod CIDR '${n.podCidr}' is not an IPv4 CIDR`);
    if (seen.has(n.name)) throw usage(`node ${n.name} is listed twice`);
    if (indexes.has(n.index)) throw usage(`node index ${n.index} is used twice`);
    seen.add(n.name);
    indexes.add(n.index);
  }
}

export function validatePod(pod: PodSpec): void {
  validatePrefix(pod.prefix);
  if (!NAME_RE.test(pod.namespace) || pod.namespace.length > 63) throw usage(`namespace '${pod.namespace}' is not a valid Kubernetes namespace name`);
  if (!POD_NAME_RE.test(pod.name) || pod.name.length > 253) throw usage(`pod name '${pod.name}' is not a valid Kubernetes name`);
  if (!isIPv4(pod.ip)) throw usage(`pod ${pod.namespace}/${pod.name}: '${pod.ip}' is not an IPv4 address`);
  const tag = formatTag({ prefix: pod.prefix, kind: 'pod', namespace: pod.namespace, name: pod.name });
  if (tag.length > MAX_ALIAS || podAlias(pod.namespace, pod.name, pod.ip).length > MAX_ALIAS) {
    throw usage(`pod name ${pod.namespace}/${pod.name} is too long for the local cluster`, 'keep pod names under 150 characters');
  }
}

// ---------------------------------------------------------------------------------------
// Inspection

export interface NetnsInfo {
  netns: string;
  tag: Tag | undefined;
  links: LinkState[];
}

/** Every namespace named `<prefix>-...`, with its tag and links. */
export async function inspectNamespaces(prefix: string): Promise<NetnsInfo[]> {
  const names = (await listNetns()).filter((n) => n.startsWith(`${prefix}-`));
  return mapLimit(names, MAX_PARALLEL, async (netns) => {
    const links = await readLinks(netns);
    return { netns, tag: parseTag(links.find((l) => l.name === 'lo')?.alias), links };
  });
}

/** The pods of a cluster, read from the node namespaces' pod links (works after a crash). */
export async function listPods(prefix: string): Promise<PodNetwork[]> {
  validatePrefix(prefix);
  const infos = await inspectNamespaces(prefix);
  const existing = new Set(infos.map((i) => i.netns));
  const pods: PodNetwork[] = [];
  for (const info of infos) {
    if (info.tag?.prefix !== prefix || info.tag.kind !== 'node') continue;
    for (const link of info.links) {
      const p = parsePodAlias(link.alias);
      if (!p) continue;
      const netns = podNetnsName(prefix, p.namespace, p.name);
      if (!existing.has(netns)) continue;
      pods.push({ ...p, node: info.tag.node, netns, nodeIf: link.name, mac: podMac(p.ip) });
    }
  }
  return pods.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

function foreignTag(netns: string, tag: Tag | undefined, expected: Tag): AmbitError | undefined {
  if (!tag || formatTag(tag) === formatTag(expected)) return undefined;
  return new AmbitError('AMBIT_ERR_CLUSTER', `network namespace ${netns} already belongs to ${formatTag(tag)}, not ${formatTag(expected)}`, {
    hint:
      expected.kind === 'pod'
        ? 'a Kubernetes namespace and pod name that spell a node namespace (e.g. ns `node`, pod `1`) cannot be used; rename the pod'
        : 'choose another cluster prefix, or remove the other cluster with `ambit down`',
  });
}

// ---------------------------------------------------------------------------------------
// Topology

/** Creates (or completes) the underlay and the node namespaces. Idempotent. */
export async function createTopology(options: TopologyOptions): Promise<Topology> {
  const { prefix, nodes } = options;
  const serviceCidr = options.serviceCidr ?? DEFAULT_SETTINGS.serviceCidr;
  validatePrefix(prefix);
  validateNodes(nodes);
  const svc = parseCidr(serviceCidr);
  if (!svc || svc.family !== 4 || !isCanonicalCidr(svc)) throw usage(`service CIDR '${serviceCidr}' is not an IPv4 CIDR`);
  const underlay = underlayNetnsName(prefix);
  const wanted = [underlay, ...nodes.map((n) => nodeNetnsName(prefix, n.name))];
  const present = new Set(await listNetns());
  const infos = new Map(
    await mapLimit(wanted.filter((n) => present.has(n)), MAX_PARALLEL, async (netns) => {
      const links = await readLinks(netns);
      return [netns, { links, tag: parseTag(links.find((l) => l.name === 'lo')?.alias) }] as const;
    }),
  );
  for (const [netns, info] of infos) {
    const node = nodes.find((n) => nodeNetnsName(prefix, n.name) === netns);
    const expected: Tag = node ? { prefix, kind: 'node', node: node.name } : { prefix, kind: 'underlay' };
    const e = foreignTag(netns, info.tag, expected);
    if (e) throw e;
  }

  // Which node links need (re)making: missing on either side.
  const underlayLinks = new Set(infos.get(underlay)?.links.map((l) => l.name) ?? []);
  const remake = nodes.filter((n) => {
    const nodeLinks = infos.get(nodeNetnsName(prefix, n.name))?.links ?? [];
    return !underlayLinks.has(underlayPortName(n.index)) || !nodeLinks.some((l) => l.name === NODE_UNDERLAY_IF);
  });
  // Half-made leftovers of a crash: delete the surviving end (which deletes both).
  const stale: Array<Promise<unknown>> = [];
  for (const n of remake) {
    if (underlayLinks.has(underlayPortName(n.index))) stale.push(ipBatch(underlay, [`link del ${underlayPortName(n.index)}`]));
    const nodeNs = nodeNetnsName(prefix, n.name);
    if (infos.get(nodeNs)?.links.some((l) => l.name === NODE_UNDERLAY_IF)) stale.push(ipBatch(nodeNs, [`link del ${NODE_UNDERLAY_IF}`]));
  }
  await Promise.all(stale);

  // The bridge is made before the node links so that no underlay port has the same ifindex as
  // its peer ul0 (2): the kernel treats a carrier change on a stacked device whose ifindex
  // equals its iflink as non-urgent and reports it up to 1 s late (linkwatch), which would
  // hold createTopology back by a second.
  const hostLines = [
    ...wanted.filter((n) => !present.has(n)).map((n) => `netns add ${n}`),
    ...(underlayLinks.has(UNDERLAY_BRIDGE) ? [] : [`link add ${UNDERLAY_BRIDGE} netns ${underlay} type bridge`]),
    ...remake.map((n) => `link add ${underlayPortName(n.index)} netns ${underlay} type veth peer name ${NODE_UNDERLAY_IF} netns ${nodeNetnsName(prefix, n.name)}`),
  ];
  if (hostLines.length > 0) await ipBatch(null, hostLines);

  await Promise.all([
    ipBatch(underlay, underlayBatch(prefix, nodes)),
    ...nodes.map(async (n) => {
      const ns = nodeNetnsName(prefix, n.name);
      await ipBatch(ns, nodeBatch(prefix, n, nodes, serviceCidr));
      // Routing between pod links and the underlay. (rp_filter stays as inherited: every
      // source is routed back through the interface it came from, so strict mode passes.)
      await execInNetns(ns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    }),
  ]);
  await waitForCarrier(
    new Map<string, string[]>([
      [underlay, nodes.map((n) => underlayPortName(n.index))],
      ...nodes.map((n) => [nodeNetnsName(prefix, n.name), [NODE_UNDERLAY_IF]] as [string, string[]]),
    ]),
  );
  return {
    prefix,
    underlayNetns: underlay,
    nodes: nodes.map((n) => ({ ...n, netns: nodeNetnsName(prefix, n.name), underlayIp: nodeUnderlayIp(n.index) })),
  };
}

/**
 * Removes every namespace of the cluster (found by listing `ip netns`, so it works after a
 * crash), killing whatever runs inside. Namespaces named `<prefix>-...` but tagged by another
 * prefix are left alone and reported. Idempotent.
 */
export async function destroyTopology(prefix: string): Promise<{ removed: string[]; killedPids: number[]; skipped: string[] }> {
  validatePrefix(prefix);
  const infos = await inspectNamespaces(prefix);
  const ours = infos.filter((i) => !i.tag || i.tag.prefix === prefix).map((i) => i.netns);
  const skipped = infos.filter((i) => i.tag && i.tag.prefix !== prefix).map((i) => i.netns);
  const killedPids = await deleteNetns(ours);
  return { removed: ours, killedPids, skipped };
}

// ---------------------------------------------------------------------------------------
// Pods

/** Adds one pod (see addPods). */
export async function addPod(spec: PodSpec): Promise<PodNetwork> {
  const [pod] = await addPods(spec.prefix, [spec]);
  return pod!;
}

/**
 * Adds pods: a namespace each, joined to its node. Idempotent: a pod already complete with the
 * same node and IP is kept (its processes keep running) and its settings re-applied; a
 * half-made one, or one with another node or IP, is rebuilt.
 */
export async function addPods(prefix: string, specs: ReadonlyArray<Omit<PodSpec, 'prefix'>>): Promise<PodNetwork[]> {
  validatePrefix(prefix);
  const pods = specs.map((s) => ({ ...s, prefix }));
  const keys = new Set<string>();
  const ips = new Map<string, string>();
  for (const p of pods) {
    validatePod(p);
    const key = `${p.namespace}/${p.name}`;
    if (keys.has(key)) throw usage(`pod ${key} is listed twice`);
    if (ips.has(p.ip)) throw usage(`pods ${ips.get(p.ip)} and ${key} both have IP ${p.ip}`);
    keys.add(key);
    ips.set(p.ip, key);
  }
  const present = new Set(await listNetns());
  const nodeNames = [...new Set(pods.map((p) => p.node))];
  const nodeLinks = new Map<string, LinkState[]>();
  for (const node of nodeNames) {
    const ns = nodeNetnsName(prefix, node);
    if (!present.has(ns)) {
      throw new AmbitError('AMBIT_ERR_CLUSTER', `node ${node} has no network namespace ${ns}`, { hint: 'create the topology (createTopology) with this node first' });
    }
    nodeLinks.set(node, await readLinks(ns));
  }
  for (const node of nodeNames) {
    const tag = parseTag(nodeLinks.get(node)!.find((l) => l.name === 'lo')?.alias);
    if (tag?.kind !== 'node' || tag.prefix !== prefix) {
      throw new AmbitError('AMBIT_ERR_CLUSTER', `${nodeNetnsName(prefix, node)} is not a node of cluster ${prefix}`, { hint: 'create the topology (createTopology) first' });
    }
  }

  // Existing pod namespaces: keep the complete ones, rebuild the others.
  const fresh: typeof pods = [];
  const rebuild: string[] = [];
  await mapLimit(pods, MAX_PARALLEL, async (p) => {
    const netns = podNetnsName(prefix, p.namespace, p.name);
    if (!present.has(netns)) {
      fresh.push(p);
      return;
    }
    const links = await readLinks(netns);
    const tag = parseTag(links.find((l) => l.name === 'lo')?.alias);
    const e = foreignTag(netns, tag, { prefix, kind: 'pod', namespace: p.namespace, name: p.name });
    if (e) throw e;
    const nodeSide = nodeLinks.get(p.node)!.find((l) => l.name === podNodeIfName(p.namespace, p.name));
    const complete = links.some((l) => l.name === POD_IF && l.mac === podMac(p.ip)) && parsePodAlias(nodeSide?.alias)?.ip === p.ip;
    if (!complete) {
      rebuild.push(netns);
      fresh.push(p);
    }
  });
  // A pod's node-side link on another node (the pod moved) goes with its namespace.
  if (rebuild.length > 0) await deleteNetns(rebuild);

  if (fresh.length > 0) {
    await ipBatch(null, [
      ...fresh.map((p) => `netns add ${podNetnsName(prefix, p.namespace, p.name)}`),
      ...fresh.map((p) => podLinkAddLine(prefix, p)),
    ]);
  }
  await Promise.all([
    ...nodeNames.map((node) => ipBatch(nodeNetnsName(prefix, node), pods.filter((p) => p.node === node).flatMap((p) => podNodeSideBatch(p)))),
    mapLimit(pods, MAX_PARALLEL, (p) => ipBatch(podNetnsName(prefix, p.namespace, p.name), podSideBatch(prefix, p))),
  ]);
  const carrier = new Map<string, string[]>();
  for (const node of nodeNames) carrier.set(nodeNetnsName(prefix, node), pods.filter((p) => p.node === node).map((p) => podNodeIfName(p.namespace, p.name)));
  for (const p of pods) carrier.set(podNetnsName(prefix, p.namespace, p.name), [POD_IF]);
  await waitForCarrier(carrier);
  return pods.map((p) => ({
    namespace: p.namespace,
    name: p.name,
    node: p.node,
    ip: p.ip,
    netns: podNetnsName(prefix, p.namespace, p.name),
    nodeIf: podNodeIfName(p.namespace, p.name),
    mac: podMac(p.ip),
  }));
}

/** Removes a pod's namespace (killing what runs inside) and its link. Idempotent. */
export async function removePod(spec: { prefix: string; namespace: string; name: string }): Promise<{ removed: boolean; killedPids: number[] }> {
  validatePrefix(spec.prefix);
  const netns = podNetnsName(spec.prefix, spec.namespace, spec.name);
  const present = (await listNetns()).includes(netns);
  if (!present) return { removed: false, killedPids: [] };
  const links = await readLinks(netns);
  const e = foreignTag(netns, parseTag(links.find((l) => l.name === 'lo')?.alias), { prefix: spec.prefix, kind: 'pod', namespace: spec.namespace, name: spec.name });
  if (e) throw e;
  const killedPids = await deleteNetns([netns]);
  return { removed: true, killedPids };
}

/** True when `ip` lies in the node's pod CIDR (for callers that check a model before adding pods). */
export function ipInPodCidr(node: NodeInfo, ip: string): boolean {
  const cidr = parseCidr(node.podCidr);
  const addr = parseIp(ip);
  return !!cidr && !!addr && cidrContains(cidr, addr);
}
