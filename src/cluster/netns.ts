// Small tools over named network namespaces (`ip netns`) that the cluster's parts share:
// list them, run an `ip -batch` inside one, find and kill the processes inside, delete them,
// wait for links to have carrier.
//
// Invariants:
//  - Every command goes through src/sys/exec.ts (no shell); batches are fed on stdin.
//  - Processes are found by comparing /proc/<pid>/ns/net with the namespace's inode, in one
//    pass over /proc, and killed by PID; never by name, never this process.
//  - Deleting a namespace first deletes its veth ends (which removes both ends of each pair at
//    once, with the routes through them), so a name can be reused at once: `ip netns del` alone
//    only drops the name and the kernel tears the namespace down later.
import { sleep } from '../core/clock.js';
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { AmbitError } from '../core/errors.js';
import { runCommand, type RunResult } from '../sys/exec.js';

/** Where `ip netns add` puts its namespaces. */
export const NETNS_DIR = '/var/run/netns';

const CMD_TIMEOUT_MS = 20_000;

/** Names of every named network namespace (`ip netns list`). */
export async function listNetns(): Promise<string[]> {
  const r = await runCommand('ip', ['netns', 'list'], { timeoutMs: CMD_TIMEOUT_MS, errorCode: 'AMBIT_ERR_NETNS' });
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

/**
 * Runs `ip [-n ns] -batch -` with the given lines. With force, ip keeps going after a failing
 * line (and still exits non-zero): pass okExitCodes to accept that.
 */
export function ipBatch(ns: string | null, lines: readonly string[], options: { force?: boolean; okExitCodes?: number[]; hint?: string } = {}): Promise<RunResult> {
  const args = [...(ns ? ['-n', ns] : []), ...(options.force ? ['-force'] : []), '-batch', '-'];
  return runCommand('ip', args, {
    input: lines.join('\n') + '\n',
    timeoutMs: CMD_TIMEOUT_MS,
    errorCode: 'AMBIT_ERR_NETNS',
    okExitCodes: options.okExitCodes,
    hint: options.hint ?? 'the namespace may have been removed underneath Ambit; `ambit down` then `ambit up` rebuilds the cluster',
  });
}

/** Runs a command inside a namespace (`ip netns exec ns command args`). */
export function execInNetns(ns: string, command: string, args: readonly string[], options: { input?: string; okExitCodes?: number[]; hint?: string } = {}): Promise<RunResult> {
  return runCommand('ip', ['netns', 'exec', ns, command, ...args], { timeoutMs: CMD_TIMEOUT_MS, errorCode: 'AMBIT_ERR_NETNS', ...options });
}

/** The inode of a named namespace, or undefined when it doesn't exist. */
export function netnsInode(name: string): number | undefined {
  try {
    return statSync(`${NETNS_DIR}/${name}`).ino;
  } catch {
    return undefined;
  }
}

/** PIDs of the processes inside each of the named namespaces (one pass over /proc). */
export function pidsInNetns(names: readonly string[]): Map<string, number[]> {
  const byInode = new Map<string, string>();
  const out = new Map<string, number[]>();
  for (const name of names) {
    out.set(name, []);
    const ino = netnsInode(name);
    if (ino !== undefined) byInode.set(`net:[${ino}]`, name);
  }
  if (byInode.size === 0) return out;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let link: string;
    try {
      link = readlinkSync(`/proc/${entry}/ns/net`);
    } catch {
      continue; // gone meanwhile, or a kernel thread
    }
    const name = byInode.get(link);
    if (name !== undefined) out.get(name)!.push(Number(entry));
  }
  return out;
}

/** SIGKILLs every process inside the namespaces (never this one); returns the PIDs signalled. */
export function killNetnsProcesses(names: readonly string[]): number[] {
  const killed: number[] = [];
  for (const pids of pidsInNetns(names).values()) {
    for (const pid of pids) {
      if (pid === process.pid || pid <= 1) continue;
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      } catch {
        // already gone
      }
    }
  }
  return killed;
}

/**
 * Deletes namespaces: kills what runs inside, deletes their veth ends, then the names.
 * Missing namespaces are fine (idempotent). Returns the PIDs it killed.
 */
