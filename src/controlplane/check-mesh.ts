// The whole check of a mesh config, shared by `ambit validate`, `ambit apply` (through the
// control plane), the file watcher and the translation for xDS: config diagnostics, model
// diagnostics (placement, addresses) and policy warnings (L7 rules a ztunnel must enforce).
import { ConfigSet } from '../config/config-set.js';
import { errorsOf, sortDiagnostics, type Diagnostic } from '../config/diagnostics.js';
import { readSources, type SourceText } from '../config/source.js';
import { validateSources } from '../config/validate.js';
import { buildModel, type BuildOptions } from '../model/build-model.js';
import type { MeshModel } from '../model/mesh-model.js';
import { translate, type WorkloadApi } from './translate.js';

export interface MeshCheck {
  set: ConfigSet;
  /** Present when there are no errors. */
  model?: MeshModel;
  api?: WorkloadApi;
  diagnostics: Diagnostic[];
}

/** Check a complete config set (set-wide checks must already be in `diagnostics`). */
export function checkSet(set: ConfigSet, diagnostics: Diagnostic[], options: BuildOptions = {}): MeshCheck {
  if (errorsOf(diagnostics).length > 0) return { set, diagnostics: sortDiagnostics(diagnostics) };
  const { model, diagnostics: modelDiags } = buildModel(set, options);
  const all = [...diagnostics, ...modelDiags];
  if (errorsOf(modelDiags).length > 0) return { set, diagnostics: sortDiagnostics(all) };
  const api = translate(model);
  return { set, model, api, diagnostics: sortDiagnostics([...all, ...api.warnings]) };
}

export function checkSources(sources: readonly SourceText[], base: ConfigSet = new ConfigSet(), options: BuildOptions = {}): MeshCheck {
  const r = validateSources(sources, base);
  return checkSet(r.set, r.diagnostics, options);
}

export async function loadMesh(paths: readonly string[], options: BuildOptions = {}): Promise<MeshCheck> {
  const { sources, diagnostics } = await readSources(paths);
  const r = validateSources(sources);
  return checkSet(r.set, [...diagnostics, ...r.diagnostics], options);
}
