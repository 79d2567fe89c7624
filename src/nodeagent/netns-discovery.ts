// Finding the network namespace of a pod the agent was never told about (it ran before the
// agent was installed): the named namespace (/var/run/netns, where runtimes keep pod sandboxes)
// that holds the pod's IP. Istio's agent does the same over /proc/<pid>/ns/net.
import { runCommand } from '../sys/exec.js';

export const NETNS_DIR = '/var/run/netns';

/** Parses `ip -all netns exec ip -4 -o addr show` output into IP -> namespace name (pure). */
export function parseAllNetnsAddresses(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let current: string | undefined;
  for (const line of text.split('\n')) {
    const head = /^netns: (\S+)$/.exec(line.trim());
    if (head) {
      current = head[1];
      continue;
    }
    const m = /\binet (\d+\.\d+\.\d+\.\d+)\//.exec(line);
    if (m && current && !m[1]!.startsWith('127.')) {
      // An address in two namespaces is ambiguous: neither is the pod's for sure.
      out.set(m[1]!, out.has(m[1]!) && out.get(m[1]!) !== current ? '' : current);
    }
  }
  return out;
}

/** IP -> netns path for every named namespace (one `ip` process per namespace). */
export async function namespacesByAddress(): Promise<Map<string, string>> {
  const r = await runCommand('ip', ['-all', 'netns', 'exec', 'ip', '-4', '-o', 'addr', 'show'], { timeoutMs: 60_000, okExitCodes: [0, 1, 255] });
  const byIp = new Map<string, string>();
  for (const [ip, name] of parseAllNetnsAddresses(r.stdout)) if (name) byIp.set(ip, `${NETNS_DIR}/${name}`);
  return byIp;
}
