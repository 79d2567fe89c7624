// Undoing what the node agent did to a node's CNI configuration: every ambit-cni entry leaves
// every conflist, the rest of each list is kept as it was. Used by `ambit uninstall` (a
// short-lived DaemonSet runs `ambit x cni-cleanup` on every node).
import { readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const CNI_PLUGIN_TYPE = 'ambit-cni';

/** The conflist text without ambit-cni entries, or undefined when it had none (pure). */
export function withoutAmbitCni(text: string): string | undefined {
  let list: { plugins?: { type?: string }[] };
  try {
    list = JSON.parse(text) as typeof list;
  } catch {
    return undefined;
  }
  if (!Array.isArray(list.plugins) || !list.plugins.some((p) => p?.type === CNI_PLUGIN_TYPE)) return undefined;
  return JSON.stringify({ ...list, plugins: list.plugins.filter((p) => p?.type !== CNI_PLUGIN_TYPE) }, null, 2) + '\n';
}

/** Restores every conflist in confDir and removes the plugin binary; returns what changed. */
export function cleanupNode(confDir: string, binDir: string): string[] {
  const changed: string[] = [];
  for (const f of readdirSync(confDir).filter((x) => x.endsWith('.conflist')).sort()) {
    const p = join(confDir, f);
    const next = withoutAmbitCni(readFileSync(p, 'utf8'));
    if (next === undefined) continue;
    writeFileSync(`${p}.tmp`, next, { mode: 0o644 });
    renameSync(`${p}.tmp`, p);
    changed.push(p);
  }
  try {
    unlinkSync(join(binDir, CNI_PLUGIN_TYPE));
    changed.push(join(binDir, CNI_PLUGIN_TYPE));
  } catch {
    // already gone
  }
  return changed;
}
