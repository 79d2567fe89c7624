// Lets the ztunnel (or a sidecar) connect to a pod's application with the CLIENT's address as
// the source, as Istio's in-pod mode does, so the application sees who called it:
//
//   the proxy's socket: IP_TRANSPARENT, bound to <client ip>:0, mark 0x539, connects to the pod
//   mangle OUTPUT -> AMBIT_SOURCE:  -o lo, mark 0x539/0xfff      CONNMARK set 0x111/0xfff
//                                   connmark 0x111/0xfff          CONNMARK restore (mask 0xfff)
//   ip rule fwmark 0x111/0xfff lookup 133 (pref 32764); table 133: local 0.0.0.0/0 dev lo
//
// The proxy's SYN to the pod leaves by `lo` and marks its connection; the application's answers
// to <client ip> get the mark back from the connection, are routed by table 133 as local, and
// reach the proxy's transparent socket instead of leaving the pod.
//
// Invariants:
//  - Installed once per pod namespace, when the namespace is made (before any proxy can serve
//    the pod), and never removed while it lives: it touches only connections the proxy opened
//    over `lo`, so it is inert for pods that are not enrolled, and established spoofed
//    connections keep working across un-enrolment. Deleting the namespace removes it.
//  - Idempotent: the chain is rewritten whole, the jump and the rule are added only when missing.
import { ZTUNNEL_MARK } from '../dataplane/pod-network.js';
import { readTables, restoreNoflush } from './iptables.js';
import { ipBatch } from './netns.js';
import { runCommand } from '../sys/exec.js';

export const SOURCE_CHAIN = 'AMBIT_SOURCE';
export const SPOOF_CONNMARK = 0x111;
export const SPOOF_TABLE = 133;
export const SPOOF_RULE_PREF = 32764;
const MASK = 0xfff;
const hex = (n: number) => `0x${n.toString(16)}`;

/** The chain's rules as `iptables -t mangle -S` prints them (without the jump). */
export function sourceChainRules(): string[] {
  return [
    `-o lo -m mark --mark ${hex(ZTUNNEL_MARK)}/${hex(MASK)} -j CONNMARK --set-xmark ${hex(SPOOF_CONNMARK)}/${hex(MASK)}`,
    `-m connmark --mark ${hex(SPOOF_CONNMARK)}/${hex(MASK)} -j CONNMARK --restore-mark --nfmask ${hex(MASK)} --ctmask ${hex(MASK)}`,
  ];
}

export function sourceRestoreInput(jumpPresent: boolean): string {
  return [
    '*mangle',
    `:${SOURCE_CHAIN} - [0:0]`,
    ...sourceChainRules().map((r) => `-A ${SOURCE_CHAIN} ${r}`),
    ...(jumpPresent ? [] : [`-I OUTPUT 1 -j ${SOURCE_CHAIN}`]),
    'COMMIT',
    '',
  ].join('\n');
}

export async function installSourceRouting(podNetns: string): Promise<void> {
  const { mangle } = await readTables(podNetns, ['mangle']);
  const jumpPresent = (mangle?.rules ?? []).some((r) => r === `-A OUTPUT -j ${SOURCE_CHAIN}`);
  await restoreNoflush(podNetns, sourceRestoreInput(jumpPresent));
  const rules = await runCommand('ip', ['-n', podNetns, 'rule', 'show', 'pref', String(SPOOF_RULE_PREF)], { timeoutMs: 10_000, errorCode: 'AMBIT_ERR_NETNS' });
  await ipBatch(podNetns, [
    ...(rules.stdout.includes(`lookup ${SPOOF_TABLE}`) ? [] : [`rule add fwmark ${hex(SPOOF_CONNMARK)}/${hex(MASK)} pref ${SPOOF_RULE_PREF} lookup ${SPOOF_TABLE}`]),
    `route replace local 0.0.0.0/0 dev lo table ${SPOOF_TABLE}`,
  ]);
}
