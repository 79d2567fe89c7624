// The in-pod redirection of an enrolled pod, as Istio's in-pod mode does it:
// in the pod's own network namespace,
//
//   nat OUTPUT     -> AMBIT_OUTPUT:      -o lo                    RETURN
//                                        -d 127.0.0.0/8           RETURN
//                                        mark 0x539/0xfff         RETURN   (the ztunnel's sockets)
//                                        -p udp --dport 53        REDIRECT 15053   (DNS proxy; unless off)
//                                        -p tcp --dport 53        REDIRECT 15053
//                                        -p tcp                   REDIRECT 15001
//   nat PREROUTING -> AMBIT_PREROUTING:  -p tcp --dport 15008     RETURN   (HBONE reaches the ztunnel)
//                                        -p tcp                   REDIRECT 15006
//
// Invariants:
//  - Ambit owns exactly two chains (AMBIT_OUTPUT, AMBIT_PREROUTING) and one jump to each,
//    inserted first in OUTPUT / PREROUTING. Install writes the chains and any missing jump in
//    one iptables-restore (atomic: a connection is captured by all the rules or by none);
//    installing twice gives the same table.
//  - removeCapture never cuts an established connection. NAT is decided on a connection's
//    first packet and kept in conntrack, so a captured connection keeps going to its capture
//    port and only new connections go direct -- but only while conntrack still runs in the
//    namespace, and the kernel stops it (unregisters its hooks) when the last rule needing it
//    goes: deleting the REDIRECT rules would make the next packet of every captured connection
//    go un-translated and be answered with a reset (seen in the netns test). So removeCapture
//    deletes only the jumps (every copy), in one restore: the chains stay, unreachable, and keep
//    conntrack alive. purgeCapture also deletes the chains, for when the pod's connections no
//    longer matter; deleting the pod's namespace does the same. Both are idempotent.
//  - IPv4 only: pods of the local cluster have no IPv6 address but ::1, which is loopback.
//  - Loopback traffic (including to the pod's own IP, which leaves by `lo`) is not captured;
//    nor is it caught on its way in, since its NAT was already decided in OUTPUT.
import { ZTUNNEL_MARK } from '../dataplane/pod-network.js';
import { chainRules, readNatTable, restoreNoflush, type NatTable } from './iptables.js';

export const CAPTURE_OUTPUT_CHAIN = 'AMBIT_OUTPUT';
export const CAPTURE_PREROUTING_CHAIN = 'AMBIT_PREROUTING';

export interface CapturePorts {
  /** Default 15001. */
  outbound?: number;
  /** Default 15006. */
  inbound?: number;
  /** Default 15008. */
  hbone?: number;
  /** Default 0x539 (the ztunnel's SO_MARK), compared under mask 0xfff. */
  mark?: number;
  /**
   * The ztunnel's DNS proxy port, where UDP and TCP to port 53 (other than to loopback) go;
   * default 15053 (on, as in Istio 1.25+); false: DNS is not captured.
   */
  dns?: number | false;
}

const MARK_MASK = 0xfff;

function resolve(ports: CapturePorts = {}): Required<CapturePorts> {
  return { outbound: ports.outbound ?? 15001, inbound: ports.inbound ?? 15006, hbone: ports.hbone ?? 15008, mark: ports.mark ?? ZTUNNEL_MARK, dns: ports.dns ?? 15053 };
}

const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * The rules of Ambit's two chains, as `iptables -t nat -S` prints them (without the jumps).
 * Only a SYN is redirected: nat rules see the first packet of each conntrack entry, and a
 * connection that was open before the pod was enrolled is picked up by conntrack mid-stream
 * (its first tracked packet is not a SYN); it must keep flowing as it was, not be sent to a
 * ztunnel that never saw its handshake.
 */
export function captureChainRules(ports?: CapturePorts): { output: string[]; prerouting: string[] } {
  const p = resolve(ports);
  return {
    output: [
      '-o lo -j RETURN',
      '-d 127.0.0.0/8 -j RETURN',
      `-m mark --mark ${hex(p.mark)}/${hex(MARK_MASK)} -j RETURN`,
      ...(p.dns === false ? [] : [
        `-p udp -m udp --dport 53 -j REDIRECT --to-ports ${p.dns}`,
        `-p tcp -m tcp --dport 53 --tcp-flags FIN,SYN,RST,ACK SYN -j REDIRECT --to-ports ${p.dns}`,
      ]),
      `-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j REDIRECT --to-ports ${p.outbound}`,
    ],
    prerouting: [`-p tcp -m tcp --dport ${p.hbone} -j RETURN`, `-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j REDIRECT --to-ports ${p.inbound}`],
  };
}

/**
 * The iptables-restore input that installs the capture rules. `present` says which jumps exist
 * already (from the pod's current table); without it the input is the full rule set for a
 * fresh namespace, as shown to users.
 */
