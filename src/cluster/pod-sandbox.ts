// What a pod's process may do on the host: the local cluster has no container runtime, so a
// pod is a network namespace, and its processes share the host's files. The sandbox makes
// that as safe as it can be without an image:
// - it runs as the pod's user (securityContext.runAsUser / runAsGroup), by default an
//   unprivileged one (65534, "nobody"), root only when the manifest asks for uid 0;
// - with no capabilities at all when not root, and with the capabilities a container runtime
//   gives a root container by default when root (no CAP_SYS_ADMIN, no CAP_NET_ADMIN: it cannot
//   leave its namespaces or touch the capture rules), never gaining privileges (no_new_privs);
// - in its own mount namespace (`ip netns exec` makes one, a slave of the host's), where the
//   cluster's state directory (keys, tokens, logs) is covered by an empty read-only tmpfs, so
//   it is not even visible — to root pods either;
// - with only the pod's own environment, never the daemon's.
//
// - its network namespace lets any user bind any port (ip_unprivileged_port_start=0, as
//   container runtimes set it), so an unprivileged server can still listen on port 80.
//
// Invariants:
// - Pure (but preparePodNetns): the argv is built here and run by the supervisor as `ip netns exec <ns> <argv>`.
// - A hidden path that cannot be covered makes the process fail to start (sh -e), never start
//   with it visible.

import { statSync } from 'node:fs';
import { runCommand } from '../sys/exec.js';

/** The capabilities a container runtime grants a root container by default. */
export const DEFAULT_ROOT_CAPABILITIES = [
  'chown', 'dac_override', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap',
  'net_bind_service', 'net_raw', 'sys_chroot', 'mknod', 'audit_write', 'setfcap',
] as const;

export const DEFAULT_POD_UID = 65534;
export const DEFAULT_POD_GID = 65534;
export const POD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface PodSandbox {
  uid: number;
  gid: number;
  /** Paths covered by an empty tmpfs in the process's mount namespace. */
  hide: readonly string[];
}

export interface SecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
}

export type SandboxDecision = { ok: true; sandbox: PodSandbox } | { ok: false; reason: string };

/**
 * The sandbox of one container: its securityContext over the pod's (as Kubernetes merges
 * them), Ambit's unprivileged default where neither says.
 */
export function sandboxFor(pod: SecurityContext | undefined, container: SecurityContext | undefined, hide: readonly string[]): SandboxDecision {
  const uid = container?.runAsUser ?? pod?.runAsUser ?? DEFAULT_POD_UID;
  const gid = container?.runAsGroup ?? pod?.runAsGroup ?? (uid === 0 ? 0 : uid === DEFAULT_POD_UID ? DEFAULT_POD_GID : uid);
  const nonRoot = container?.runAsNonRoot ?? pod?.runAsNonRoot ?? false;
  if (nonRoot && uid === 0) return { ok: false, reason: 'runAsNonRoot is true but runAsUser is 0' };
  return { ok: true, sandbox: { uid, gid, hide } };
}

/** The argv that runs `argv` in the sandbox (inside `ip netns exec`). */
export function sandboxArgv(s: PodSandbox, argv: readonly string[]): string[] {
  const caps = s.uid === 0 ? `-all,${DEFAULT_ROOT_CAPABILITIES.map((c) => `+${c}`).join(',')}` : '-all';
  return [
    '/bin/sh', '-ec',
    'while [ "$1" != -- ]; do mount -t tmpfs -o size=4k,mode=0500,ro ambit-hidden "$1"; shift; done; shift; exec "$@"',
    'ambit-pod', ...s.hide, '--',
    'setpriv', `--reuid=${s.uid}`, `--regid=${s.gid}`, '--clear-groups',
    `--inh-caps=${caps}`, `--bounding-set=${caps}`, ...(s.uid === 0 ? [] : ['--ambient-caps=-all']), '--no-new-privs',
    '--', ...argv,
  ];
}

/** The environment of a pod's process: a standard PATH and HOME, then the pod's own. */
export function sandboxEnv(s: PodSandbox, env: Record<string, string>): Record<string, string> {
  return { PATH: POD_PATH, HOME: s.uid === 0 ? '/root' : '/tmp', ...env };
}

/** Per-namespace settings a pod's network namespace gets when it is made (see the header). */
export async function preparePodNetns(netns: string): Promise<void> {
  await runCommand('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w', 'net.ipv4.ip_unprivileged_port_start=0'], { timeoutMs: 10_000, errorCode: 'AMBIT_ERR_NETNS' });
}

/**
 * Whether a user who is neither the owner nor in the group can read `path` (every directory
 * on the way searchable, the file readable by others): the built-in apps (`ambit app ...`) run
 * this checkout's Node.js and scripts as the pod's unprivileged user.
 */
export function readableByOthers(path: string): boolean {
  const parts = path.split('/').filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const p = `/${parts.slice(0, i).join('/')}`;
    let mode: number;
    try {
      mode = statSync(p).mode;
    } catch {
      return false;
    }
    const need = i === parts.length ? 0o004 : 0o001;
    if ((mode & need) === 0) return false;
  }
  return true;
}
