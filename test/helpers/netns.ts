// Helpers for the netns test tier: throwaway network namespaces joined by veth pairs, commands
// and long-running processes inside them, and a cleanup that removes everything.
//
// Invariants:
//  - Every namespace is named `at<pid>-<prefix>-<short>`: unique per test process, and
//    recognisably ours. createTestNetwork first removes namespaces of that shape whose
//    process is gone (a test killed before its `after` ran).
//  - Addresses are private (10.99.<link>.0/24, fd00:99:<link>::/64) and exist only inside the
//    test namespaces; nothing is linked to the host's namespace, so there is no route to or
//    from the host's networks. veth ends are created directly inside their namespaces
//    (`ip link add ... netns`), so no interface ever appears in the host namespace.
//  - cleanup() kills the processes it started (by PID), then anything else still inside the
//    namespaces (`ip netns pids`), then deletes the namespaces. It tries every step even when
//    one fails, is idempotent, and throws at the end if something could not be removed.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Server, Socket } from 'node:net';
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { runCommand, type RunOptions, type RunResult } from '../../src/sys/exec.js';

export const TEST_NETNS_PATTERN = /^at(\d+)-/;

export interface TestLink {
  /** Full namespace names of the two ends. */
  a: string;
  b: string;
  aIf: string;
  bIf: string;
  aAddress: string;
  bAddress: string;
  aAddress6: string;
  bAddress6: string;
  prefixLength: number;
  prefixLength6: number;
}

export interface TestProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  readonly commandLine: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with all stdout+stderr so far once it matches; rejects on exit or timeout. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface TestNetwork {
  /** `at<pid>-<prefix>`; every namespace name starts with it. */
  readonly prefix: string;
  /** The full name of the namespace called `short` in this network. */
  ns(short: string): string;
  addNamespace(short: string): Promise<string>;
  /**
   * A veth pair between two namespaces of this network (created if needed), addressed and up.
   * Unless waitReady is false, resolves only once both ends have carrier (see waitLinksReady).
   */
  link(a: string, b: string, options?: { waitReady?: boolean }): Promise<TestLink>;
  run(short: string, command: string, args?: readonly string[], options?: RunOptions): Promise<RunResult>;
  spawn(short: string, command: string, args?: readonly string[]): TestProcess;
  /** Full names of the namespaces made so far. */
  namespaces(): string[];
  /** The links made so far, in order (link i has addresses 10.99.i.1 and 10.99.i.2). */
  links(): TestLink[];
  cleanup(): Promise<void>;
}

export interface TestNetworkSpec {
  namespaces?: string[];
  links?: Array<[string, string]>;
}

/** Runs `command args` inside namespace `name` (its full name). */
export function runInNetns(name: string, command: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
  return runCommand('ip', ['netns', 'exec', name, command, ...args], { timeoutMs: 15_000, ...options });
}

