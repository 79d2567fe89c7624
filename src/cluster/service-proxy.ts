// kube-proxy's job in the local cluster, for pods outside the mesh: in each node's namespace,
// a TCP (or UDP) connection to a service VIP:port is DNATed to one of its endpoints, chosen at
// random with equal weights, like kube-proxy's iptables mode.
//
//   nat PREROUTING -> AMBIT_SERVICES:  -d VIP/32 -p tcp --dport P  -> AMBIT_SVC_<hash>
//   AMBIT_SVC_<hash>:  statistic random 1/n -> AMBIT_SEP_<hash 1>; 1/(n-1) -> ...; last -> AMBIT_SEP_<hash n>
//   AMBIT_SEP_<hash>:  -s <endpoint>/32 -> MARK 0x4000 (hairpin); DNAT <endpoint ip:port>
//   nat OUTPUT -> AMBIT_SERVICES_LOCAL:  MARK 0x4000; -> AMBIT_SERVICES; (no match) MARK 0
//   nat POSTROUTING -> AMBIT_SERVICES_POST:  mark 0x4000 -> MASQUERADE
//
// Invariants:
//  - Rebuilt from the given services on every call, in one iptables-restore (atomic): a
//    connection sees the old rule set or the new one, never a mix. Chains of services or
//    endpoints that are gone are deleted in the same transaction. Established connections
//    keep their endpoint (conntrack), even when that endpoint leaves the rule set: the
//    MASQUERADE rule is always there, which keeps conntrack running in the node's namespace
//    (the kernel stops it when the last rule needing it goes; removeServiceRules does that).
//  - Enrolled (ambient) pods never reach these rules for a VIP: their own OUTPUT rule
//    (capture-rules.ts) redirects the connection to the ztunnel's 15001 inside the pod, and the
//    ztunnel connects to an endpoint (or waypoint) address itself. So only pods outside the
//    mesh, and processes in the node's own namespace, are load-balanced here.
//  - Pods reach their node at layer 3 (topology.ts), so the node conntracks both directions of
//    every flow: a pod reaching an endpoint on its own node through the VIP (hairpin) is
//    un-DNATed on the way back without any masquerade. Only a pod reaching *itself* through
//    a VIP is masqueraded (to the node's underlay address), as kube-proxy does: otherwise it
//    would receive a packet from its own address and drop it as a martian.
//  - The service CIDR is a local range of every node (topology.ts routes it to `lo`), so a
//    VIP:port without endpoints (no DNAT rule) reaches the node itself, where nothing listens:
//    the client gets a TCP reset at once. (Without that route the node would answer "no
//    route" with ICMP, which the kernel rate-limits: after a few tries clients would wait for
//    a timeout.) A process in the node's own namespace connecting to a VIP gets the VIP as its
//    source address (the VIP is local), so its connections are masqueraded too.
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { AmbitError } from '../core/errors.js';
import type { MeshModel } from '../model/mesh-model.js';
import type { WorkloadInfo } from '../model/types.js';
import { emptyTable, readNatTable, restoreNoflush, type IptablesTable } from './iptables.js';
import { nodeNetnsName } from './topology.js';

export const SERVICES_CHAIN = 'AMBIT_SERVICES';
export const SERVICES_POST_CHAIN = 'AMBIT_SERVICES_POST';
export const SERVICES_LOCAL_CHAIN = 'AMBIT_SERVICES_LOCAL';
export const HAIRPIN_MARK = 0x4000;
const OWNED_CHAIN = /^AMBIT_(SVC|SEP)_[0-9A-F]{16}$/;

export interface ServiceEndpointRule {
  ip: string;
  port: number;
}

export interface ServicePortRule {
  port: number;
  /** Default TCP. */
  protocol?: 'TCP' | 'UDP';
  endpoints: ServiceEndpointRule[];
}

export interface ServiceRule {
  vip: string;
  ports: ServicePortRule[];
  /** `ns/name`, written as a rule comment so that `iptables -t nat -S` reads well. */
  name?: string;
}

