// The MeshSettings resource a ztunnel receives (xds/mesh-settings.ts), from the model: the
// outbound policy of Istio's mesh config, the visibility of ServiceEntry hosts (exportTo), and
// the address ranges ServiceEntries declare.
import type { MeshModel } from '../model/mesh-model.js';
import type { MeshSettings } from '../xds/mesh-settings.js';
import { byCodeUnits } from '../core/compare.js';

export function meshSettingsOf(model: MeshModel): MeshSettings {
  const serviceVisibility: Record<string, string[]> = {};
  const cidrs = new Set<string>();
  for (const e of model.serviceEntries) {
    if (!e.exportTo.includes('*')) serviceVisibility[`${e.namespace}/${e.host}`] = [...e.exportTo];
    for (const c of e.cidrs) cidrs.add(c);
  }
  return { outboundTrafficPolicy: model.meshConfig.outboundTrafficPolicy, serviceVisibility, registryCidrs: [...cidrs].sort(byCodeUnits) };
}
