// The whole check of a mesh config, shared by `ambit validate`, `ambit apply` (through the
// control plane), the file watcher and the translation for xDS: config diagnostics, model
// diagnostics (placement, addresses) and policy warnings (L7 rules a ztunnel must enforce).
import { ConfigSet } from '../config/config-set.js';
import { errorsOf, sortDiagnostics, type Diagnostic } from '../config/diagnostics.js';
import { readSources, type SourceText } from '../config/source.js';
import { validateSources } from '../config/validate.js';
import { buildModel, policiesOf, POLICY_ONLY_KINDS, type BuildOptions } from '../model/build-model.js';
import type { MeshModel } from '../model/mesh-model.js';
import { translate, translateAuthorizationChange, type WorkloadApi } from './translate.js';

export interface MeshCheck {
  set: ConfigSet;
  /** Present when there are no errors. */
  model?: MeshModel;
  api?: WorkloadApi;
  diagnostics: Diagnostic[];
  /** The model's own diagnostics (placement, addresses), kept for a later change that reuses the model. */
  modelDiagnostics?: Diagnostic[];
}

/** What the previous check of a config gave, for checking a change incrementally. */
export interface PreviousCheck {
  model: MeshModel;
  api: WorkloadApi;
  modelDiagnostics: Diagnostic[];
}

/**
 * Checks a changed set, doing only the work the change needs (`changed`: resource keys added,
 * changed or removed since `prev`):
 * - only kinds that feed no index of the model (POLICY_ONLY_KINDS): the model is kept with the
 *   new policy lists, instead of rebuilt;
 * - of those, only AuthorizationPolicies: the workload API is updated for those policies
 *   (translateAuthorizationChange); none of them, and no PeerAuthentication: the API is kept.
 * Anything else goes through checkSet. The result is the same either way (tests check it).
 */
export function checkChange(set: ConfigSet, diagnostics: Diagnostic[], options: BuildOptions, prev: PreviousCheck | undefined, changed: readonly string[]): MeshCheck {
  const kinds = new Set(changed.map((k) => k.slice(0, k.indexOf('/'))));
  if (!prev || changed.length === 0 || [...kinds].some((k) => !POLICY_ONLY_KINDS.has(k))) return checkSet(set, diagnostics, options);
  if (errorsOf(diagnostics).length > 0) return { set, diagnostics: sortDiagnostics(diagnostics) };
  const model = prev.model.withPolicies(policiesOf(set));
  let api = prev.api;
  if (kinds.has('PeerAuthentication')) api = translate(model);
  else if (kinds.has('AuthorizationPolicy')) {
    const keys = new Set(changed.filter((k) => k.startsWith('AuthorizationPolicy/')).map((k) => k.slice('AuthorizationPolicy/'.length)));
    api = translateAuthorizationChange(model, prev.api, keys);
  }
  return { set, model, api, modelDiagnostics: prev.modelDiagnostics, diagnostics: sortDiagnostics([...diagnostics, ...prev.modelDiagnostics, ...api.warnings]) };
}

/** Check a complete config set (set-wide checks must already be in `diagnostics`). */
export function checkSet(set: ConfigSet, diagnostics: Diagnostic[], options: BuildOptions = {}): MeshCheck {
  if (errorsOf(diagnostics).length > 0) return { set, diagnostics: sortDiagnostics(diagnostics) };
  const { model, diagnostics: modelDiags } = buildModel(set, options);
  const all = [...diagnostics, ...modelDiags];
  if (errorsOf(modelDiags).length > 0) return { set, diagnostics: sortDiagnostics(all) };
  const api = translate(model);
  return { set, model, api, modelDiagnostics: modelDiags, diagnostics: sortDiagnostics([...all, ...api.warnings]) };
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