function hash16(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 16).toUpperCase();
}

export function serviceChainName(vip: string, protocol: string, port: number): string {
  return `AMBIT_SVC_${hash16(`${vip}/${protocol}/${port}`)}`;
}

export function endpointChainName(vip: string, protocol: string, port: number, ep: ServiceEndpointRule): string {
  return `AMBIT_SEP_${hash16(`${vip}/${protocol}/${port}>${ep.ip}:${ep.port}`)}`;
}

const validPort = (p: number) => Number.isInteger(p) && p >= 1 && p <= 65535;

export function validateServiceRules(services: readonly ServiceRule[]): void {
  const seen = new Set<string>();
  for (const s of services) {
    const what = s.name ?? s.vip;
    if (!isIPv4(s.vip)) throw new AmbitError('AMBIT_ERR_USAGE', `service ${what}: VIP '${s.vip}' is not an IPv4 address`);
    if (s.name !== undefined && !/^[a-z0-9][-a-z0-9./]*$/.test(s.name)) throw new AmbitError('AMBIT_ERR_USAGE', `service name '${s.name}' is not valid`);
    for (const p of s.ports) {
      const proto = p.protocol ?? 'TCP';
      if (!validPort(p.port)) throw new AmbitError('AMBIT_ERR_USAGE', `service ${what}: port ${p.port} is not valid`);
      const key = `${s.vip}/${proto}/${p.port}`;
      if (seen.has(key)) throw new AmbitError('AMBIT_ERR_USAGE', `service ${what}: ${proto} ${s.vip}:${p.port} is listed twice`);
      seen.add(key);
      for (const e of p.endpoints) {
        if (!isIPv4(e.ip) || !validPort(e.port)) throw new AmbitError('AMBIT_ERR_USAGE', `service ${what}: endpoint ${e.ip}:${e.port} is not valid`);
      }
    }
  }
}

const JUMPS: ReadonlyArray<readonly [from: string, to: string]> = [
  ['PREROUTING', SERVICES_CHAIN],
  ['OUTPUT', SERVICES_LOCAL_CHAIN],
  ['POSTROUTING', SERVICES_POST_CHAIN],
];
const OUR_FIXED_CHAINS = [SERVICES_CHAIN, SERVICES_LOCAL_CHAIN, SERVICES_POST_CHAIN];

/**
 * The iptables-restore input that makes the node's service rules exactly `services`, given the
 * node's current nat table (for the chains to delete and the jumps already there).
 */
export function serviceRestoreInput(services: readonly ServiceRule[], current: IptablesTable = emptyTable()): string {
  validateServiceRules(services);
  const declare: string[] = [...OUR_FIXED_CHAINS];
  const mark = `0x${HAIRPIN_MARK.toString(16)}`;
  const rules: string[] = [
    `-A ${SERVICES_LOCAL_CHAIN} -j MARK --set-xmark ${mark}/${mark}`,
    `-A ${SERVICES_LOCAL_CHAIN} -j ${SERVICES_CHAIN}`,
    `-A ${SERVICES_LOCAL_CHAIN} -j MARK --set-xmark 0x0/${mark}`,
    `-A ${SERVICES_POST_CHAIN} -m mark --mark ${mark}/${mark} -j MASQUERADE`,
  ];
  for (const s of [...services].sort((a, b) => a.vip.localeCompare(b.vip))) {
    for (const p of [...s.ports].sort((a, b) => a.port - b.port)) {
      if (p.endpoints.length === 0) continue;
      const proto = p.protocol ?? 'TCP';
      const lower = proto.toLowerCase();
      const comment = s.name ? ` -m comment --comment "${s.name}:${p.port}"` : '';
      const svc = serviceChainName(s.vip, proto, p.port);
      declare.push(svc);
      rules.push(`-A ${SERVICES_CHAIN} -d ${s.vip}/32 -p ${lower} -m ${lower} --dport ${p.port}${comment} -j ${svc}`);
      const eps = [...p.endpoints].sort((a, b) => a.ip.localeCompare(b.ip) || a.port - b.port);
      eps.forEach((ep, i) => {
        const sep = endpointChainName(s.vip, proto, p.port, ep);
        declare.push(sep);
        const left = eps.length - i;
        rules.push(left > 1 ? `-A ${svc} -m statistic --mode random --probability ${(1 / left).toFixed(11)} -j ${sep}` : `-A ${svc} -j ${sep}`);
        rules.push(`-A ${sep} -s ${ep.ip}/32 -j MARK --set-xmark ${mark}/${mark}`);
        rules.push(`-A ${sep} -p ${lower} -m ${lower} -j DNAT --to-destination ${ep.ip}:${ep.port}`);
      });
    }
  }
  const wanted = new Set(declare);
  const stale = [...current.chains].filter((c) => OWNED_CHAIN.test(c) && !wanted.has(c));
  const jumps = JUMPS.filter(([from, to]) => !current.rules.includes(`-A ${from} -j ${to}`)).map(([from, to]) => `-I ${from} 1 -j ${to}`);
  return [
    '*nat',
    ...[...new Set([...declare, ...stale])].map((c) => `:${c} - [0:0]`),
    ...rules,
    ...jumps,
    ...stale.map((c) => `-X ${c}`),
    'COMMIT',
    '',
  ].join('\n');
}