/** Starts a long-running process inside namespace `name`; stop it with stop() (by PID). */
export function spawnInNetns(name: string, command: string, args: readonly string[] = []): TestProcess {
  // `ip netns exec` execs the command after entering the namespace: the PID is the command's.
  const child = spawn('ip', ['netns', 'exec', name, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    notify();
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    notify();
  });
  let gone = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      gone = true;
      notify();
      resolve({ code, signal });
    });
    child.once('error', () => {
      gone = true;
      notify();
      resolve({ code: null, signal: null });
    });
  });
  const commandLine = [command, ...args].join(' ');
  return {
    get pid() {
      return child.pid ?? -1;
    },
    child,
    commandLine,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForOutput(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const all = out + err;
          if (pattern.test(all)) {
            finish();
            resolve(all);
          } else if (gone) {
            finish();
            reject(new Error(`${commandLine} exited before printing ${pattern}; output:\n${all}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`${commandLine} did not print ${pattern} within ${timeoutMs} ms; output:\n${out + err}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop(graceMs = 2_000): Promise<void> {
      if (gone || child.pid === undefined) return;
      try {
        process.kill(child.pid, 'SIGTERM');
      } catch {
        return; // already gone
      }
      const timer = setTimeout(() => {
        try {
          if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }, graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function listNetns(): Promise<string[]> {
  const r = await runCommand('ip', ['netns', 'list'], { timeoutMs: 10_000 });
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

/** Kills every process inside namespace `name` (but never this one) and deletes it. */
export async function removeNetns(name: string): Promise<void> {
  const pids = await runCommand('ip', ['netns', 'pids', name], { timeoutMs: 10_000 }).then(
    (r) => r.stdout.split(/\s+/).filter((p) => p !== '').map(Number),
    () => [] as number[],
  );
  for (const pid of pids) {
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await runCommand('ip', ['netns', 'del', name], { timeoutMs: 10_000 });
}

/** Removes test namespaces left behind by test processes that no longer exist. */
export async function removeStaleTestNamespaces(): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await listNetns()) {
    const m = TEST_NETNS_PATTERN.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    await removeNetns(name).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: unknown) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let networkCounter = 0;

/**
 * A network of test namespaces named `at<pid>-<prefix>-<short>`. Call cleanup() from `after`.
 * With a spec, the namespaces and links are made at once.
 */
export async function createTestNetwork(prefix: string, spec: TestNetworkSpec = {}): Promise<TestNetwork> {
  await removeStaleTestNamespaces();
  const clean = prefix.replace(/[^a-zA-Z0-9]/g, '').slice(0, 20) || 't';
  networkCounter++;
  const fullPrefix = `at${process.pid}-${clean}${networkCounter > 1 ? networkCounter : ''}`;
  const made: string[] = [];
  const processes: TestProcess[] = [];
  const madeLinks: TestLink[] = [];
  const linkCount = new Map<string, number>();

  const ns = (short: string) => `${fullPrefix}-${short}`;

  const network: TestNetwork = {
    prefix: fullPrefix,
    ns,
    namespaces: () => [...made],
    links: () => [...madeLinks],
    async addNamespace(short: string): Promise<string> {
      if (!/^[a-zA-Z0-9]+$/.test(short)) throw new Error(`test namespace name '${short}' must be alphanumeric`);
      const name = ns(short);
      if (made.includes(name)) return name;
      await runCommand('ip', ['netns', 'add', name], { timeoutMs: 10_000 });
      made.push(name);
      await runCommand('ip', ['-n', name, 'link', 'set', 'lo', 'up'], { timeoutMs: 10_000 });
      // No IPv6 duplicate address detection: a tentative link-local address would delay the
      // first neighbour discovery on a new link by about a second.
      await runInNetns(name, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
      return name;
    },
    async link(a: string, b: string, options: { waitReady?: boolean } = {}): Promise<TestLink> {
      const nsA = await network.addNamespace(a);
      const nsB = await network.addNamespace(b);
      const i = madeLinks.length + 1;
      if (i > 250) throw new Error('too many links in one test network');
      const ifName = (self: string, peer: string) => {
        const n = (linkCount.get(self) ?? 0) + 1;
        linkCount.set(self, n);
        return `e${n}-${peer}`.slice(0, 15);
      };
      const aIf = ifName(nsA, b);
      const bIf = ifName(nsB, a);
      const link: TestLink = {
        a: nsA,
        b: nsB,
        aIf,
        bIf,
        aAddress: `10.99.${i}.1`,
        bAddress: `10.99.${i}.2`,
        aAddress6: `fd00:99:${i}::1`,
        bAddress6: `fd00:99:${i}::2`,
        prefixLength: 24,
        prefixLength6: 64,
      };
      await runCommand('ip', ['link', 'add', aIf, 'netns', nsA, 'type', 'veth', 'peer', 'name', bIf, 'netns', nsB], { timeoutMs: 10_000 });
      for (const [name, dev, v4, v6] of [
        [nsA, aIf, link.aAddress, link.aAddress6],
        [nsB, bIf, link.bAddress, link.bAddress6],
      ] as const) {
        await runCommand('ip', ['-n', name, 'addr', 'add', `${v4}/24`, 'dev', dev], { timeoutMs: 10_000 });
        await runCommand('ip', ['-n', name, '-6', 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad'], { timeoutMs: 10_000 });
        await runCommand('ip', ['-n', name, 'link', 'set', dev, 'up'], { timeoutMs: 10_000 });
      }
      madeLinks.push(link);
      if (options.waitReady !== false) await waitLinksReady([link]);
      return link;
    },
    run(short, command, args = [], options = {}) {
      return runInNetns(ns(short), command, args, options);
    },
    spawn(short, command, args = []) {
      const p = spawnInNetns(ns(short), command, args);
      processes.push(p);
      return p;
    },
    async cleanup(): Promise<void> {
      const problems: string[] = [];
      for (const p of processes.splice(0)) {
        await p.stop(1_000).catch((e: unknown) => problems.push(`stop ${p.commandLine}: ${String(e)}`));
      }
      for (const name of made.splice(0).reverse()) {
        await removeNetns(name).catch((e: unknown) => problems.push(`remove ${name}: ${e instanceof Error ? e.message : String(e)}`));
      }
      const left = (await listNetns()).filter((n) => n.startsWith(`${fullPrefix}-`));
      for (const name of left) {
        await removeNetns(name).catch((e: unknown) => problems.push(`remove ${name}: ${e instanceof Error ? e.message : String(e)}`));
      }
      if (problems.length > 0) throw new Error(`test network cleanup failed:\n  ${problems.join('\n  ')}`);
    },
  };

  try {
    for (const short of spec.namespaces ?? []) await network.addNamespace(short);
    const links: TestLink[] = [];
    for (const [a, b] of spec.links ?? []) links.push(await network.link(a, b, { waitReady: false }));
    await waitLinksReady(links);
  } catch (e: unknown) {
    await network.cleanup().catch(() => undefined);
    throw e;
  }
  return network;
}

/**
 * Waits until both ends of each link have carrier. The end brought up last shows NO-CARRIER
 * for up to a second (the kernel's linkwatch batches carrier events); IPv4 does not mind, but
 * until then IPv6 has no link-local address there and ignores neighbour solicitations, so a
 * first IPv6 connection would wait a full ND retransmit (1 s).
 */
export async function waitLinksReady(links: readonly TestLink[], timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const ends = links.flatMap((l) => [[l.a, l.aIf], [l.b, l.bIf]] as const);
  for (const [ns, dev] of ends) {
    for (;;) {
      const r = await runCommand('ip', ['-n', ns, '-o', 'link', 'show', 'dev', dev], { timeoutMs: 5_000 });
      if (!r.stdout.includes('NO-CARRIER') && /\bstate UP\b/.test(r.stdout)) break;
      if (Date.now() > deadline) throw new Error(`link ${dev} in ${ns} has no carrier after ${timeoutMs} ms: ${r.stdout.trim()}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Inode of this process's (main thread's) network namespace. */
export function ownNetnsInode(): number {
  return statSync('/proc/self/ns/net').ino;
}

/** Network namespace of every thread of this process, as `net:[inode]` links. */
export function threadNetns(): string[] {
  return readdirSync('/proc/self/task').map((tid) => readlinkSync(`/proc/self/task/${tid}/ns/net`));
}

/** Number of open file descriptors of this process. */
export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Tracks a server's open connections, so a test can close everything in `after`. */
export function trackConnections(server: Server): { open(): number; accepted(): number; closeAll(): Promise<void> } {
  const open = new Set<Socket>();
  let accepted = 0;
  server.on('connection', (s: Socket) => {
    accepted++;
    open.add(s);
    s.once('close', () => open.delete(s));
  });
  return {
    open: () => open.size,
    accepted: () => accepted,
    closeAll: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        if (!server.listening) {
          resolve();
          return;
        }
        server.close(() => resolve());
      }),
  };
}
