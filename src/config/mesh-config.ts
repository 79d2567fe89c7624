// Istio's mesh config, read the way istiod reads it: the ConfigMap `istio` in the root
// namespace, key `mesh`, whose value is MeshConfig as YAML. Ambit applies a few of its fields
// and accepts the others (so a real Istio ConfigMap validates), saying which it ignores.
//
// Invariants:
// - Parsing is pure and reports every problem with the JSON path inside `data.mesh` and the
//   line inside the embedded YAML (the validator maps it to the file's line).
// - Defaults are Ambit's, and where they differ from Istio's the difference is deliberate:
//   path normalization defaults to MERGE_SLASHES (Istio: BASE, which leaves `//admin` past a
//   DENY on `/admin`).
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import type { PathSegment } from './diagnostics.js';
import { any, checkSchema, isPlainObject, obj, str, type Schema } from './schema.js';

export const MESH_CONFIGMAP_NAME = 'istio';
export const MESH_CONFIGMAP_KEY = 'mesh';

export const PATH_NORMALIZATIONS = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const;
export type PathNormalization = (typeof PATH_NORMALIZATIONS)[number];
export const OUTBOUND_POLICY_MODES = ['ALLOW_ANY', 'REGISTRY_ONLY'] as const;
export type OutboundPolicyMode = (typeof OUTBOUND_POLICY_MODES)[number];

export interface MeshConfig {
  /** How request paths are normalized before L7 authorization and routing. */
  pathNormalization: PathNormalization;
  /** Captured connections to destinations outside the registry: allowed, or refused. */
  outboundTrafficPolicy: OutboundPolicyMode;
}

export const DEFAULT_MESH_CONFIG: MeshConfig = Object.freeze({
  pathNormalization: 'MERGE_SLASHES',
  outboundTrafficPolicy: 'ALLOW_ANY',
});

/** MeshConfig fields Ambit applies. */
const APPLIED: Record<string, Schema> = {
  pathNormalization: obj({ normalization: str({ enum: PATH_NORMALIZATIONS }) }),
  outboundTrafficPolicy: obj({ mode: str({ enum: OUTBOUND_POLICY_MODES }) }),
};

/** MeshConfig fields Istio defines that Ambit accepts and does not apply (a warning says so). */
const ACCEPTED = [
  'accessLogFile', 'accessLogFormat', 'accessLogEncoding', 'enableTracing', 'enableEnvoyAccessLogService', 'defaultConfig',
  'defaultProviders', 'extensionProviders', 'rootNamespace', 'trustDomain', 'trustDomainAliases', 'enablePrometheusMerge',
  'enableAutoMtls', 'localityLbSetting', 'dnsRefreshRate', 'h2UpgradePolicy', 'inboundClusterStatName', 'outboundClusterStatName',
  'ingressClass', 'ingressService', 'ingressControllerMode', 'ingressSelector', 'protocolDetectionTimeout', 'connectTimeout',
  'tcpKeepalive', 'discoverySelectors', 'meshMTLS', 'tlsDefaults', 'serviceSettings', 'defaultServiceExportTo',
  'defaultVirtualServiceExportTo', 'defaultDestinationRuleExportTo', 'caCertificates', 'certificates',
  'configSources', 'verifyCertificateAtClient', 'defaultHttpRetryPolicy', 'proxyHttpPort', 'proxyListenPort', 'proxyInboundListenPort',
  'enableMtlsOnlyForExternalNameServices', 'mesh', 'thriftConfig', 'sdsUdsPath', 'ingressClassName',
];

const MESH_SCHEMA = obj({ ...APPLIED, ...Object.fromEntries(ACCEPTED.map((k) => [k, any])) }, [], 'MeshConfig');

export interface MeshConfigIssue {
  severity: 'error' | 'warning';
  code: string;
  /** JSON path inside MeshConfig. */
  path: PathSegment[];
  /** 1-based line inside the embedded YAML. */
  line: number;
  message: string;
}

