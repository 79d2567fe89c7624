// Helpers to validate YAML text in tests, without files.
import { ConfigSet } from '../../src/config/config-set.js';
import type { Diagnostic } from '../../src/config/diagnostics.js';
import { validateSources } from '../../src/config/validate.js';
import { checkSet, type MeshCheck } from '../../src/controlplane/check-mesh.js';
import type { BuildOptions } from '../../src/model/build-model.js';

export function validateYaml(text: string, file = 'test.yaml'): { set: ConfigSet; diagnostics: Diagnostic[] } {
  const r = validateSources([{ file, text }]);
  return { set: r.set, diagnostics: r.diagnostics };
}

export function meshFromYaml(text: string, options: BuildOptions = {}): MeshCheck {
  const r = validateSources([{ file: 'test.yaml', text }]);
  return checkSet(r.set, r.diagnostics, options);
}

/** Strip leading indentation common to all lines (so YAML can be indented in test code). */
export function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ''), '');
  const lines = text.replace(/^\n/, '').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.match(/^ */)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n');
}