export function captureRestoreInput(ports?: CapturePorts, present: { outputJumps: number; preroutingJumps: number } = { outputJumps: 0, preroutingJumps: 0 }): string {
  const r = captureChainRules(ports);
  // Exactly one jump each: add a missing one, drop extra copies.
  const jump = (from: string, to: string, count: number) =>
    count === 0 ? [`-I ${from} 1 -j ${to}`] : Array.from({ length: count - 1 }, () => `-D ${from} -j ${to}`);
  return [
    '*nat',
    `:${CAPTURE_OUTPUT_CHAIN} - [0:0]`,
    `:${CAPTURE_PREROUTING_CHAIN} - [0:0]`,
    ...r.output.map((x) => `-A ${CAPTURE_OUTPUT_CHAIN} ${x}`),
    ...r.prerouting.map((x) => `-A ${CAPTURE_PREROUTING_CHAIN} ${x}`),
    ...jump('OUTPUT', CAPTURE_OUTPUT_CHAIN, present.outputJumps),
    ...jump('PREROUTING', CAPTURE_PREROUTING_CHAIN, present.preroutingJumps),
    'COMMIT',
    '',
  ].join('\n');
}

function jumpCount(nat: NatTable, from: string, to: string): number {
  return chainRules(nat, from).filter((r) => r === `-j ${to}`).length;
}

/**
 * The iptables-restore input that detaches the capture rules in `current` (deletes the jumps;
 * with purge also the chains), or undefined when there is nothing to do.
 */
export function captureRemoveInput(current: NatTable, options: { purge?: boolean } = {}): string | undefined {
  const lines: string[] = [];
  for (const [from, to] of [['OUTPUT', CAPTURE_OUTPUT_CHAIN], ['PREROUTING', CAPTURE_PREROUTING_CHAIN]] as const) {
    for (let i = jumpCount(current, from, to); i > 0; i--) lines.push(`-D ${from} -j ${to}`);
  }
  if (options.purge) {
    for (const chain of [CAPTURE_OUTPUT_CHAIN, CAPTURE_PREROUTING_CHAIN]) {
      if (current.chains.has(chain)) lines.push(`-F ${chain}`, `-X ${chain}`);
    }
  }
  return lines.length === 0 ? undefined : ['*nat', ...lines, 'COMMIT', ''].join('\n');
}

/** True when the table holds exactly Ambit's capture rules and one jump to each chain. */
export function captureMatches(current: NatTable, ports?: CapturePorts): boolean {
  const r = captureChainRules(ports);
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  return (
    same(chainRules(current, CAPTURE_OUTPUT_CHAIN), r.output) &&
    same(chainRules(current, CAPTURE_PREROUTING_CHAIN), r.prerouting) &&
    jumpCount(current, 'OUTPUT', CAPTURE_OUTPUT_CHAIN) === 1 &&
    jumpCount(current, 'PREROUTING', CAPTURE_PREROUTING_CHAIN) === 1
  );
}

/** Installs (or re-installs) the capture rules in a pod's namespace. Idempotent. */
export async function installCapture(podNetns: string, ports?: CapturePorts): Promise<void> {
  await installCaptureOver(podNetns, await readNatTable(podNetns), ports);
}

/**
 * Makes sure the capture rules are in place given the pod's nat table as just read: true when
 * they already were (nothing written), false when they were (re)installed. One read, at most
 * one restore: the node agent's ADD path.
 */
export async function ensureCapture(podNetns: string, ports?: CapturePorts): Promise<boolean> {
  const current = await readNatTable(podNetns);
  if (captureMatches(current, ports)) return true;
  await installCaptureOver(podNetns, current, ports);
  return false;
}

async function installCaptureOver(podNetns: string, current: NatTable, ports?: CapturePorts): Promise<void> {
  await restoreNoflush(
    podNetns,
    captureRestoreInput(ports, {
      outputJumps: jumpCount(current, 'OUTPUT', CAPTURE_OUTPUT_CHAIN),
      preroutingJumps: jumpCount(current, 'PREROUTING', CAPTURE_PREROUTING_CHAIN),
    }),
  );
}

/**
 * Stops capturing new connections of a pod (deletes the jumps); established captured
 * connections live on, through the capture ports. Idempotent.
 */
export async function removeCapture(podNetns: string): Promise<void> {
  const input = captureRemoveInput(await readNatTable(podNetns));
  if (input) await restoreNoflush(podNetns, input);
}

/**
 * Deletes the jumps and Ambit's chains. Connections captured earlier and still open break
 * (conntrack may stop in the namespace); use removeCapture while they matter. Idempotent.
 */
export async function purgeCapture(podNetns: string): Promise<void> {
  const input = captureRemoveInput(await readNatTable(podNetns), { purge: true });
  if (input) await restoreNoflush(podNetns, input);
}

/** True when the pod's namespace has exactly Ambit's capture rules. */
export async function captureInstalled(podNetns: string, ports?: CapturePorts): Promise<boolean> {
  return captureMatches(await readNatTable(podNetns), ports);
}
