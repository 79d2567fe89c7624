// Reading and atomically changing a namespace's iptables nat table, for the parts that own
// chains in it (capture-rules.ts in pods, the cluster's service-proxy.ts in nodes). A namespace
// is named either by its `ip netns` name or by a path (`/var/run/netns/x`, `/proc/<pid>/ns/net`,
// as a CNI runtime passes it in CNI_NETNS): names run through `ip netns exec`, paths through
// `nsenter --net=`.
//
// Invariants:
//  - Changes go through one `iptables-restore --noflush` per change: the kernel applies each
//    table's part as one transaction (nf_tables) or one table replacement (legacy), so a
//    reader never sees half a rule set. Declaring a user chain (`:NAME - [0:0]`) in the input creates
//    it, or flushes it when it exists; chains and rules of others are left alone.
//  - Rules are written in the form iptables-save prints them (`-p tcp -m tcp --dport 80`), so
//    what we install can be compared with what we read back.
import { AmbitError } from '../core/errors.js';
import { runCommand } from '../sys/exec.js';

/** One table (nat, filter, ...) of a namespace, as iptables-save shows it. */
export interface IptablesTable {
  /** User-defined and built-in chain names. */
  chains: Set<string>;
  /** Rules as iptables-save prints them: `-A CHAIN ...`, in order. */
  rules: string[];
}

export type NatTable = IptablesTable;

export const emptyTable = (): IptablesTable => ({ chains: new Set(), rules: [] });

/** Parses one table's section (`*nat` by default) of iptables-save output (an absent table is empty). */
export function parseIptablesSave(text: string, table = 'nat'): IptablesTable {
  const chains = new Set<string>();
  const rules: string[] = [];
  let inTable = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      inTable = line === `*${table}`;
      continue;
    }
    if (!inTable) continue;
    if (line === 'COMMIT') {
      inTable = false;
      continue;
    }
    if (line.startsWith(':')) chains.add(line.slice(1).split(/\s+/)[0]!);
    else if (line.startsWith('-A ')) rules.push(line);
  }
  return { chains, rules };
}

/** Rules of one chain, without the `-A CHAIN ` head. */
export function chainRules(nat: IptablesTable, chain: string): string[] {
  const head = `-A ${chain} `;
  return nat.rules.filter((r) => r.startsWith(head)).map((r) => r.slice(head.length));
}

/** The command line that runs `command args` inside a namespace given by name or path. */
export function inNetns(netns: string, command: string, args: readonly string[]): [string, string[]] {
  return netns.includes('/') ? ['nsenter', [`--net=${netns}`, '--', command, ...args]] : ['ip', ['netns', 'exec', netns, command, ...args]];
}

function iptablesHint(netns: string): string {
  return `is iptables installed (\`npm run setup\`), and does namespace ${netns} still exist (\`ip netns list\`)?`;
}

/** The nat table of a namespace. */
export async function readNatTable(netns: string): Promise<IptablesTable> {
  return (await readTables(netns, ['nat'])).nat!;
}

/** Several tables of a namespace, read at once. */
export async function readTables<T extends string>(netns: string, tables: readonly T[]): Promise<Record<T, IptablesTable>> {
  const r = await runCommand(...inNetns(netns, 'iptables-save', tables.length === 1 ? ['-t', tables[0]!] : []), {
    timeoutMs: 20_000,
    errorCode: 'AMBIT_ERR_NETNS',
    hint: iptablesHint(netns),
  });
  return Object.fromEntries(tables.map((t) => [t, parseIptablesSave(r.stdout, t)])) as Record<T, IptablesTable>;
}

/** Applies an iptables-restore input (`*nat ... COMMIT`, possibly several tables) with --noflush. */
export async function restoreNoflush(netns: string, input: string): Promise<void> {
  try {
    await runCommand(...inNetns(netns, 'iptables-restore', ['--wait', '5', '--noflush']), {
      input,
      timeoutMs: 20_000,
      errorCode: 'AMBIT_ERR_NETNS',
      hint: iptablesHint(netns),
    });
  } catch (e: unknown) {
    if (e instanceof AmbitError) {
      throw new AmbitError(e.code, `${e.message}\n--- iptables-restore input ---\n${input}`, { cause: e, hint: e.hint, details: e.details });
    }
    throw e;
  }
}