/** The input that removes every service rule of Ambit from a node's nat table, or undefined. */
export function serviceRemoveInput(current: IptablesTable): string | undefined {
  const ours = [...current.chains].filter((c) => OUR_FIXED_CHAINS.includes(c) || OWNED_CHAIN.test(c));
  const jumps = current.rules.filter((r) => JUMPS.some(([from, to]) => r === `-A ${from} -j ${to}`)).map((r) => r.replace(/^-A /, '-D '));
  if (ours.length === 0 && jumps.length === 0) return undefined;
  return ['*nat', ...jumps, ...ours.map((c) => `-F ${c}`), ...ours.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
}

/** Rebuilds the service rules of a node namespace (by name) from `services`, atomically. */
export async function syncServiceRulesIn(netns: string, services: readonly ServiceRule[]): Promise<void> {
  validateServiceRules(services);
  await restoreNoflush(netns, serviceRestoreInput(services, await readNatTable(netns)));
}

/** Rebuilds node `node`'s service rules (cluster `prefix`) from `services`, atomically. */
export function syncServiceRules(prefix: string, node: string, services: readonly ServiceRule[]): Promise<void> {
  return syncServiceRulesIn(nodeNetnsName(prefix, node), services);
}

/**
 * Removes every service rule of Ambit from a node. Connections through a VIP that are still
 * open may break (conntrack can stop in the namespace). Idempotent.
 */
export async function removeServiceRules(prefix: string, node: string): Promise<void> {
  const netns = nodeNetnsName(prefix, node);
  const input = serviceRemoveInput(await readNatTable(netns));
  if (input) await restoreNoflush(netns, input);
}

/**
 * The service rules of a mesh model (every service with a VIP; endpoints are the selected
 * pods, with each pod's resolved target port; TCP, as the model's ports are). The same on every
 * node.
 */
export function serviceRulesFromModel(model: MeshModel): ServiceRule[] {
  const rules: ServiceRule[] = [];
  for (const s of model.services.values()) {
    if (!s.vip || !isIPv4(s.vip)) continue;
    const key = `${s.namespace}/${s.hostname}`;
    const pods = s.endpoints.map((uid) => model.workloads.get(uid)).filter((w): w is WorkloadInfo => w !== undefined && isIPv4(w.ip));
    rules.push({
      vip: s.vip,
      name: `${s.namespace}/${s.name}`,
      ports: s.ports.map((p) => ({
        port: p.port,
        endpoints: pods.flatMap((w) => {
          const target = w.servicePorts[key]?.find((x) => x.servicePort === p.port)?.targetPort ?? (typeof p.targetPort === 'number' ? p.targetPort : undefined);
          return target === undefined ? [] : [{ ip: w.ip, port: target }];
        }),
      })),
    });
  }
  return rules;
}