export interface ParsedMeshConfig {
  config: MeshConfig;
  issues: MeshConfigIssue[];
}

/** Parse and check the YAML text of `data.mesh`. With errors, `config` is the default. */
export function parseMeshConfig(text: string): ParsedMeshConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, strict: true });
  const issues: MeshConfigIssue[] = [];
  if (doc.errors.length > 0) {
    for (const e of doc.errors) issues.push({ severity: 'error', code: 'syntax', path: [], line: lc.linePos(e.pos[0]).line, message: e.message.split('\n')[0] ?? e.message });
    return { config: DEFAULT_MESH_CONFIG, issues };
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  const lineOf = (path: readonly PathSegment[]): number => lc.linePos(nodeOffset(doc.contents, path)).line;
  for (const i of checkSchema(value, MESH_SCHEMA)) issues.push({ severity: 'error', code: i.code, path: i.path, line: lineOf(i.path), message: i.message });
  if (issues.length > 0 || !isPlainObject(value)) {
    if (!isPlainObject(value)) issues.push({ severity: 'error', code: 'wrong-type', path: [], line: 1, message: 'MeshConfig must be a map (key: value)' });
    return { config: DEFAULT_MESH_CONFIG, issues };
  }
  for (const k of Object.keys(value)) {
    if (ACCEPTED.includes(k)) issues.push({ severity: 'warning', code: 'ignored-field', path: [k], line: lineOf([k]), message: `Ambit does not apply MeshConfig "${k}"; it applies ${Object.keys(APPLIED).join(', ')}` });
  }
  const v = value as { pathNormalization?: { normalization?: PathNormalization }; outboundTrafficPolicy?: { mode?: OutboundPolicyMode } };
  const config: MeshConfig = Object.freeze({
    pathNormalization: v.pathNormalization?.normalization ?? DEFAULT_MESH_CONFIG.pathNormalization,
    outboundTrafficPolicy: v.outboundTrafficPolicy?.mode ?? DEFAULT_MESH_CONFIG.outboundTrafficPolicy,
  });
  if (config.pathNormalization === 'NONE' || config.pathNormalization === 'BASE') {
    issues.push({
      severity: 'warning', code: 'weak-normalization', path: ['pathNormalization', 'normalization'], line: lineOf(['pathNormalization', 'normalization']),
      message: `${config.pathNormalization} leaves ${config.pathNormalization === 'NONE' ? '"/./admin", "/%61dmin" and ' : ''}"//admin" past an AuthorizationPolicy on "/admin"; Ambit's default is MERGE_SLASHES`,
    });
  }
  return { config, issues };
}

/** The mesh config of a set of ConfigMaps: the `istio` one in the root namespace, if valid. */
export function meshConfigOf(configMaps: readonly { metadata: { name: string; namespace?: string }; data?: Record<string, string> }[], rootNamespace: string): MeshConfig {
  const cm = configMaps.find((c) => c.metadata.name === MESH_CONFIGMAP_NAME && (c.metadata.namespace ?? 'default') === rootNamespace);
  const text = cm?.data?.[MESH_CONFIGMAP_KEY];
  if (text === undefined) return DEFAULT_MESH_CONFIG;
  const parsed = parseMeshConfig(text);
  return parsed.issues.some((i) => i.severity === 'error') ? DEFAULT_MESH_CONFIG : parsed.config;
}

function nodeOffset(root: unknown, path: readonly PathSegment[]): number {
  let node = root as YamlNode | null | undefined;
  let pos = node?.range?.[0] ?? 0;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === String(seg));
      if (!pair) break;
      pos = (pair.key as YamlNode).range?.[0] ?? pos;
      node = pair.value as YamlNode | null;
      if (node?.range) pos = node.range[0];
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg] as YamlNode | null;
      if (node?.range) pos = node.range[0];
    } else break;
  }
  return pos;
}
