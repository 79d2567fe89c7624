// Name resolution inside pods, without a DNS server: `ip netns exec <name>` bind-mounts each
// file of /etc/netns/<name>/ over the same file in /etc for the process it starts, so every
// pod gets its own /etc/hosts (service and pod names), /etc/resolv.conf (Kubernetes search
// path) and /etc/nsswitch.conf (`hosts: files dns`).
//
// Invariants:
//  - Files are rewritten in place (same inode: write at offset 0, then truncate), never
//    replaced by rename: a bind mount pins the inode, so a renamed-in file would be invisible
//    to the processes already running. glibc reads /etc/hosts afresh on every lookup and
//    reloads resolv.conf when it changes, so running programs see updates at once. A file is
//    never truncated before it is rewritten (a reader racing the update would find it empty):
//    the new content is written over the old in one write, padded with a trailing comment
//    line when shorter, so no tail of the old content can survive as a stale entry.
//  - Unchanged content is not rewritten (no needless resolver reloads).
//  - Names, as Kubernetes DNS would answer them: `svc` (the pod's own namespace only),
//    `svc.ns`, `svc.ns.svc`, `svc.ns.svc.<cluster domain>`; `pod.ns` for pods whose name
//    doesn't clash with a service name (services win); the pod's own name; localhost.
//  - resolv.conf: `search <ns>.svc.<domain> svc.<domain> <domain>`, `options ndots:5` (as in
//    Kubernetes), and nameserver 127.0.0.1 with nothing listening: a name not in the hosts
//    file fails at once (the query is refused on loopback), offline or not, and no query ever
//    leaves the pod (there is no route to the host's resolvers anyway).
//  - Only files that exist in /etc are provided: `ip netns exec` can only bind over an
//    existing file. Programs started before writePodDns keep the host's files: write the DNS
//    files before starting a pod's processes.
//  - Every hosts file starts with a header naming the cluster prefix and the pod, so a cleanup
//    after a crash removes only directories Ambit wrote.
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AmbitError } from '../core/errors.js';

export const ETC_NETNS_DIR = '/etc/netns';
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';
/** Nothing listens there: lookups of unknown names fail fast. */
export const DEFAULT_NAMESERVER = '127.0.0.1';

export interface DnsService {
  namespace: string;
  name: string;
  vip: string;
}

export interface DnsPod {
  namespace: string;
  name: string;
  ip: string;
}

export interface PodDnsOptions {
  /** Cluster prefix (written in the header, for cleanup). */
  prefix: string;
  /** The pod's network namespace name (the directory under /etc/netns). */
  netns: string;
  /** The pod itself. */
  namespace: string;
  name: string;
  ip: string;
  services: readonly DnsService[];
  /** Pods to name as `pod.ns` (optional). */
  pods?: readonly DnsPod[];
  clusterDomain?: string;
  nameserver?: string;
  /** Default /etc/netns (tests may point elsewhere for the pure parts). */
  etcNetnsDir?: string;
  /** Where the host's nsswitch.conf is read from; default /etc/nsswitch.conf. */
  hostNsswitch?: string;
}

export function hostsHeader(prefix: string, namespace: string, name: string, netns: string): string {
  return `# Ambit cluster ${prefix}: hosts of pod ${namespace}/${name} (network namespace ${netns}); rewritten in place on every change`;
}

/** The pod's /etc/hosts. */
export function renderHosts(o: Omit<PodDnsOptions, 'etcNetnsDir' | 'nameserver' | 'hostNsswitch'>): string {
  const domain = o.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  const used = new Set<string>(['localhost', 'ip6-localhost', 'ip6-loopback']);
  const lines = [hostsHeader(o.prefix, o.namespace, o.name, o.netns), '127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  const add = (ip: string, names: string[]) => {
    const fresh = names.filter((n) => !used.has(n));
    for (const n of fresh) used.add(n);
    if (fresh.length > 0) lines.push(`${ip}\t${fresh.join(' ')}`);
  };
  // Services first: their names win over pod names.
  const services = [...o.services].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  for (const s of services) {
    const names = [`${s.name}.${s.namespace}`, `${s.name}.${s.namespace}.svc`, `${s.name}.${s.namespace}.svc.${domain}`];
    if (s.namespace === o.namespace) names.unshift(s.name);
    add(s.vip, names);
  }
  add(o.ip, [o.name, `${o.name}.${o.namespace}`]);
  const pods = [...(o.pods ?? [])].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  for (const p of pods) add(p.ip, [`${p.name}.${p.namespace}`]);
  return lines.join('\n') + '\n';
}