export async function deleteNetns(names: readonly string[]): Promise<number[]> {
  const present = new Set(await listNetns());
  const targets = names.filter((n) => present.has(n));
  if (targets.length === 0) return [];
  const killed = killNetnsProcesses(targets);
  // veth ends first, so that both ends (and the routes through them) go now, not when the
  // kernel gets round to dismantling the namespace.
  await Promise.all(
    targets.map(async (ns) => {
      const links = await runCommand('ip', ['-n', ns, '-o', 'link', 'show', 'type', 'veth'], { timeoutMs: CMD_TIMEOUT_MS, okExitCodes: [0, 1, 255] });
      const devs = parseLinkNames(links.stdout);
      if (devs.length > 0) await ipBatch(ns, devs.map((d) => `link del ${d}`), { force: true, okExitCodes: [0, 1, 255] });
    }),
  );
  await ipBatch(null, targets.map((n) => `netns del ${n}`), { force: true, okExitCodes: [0, 1, 255] });
  const left = new Set(await listNetns());
  const stuck = targets.filter((n) => left.has(n));
  if (stuck.length > 0) {
    throw new AmbitError('AMBIT_ERR_NETNS', `could not delete network namespace(s) ${stuck.join(', ')}`, {
      hint: 'try `ip netns del <name>` by hand; a process may hold the mount busy',
    });
  }
  return killed;
}

export interface LinkState {
  name: string;
  up: boolean;
  carrier: boolean;
  alias: string | undefined;
  mac: string | undefined;
}

/** Parses `ip -o link show` output into interface names (without the @peer suffix). */
export function parseLinkNames(out: string): string[] {
  return parseLinks(out).map((l) => l.name);
}

/** Parses `ip -o link show` output. */
export function parseLinks(out: string): LinkState[] {
  const links: LinkState[] = [];
  for (const line of out.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)(?:@[^:\s]+)?:\s+<([^>]*)>(.*)$/.exec(line);
    if (!m) continue;
    const flags = m[2]!.split(',');
    const rest = m[3]!;
    const alias = /\\\s+alias (.*?)\s*$/.exec(rest)?.[1];
    links.push({
      name: m[1]!,
      up: flags.includes('UP') && /\bstate (UP|UNKNOWN)\b/.test(rest),
      carrier: flags.includes('LOWER_UP') && !flags.includes('NO-CARRIER'),
      alias,
      mac: /link\/ether ([0-9a-f:]{17})/.exec(rest)?.[1],
    });
  }
  return links;
}

/** The links of a namespace, or [] when it doesn't exist. */
export async function readLinks(ns: string, filter: readonly string[] = []): Promise<LinkState[]> {
  const r = await runCommand('ip', ['-n', ns, '-o', 'link', 'show', ...filter], { timeoutMs: CMD_TIMEOUT_MS, okExitCodes: [0, 1, 255] });
  return r.exitCode === 0 ? parseLinks(r.stdout) : [];
}

/**
 * Waits until each named link is up with carrier. A veth end can show NO-CARRIER for up to a
 * second after both ends are up, and until then IPv6 has no link-local address there (a first
 * IPv6 connection would stall about 1 s). The kernel's linkwatch reports carrier changes of a
 * stacked device at once only when its ifindex differs from its peer's (iflink); otherwise the
 * event waits for the next batch, up to 1 s. Ends made directly in two fresh namespaces easily
 * get the same ifindex (2 and 2), so the topology makes sure they don't.
 */
export async function waitForCarrier(want: ReadonlyMap<string, readonly string[]>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pending = new Map(want);
  for (;;) {
    const next = new Map<string, readonly string[]>();
    await Promise.all(
      [...pending].map(async ([ns, devs]) => {
        const links = new Map((await readLinks(ns)).map((l) => [l.name, l]));
        const notReady = devs.filter((d) => !(links.get(d)?.up && links.get(d)?.carrier));
        if (notReady.length > 0) next.set(ns, notReady);
      }),
    );
    if (next.size === 0) return;
    if (Date.now() > deadline) {
      const what = [...next].map(([ns, devs]) => `${ns}: ${devs.join(', ')}`).join('; ');
      throw new AmbitError('AMBIT_ERR_NETNS', `links have no carrier after ${timeoutMs} ms (${what})`, {
        hint: 'a peer namespace may have been removed meanwhile; `ip -n <ns> link` shows the links',
      });
    }
    pending = next;
    await sleep(15);
  }
}

/** Runs async jobs with at most `limit` at a time. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
