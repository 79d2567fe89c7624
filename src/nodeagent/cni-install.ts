// Puts `ambit-cni` into the node's CNI configuration, as Istio's install-cni does for
// istio-cni: appended to the chain of the node's network configuration list, pointing at this
// agent's socket. From then on the runtime calls it for every new pod sandbox.
//
// Invariants:
//  - Idempotent: exactly one ambit-cni entry, last in the chain, with the current socket; the
//    rest of the list is kept as it was. Written atomically (write + rename), so a runtime
//    never reads half a file.
//  - The entry stays when the agent stops: a pod created while the agent is away fails its
//    ADD (try again later) instead of starting uncaptured.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseConfList, type ConfList } from '../cni/runtime.js';

export const PLUGIN_TYPE = 'ambit-cni';

/** The list with exactly one ambit-cni entry, last, for `socketPath` (pure). */
export function withAmbitPlugin(list: ConfList, socketPath: string): ConfList {
  const others = list.plugins.filter((p) => p.type !== PLUGIN_TYPE);
  return { ...list, plugins: [...others, { type: PLUGIN_TYPE, agent_socket: socketPath }] };
}

/** Adds (or refreshes) ambit-cni in the conflist at `path`; true when the file changed. */
export function installPlugin(path: string, socketPath: string): boolean {
  const text = readFileSync(path, 'utf8');
  const next = JSON.stringify(withAmbitPlugin(parseConfList(text, path), socketPath), null, 2) + '\n';
  if (next === text) return false;
  writeFileSync(`${path}.tmp`, next, { mode: 0o644 });
  renameSync(`${path}.tmp`, path);
  return true;
}
