// Finding the network namespace of a pod the agent was never told about (it ran before the
// agent was installed): the namespace that holds the pod's IP. Istio's agent looks through
// /proc/<pid>/ns/net; here runtimes keep pod sandboxes as named namespaces (/var/run/netns).
//
// Invariants:
//  - With the node's namespace given (--node-netns), only the namespaces on the far side of
//    that node's veths are candidates: on a machine that runs several nodes (the local
//    cluster), or several clusters, an agent never touches another node's pods. Without it,
//    every named namespace of the machine is (a Kubernetes node: they are all its pods).
//  - An address found in two namespaces is ambiguous and matches neither.
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
      out.set(m[1]!, out.has(m[1]!) && out.get(m[1]!) !== current ? '' : current);
    }
  }
  return out;
}

/** The namespaces at the far end of a namespace's veths (`link-netns <name>`), pure. */
export function parsePeerNamespaces(text: string): string[] {
  // `ip -o` ends each line's parts with `\`: the name stops before it.
  return [...new Set([...text.matchAll(/\blink-netns ([^\s\\]+)/g)].map((m) => m[1]!))];
}

/** IP -> netns path of the pods of a node (or of every named namespace without one). */
export async function namespacesByAddress(nodeNetns?: string): Promise<Map<string, string>> {
  let text: string;
  if (nodeNetns) {
    const links = await runCommand('nsenter', [`--net=${nodeNetns}`, '--', 'ip', '-o', 'link', 'show', 'type', 'veth'], { timeoutMs: 20_000 });
    const parts: string[] = [];
    for (const name of parsePeerNamespaces(links.stdout)) {
      const r = await runCommand('ip', ['-n', name, '-4', '-o', 'addr', 'show'], { timeoutMs: 10_000, okExitCodes: [0, 1, 255] });
      parts.push(`netns: ${name}`, r.stdout);
    }
    text = parts.join('\n');
  } else {
    text = (await runCommand('ip', ['-all', 'netns', 'exec', 'ip', '-4', '-o', 'addr', 'show'], { timeoutMs: 60_000, okExitCodes: [0, 1, 255] })).stdout;
  }
  const byIp = new Map<string, string>();
  for (const [ip, name] of parseAllNetnsAddresses(text)) if (name) byIp.set(ip, `${NETNS_DIR}/${name}`);
  return byIp;
}
