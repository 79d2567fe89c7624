// PeerAuthentication in ambient, as Istio's control plane converts it: the effective mTLS
// mode of each workload (workload policy > namespace policy > mesh-wide policy; UNSET
// inherits; DISABLE counts as PERMISSIVE) becomes authorization the ztunnel enforces:
// - effective STRICT with no port exceptions -> the workload lists the static policy
//   `<root>/istio_converted_static_strict` (DENY anything without a peer identity);
// - a workload policy with portLevelMtls -> `converted_peer_authentication_<name>`, a DENY
//   of plaintext limited to (or excluding) the listed ports.
import type { Located, MtlsMode, PeerAuthenticationResource } from '../config/resources.js';
import { selects } from '../model/build-model.js';
import type { WorkloadInfo } from '../model/types.js';
import { STATIC_STRICT_POLICY_NAME } from '../rbac/index.js';
import { emptyMatch, type Authorization, type Match } from '../xds/workload-api.js';

export type EffectiveMode = 'STRICT' | 'PERMISSIVE';

export interface PeerAuthOutcome {
  mode: EffectiveMode;
  /** Port -> mode where it differs from `mode`. */
  portModes: Record<number, EffectiveMode>;
  /** The policies that decided, most specific first. */
  decidedBy: string[];
  /** Authorization resource names ("ns/name") the workload must list. */
  policyNames: string[];
  /** A converted per-workload policy, when port-level modes exist. */
  converted?: Authorization;
}

const norm = (m: MtlsMode | undefined): EffectiveMode | undefined =>
  m === 'STRICT' ? 'STRICT' : m === 'PERMISSIVE' || m === 'DISABLE' ? 'PERMISSIVE' : undefined;

/** Oldest wins in Istio; without timestamps we take the first by name, deterministically. */
function first<T extends { resource: PeerAuthenticationResource }>(list: T[]): T | undefined {
  return [...list].sort((a, b) => a.resource.metadata.name.localeCompare(b.resource.metadata.name))[0];
}

export function effectivePeerAuthentication(
  workload: Pick<WorkloadInfo, 'namespace' | 'labels'>,
  policies: readonly Located<PeerAuthenticationResource>[],
  rootNamespace: string,
): PeerAuthOutcome {
  const mesh = first(policies.filter((p) => p.resource.metadata.namespace === rootNamespace && !p.resource.spec.selector));
  const ns = workload.namespace === rootNamespace ? undefined
    : first(policies.filter((p) => p.resource.metadata.namespace === workload.namespace && !p.resource.spec.selector));
  const wl = first(policies.filter((p) => p.resource.metadata.namespace === workload.namespace && p.resource.spec.selector
    && selects(p.resource.spec.selector.matchLabels ?? {}, workload.labels)));

  const decidedBy: string[] = [];
  let mode: EffectiveMode = 'PERMISSIVE';
  for (const p of [mesh, ns, wl]) {
    const m = norm(p?.resource.spec.mtls?.mode);
    if (p && m) {
      mode = m;
      decidedBy.unshift(`${p.resource.metadata.namespace}/${p.resource.metadata.name}`);
    }
  }
  const portModes: Record<number, EffectiveMode> = {};
  for (const [port, v] of Object.entries(wl?.resource.spec.portLevelMtls ?? {})) {
    const m = norm(v.mode) ?? mode;
    if (m !== mode) portModes[Number(port)] = m;
  }
  const exceptions = Object.keys(portModes).map(Number).sort((a, b) => a - b);
  const noIdentity: Match = { ...emptyMatch(), notPrincipals: [{ presence: {} }] };
  if (exceptions.length === 0 || !wl) {
    return { mode, portModes: {}, decidedBy, policyNames: mode === 'STRICT' ? [`${rootNamespace}/${STATIC_STRICT_POLICY_NAME}`] : [] };
  }
  const name = `converted_peer_authentication_${wl.resource.metadata.name}`;
  const portClause: Match = mode === 'STRICT'
    ? { ...emptyMatch(), notDestinationPorts: exceptions }
    : { ...emptyMatch(), destinationPorts: exceptions };
  const converted: Authorization = {
    name, namespace: workload.namespace, scope: 'WORKLOAD_SELECTOR', action: 'DENY', dryRun: false,
    rules: [{ clauses: [{ matches: [noIdentity] }, { matches: [portClause] }] }],
  };
  return { mode, portModes, decidedBy, policyNames: [`${workload.namespace}/${name}`], converted };
}