/** The pod's /etc/resolv.conf. */
export function renderResolvConf(o: { prefix: string; namespace: string; name: string; clusterDomain?: string; nameserver?: string }): string {
  const domain = o.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  return [
    o.nameserver === undefined || o.nameserver === DEFAULT_NAMESERVER
      ? `# Ambit cluster ${o.prefix}: resolver of pod ${o.namespace}/${o.name}; names come from /etc/hosts, unknown names fail at once`
      : `# Ambit cluster ${o.prefix}: resolver of pod ${o.namespace}/${o.name}; names come from /etc/hosts, then DNS (the pod's ztunnel answers when it is enrolled)`,
    `nameserver ${o.nameserver ?? DEFAULT_NAMESERVER}`,
    `search ${o.namespace}.svc.${domain} svc.${domain} ${domain}`,
    'options ndots:5 timeout:1 attempts:1',
    '',
  ].join('\n');
}

/** The pod's /etc/nsswitch.conf: the host's, with `hosts: files dns`. */
export function renderNsswitch(host: string): string {
  const lines = host.split('\n');
  const i = lines.findIndex((l) => /^\s*hosts\s*:/.test(l));
  const hosts = 'hosts:          files dns';
  if (i >= 0) lines[i] = hosts;
  else lines.push(hosts);
  return lines.join('\n').replace(/\n*$/, '\n');
}

/**
 * Writes `content` into `path` keeping its inode, padded to the old length when shorter (see the
 * invariants); false when the file already held it.
 */
export async function writeInPlace(path: string, content: string): Promise<boolean> {
  let data = Buffer.from(content, 'utf8');
  let old: Buffer | undefined;
  try {
    old = await readFile(path);
  } catch {
    old = undefined;
  }
  if (old !== undefined && data.length < old.length) {
    const pad = old.length - data.length;
    data = Buffer.concat([data, Buffer.from(pad === 1 ? '\n' : `#${' '.repeat(pad - 2)}\n`)]);
  }
  if (old?.equals(data)) return false;
  const fh = await open(path, old === undefined ? 'w' : 'r+', 0o644);
  try {
    await fh.write(data, 0, data.length, 0);
    await fh.truncate(data.length);
  } finally {
    await fh.close();
  }
  return true;
}

function dirOf(o: { netns: string; etcNetnsDir?: string }): string {
  if (!/^[a-zA-Z0-9_.-]+$/.test(o.netns) || o.netns === '.' || o.netns === '..') {
    throw new AmbitError('AMBIT_ERR_USAGE', `'${o.netns}' is not a network namespace name`);
  }
  return join(o.etcNetnsDir ?? ETC_NETNS_DIR, o.netns);
}

/** Writes (or updates in place) a pod's hosts, resolv.conf and nsswitch.conf. Returns the files changed. */
export async function writePodDns(o: PodDnsOptions): Promise<{ dir: string; changed: string[] }> {
  const dir = dirOf(o);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const files: Array<[string, string]> = [];
  // Only files /etc has: `ip netns exec` binds over existing files only (and warns otherwise).
  if (existsSync('/etc/hosts')) files.push(['hosts', renderHosts(o)]);
  if (existsSync('/etc/resolv.conf')) files.push(['resolv.conf', renderResolvConf(o)]);
  const hostNsswitch = o.hostNsswitch ?? '/etc/nsswitch.conf';
  if (existsSync('/etc/nsswitch.conf')) {
    const host = await readFile(hostNsswitch, 'utf8').catch(() => '');
    files.push(['nsswitch.conf', renderNsswitch(host)]);
  }
  const changed: string[] = [];
  for (const [name, content] of files) {
    if (await writeInPlace(join(dir, name), content)) changed.push(name);
  }
  return { dir, changed };
}

const OUR_FILES = ['hosts', 'resolv.conf', 'nsswitch.conf'];

/** Removes a pod's /etc/netns/<netns> directory (only the files Ambit writes). Idempotent. */
export async function removePodDns(o: { netns: string; etcNetnsDir?: string }): Promise<boolean> {
  const dir = dirOf(o);
  if (!existsSync(dir)) return false;
  for (const f of OUR_FILES) await rm(join(dir, f), { force: true });
  await rmdir(dir).catch(() => undefined); // not empty: someone else's files; leave them
  return true;
}

/** Removes the DNS directories of every pod of cluster `prefix` (after a crash too). */
export async function removeDnsForPrefix(prefix: string, etcNetnsDir = ETC_NETNS_DIR): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(etcNetnsDir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const netns of entries.filter((e) => e.startsWith(`${prefix}-`))) {
    const hosts = await readFile(join(etcNetnsDir, netns, 'hosts'), 'utf8').catch(() => '');
    if (!hosts.startsWith(`# Ambit cluster ${prefix}: `)) continue;
    await removePodDns({ netns, etcNetnsDir });
    removed.push(netns);
  }
  return removed;
}
