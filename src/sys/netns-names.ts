// How a pod's network namespace is named, shared by the cluster (which makes it) and the
// ztunnel (which opens its listeners inside it).
import { createHash } from 'node:crypto';

/** `ip netns` names are file names; keep them readable and well under NAME_MAX. */
const MAX_READABLE_NETNS = 64;

/**
 * The network namespace of pod `namespace/name`: `<prefix>-<ns>-<pod>` when that is short and
 * unambiguous (the Kubernetes namespace has no '-'), else
 * `<prefix>-<ns, 20 chars>-<pod, 20 chars>_<10 hex of sha256(ns/pod)>`. Kubernetes names never
 * contain '_', so the two forms cannot collide. Stable: the same pod always gets the same name.
 */
export function podNetnsName(prefix: string, namespace: string, name: string): string {
  const readable = `${prefix}-${namespace}-${name}`;
  if (!namespace.includes('-') && readable.length <= MAX_READABLE_NETNS) return readable;
  const hash = createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 10);
  return `${prefix}-${namespace.slice(0, 20)}-${name.slice(0, 20)}_${hash}`;
}

