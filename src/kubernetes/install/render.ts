// Manifests as YAML (multi-document, `---` between objects), deterministically: the same
// objects print the same bytes (no timestamps, no random names, keys in the models' order).
import { stringify } from 'yaml';

export function renderYaml(objects: readonly Record<string, unknown>[], header?: string): string {
  const docs = objects.map((o) => stringify(o, { lineWidth: 0, aliasDuplicateObjects: false }));
  return (header ? header.split('\n').map((l) => `# ${l}`.trimEnd()).join('\n') + '\n' : '') + docs.map((d) => `---\n${d}`).join('');
}

export function renderJson(objects: readonly Record<string, unknown>[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2) + '\n';
}
