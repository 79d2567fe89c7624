// The "outside" host of the local cluster: a network namespace on the underlay that stands for
// the internet. It is not in the mesh and has no route to the host's networks; it reaches the
// pods (and they it) through their nodes, as an external server reaches a Kubernetes cluster's
// egress. It runs the cluster's upstream DNS resolver (a ZoneServer answering the names given
// for it, NXDOMAIN for the rest), so pods' and proxies' lookups never leave the machine.
//
//   <prefix>-underlay   br0 ... ox0 (the outside host's port)
//   <prefix>-outside    eth0 172.30.0.2/24; <pod CIDR of node i> via 172.30.0.<10+i>
//
// Invariants:
// - Named `<prefix>-outside` and tagged `ambit:<prefix>:outside` on its lo: destroyTopology
//   (which removes every `<prefix>-` namespace without another prefix's tag) removes it.
// - Idempotent: made again, it re-applies addresses and routes with `replace`.
import type dgram from 'node:dgram';
import type net from 'node:net';
import { listenInNetns, NetnsHandle, udpSocketInNetns } from '../sys/netns-socket.js';
import type { NodeInfo } from '../model/types.js';
import { ipBatch, listNetns } from './netns.js';
import { nodeUnderlayIp, UNDERLAY_BRIDGE, UNDERLAY_PREFIX_LENGTH, underlayNetnsName } from './topology.js';

export const OUTSIDE_IP = '172.30.0.2';
const OUTSIDE_PORT_IF = 'ox0';
const OUTSIDE_IF = 'eth0';

export function outsideNetnsName(prefix: string): string {
  return `${prefix}-outside`;
}

/** The `ip -batch` lines: host namespace, underlay side, outside side (pure). */
export function outsideHostPlan(prefix: string, nodes: readonly NodeInfo[], ip = OUTSIDE_IP): { host: string[]; underlay: string[]; outside: string[] } {
  const ns = outsideNetnsName(prefix);
  return {
    host: [`netns add ${ns}`, `link add ${OUTSIDE_PORT_IF} netns ${underlayNetnsName(prefix)} type veth peer name ${OUTSIDE_IF} netns ${ns}`],
    underlay: [`link set ${OUTSIDE_PORT_IF} master ${UNDERLAY_BRIDGE} up`],
    outside: [
      `link set lo up alias ambit:${prefix}:outside`,
      `addr replace ${ip}/${UNDERLAY_PREFIX_LENGTH} dev ${OUTSIDE_IF}`,
      `link set ${OUTSIDE_IF} up`,
      ...nodes.map((n) => `route replace ${n.podCidr} via ${nodeUnderlayIp(n.index)} dev ${OUTSIDE_IF}`),
    ],
  };
}

/** Creates (or completes) the outside host. Returns its namespace name. */
export async function createOutsideHost(prefix: string, nodes: readonly NodeInfo[], ip = OUTSIDE_IP): Promise<string> {
  const plan = outsideHostPlan(prefix, nodes, ip);
  const ns = outsideNetnsName(prefix);
  if (!(await listNetns()).includes(ns)) await ipBatch(null, plan.host);
  await ipBatch(underlayNetnsName(prefix), plan.underlay);
  await ipBatch(ns, plan.outside);
  return ns;
}

/** The sockets of a server bound inside the outside host (UDP and TCP on ip:port). */
export async function outsideSockets(prefix: string, ip: string, port: number): Promise<{ udp: dgram.Socket; tcp: net.Server; close(): void }> {
  const handle = NetnsHandle.open(outsideNetnsName(prefix));
  try {
    const udp = await udpSocketInNetns(handle, { host: ip, port });
    const tcp = await listenInNetns(handle, { host: ip, port });
    return { udp, tcp, close: () => { try { udp.close(); } catch { /* closed */ } tcp.close(); } };
  } finally {
    handle.close();
  }
}
