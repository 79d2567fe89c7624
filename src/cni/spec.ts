// The CNI specification's facts (version 1.0.0) that both sides of a plugin call need: the
// commands, the environment each one requires, the error codes and error JSON, the network
// configuration's required fields. Pure: no I/O.
//
// Invariants:
//  - A plugin's error is always the spec's error JSON (`cniVersion`, `code`, `msg`,
//    `details`) on stdout with a non-zero exit; codes 1-99 are the spec's well-known ones.
//  - Validation collects nothing silently: the first violation found is returned with the
//    code the spec assigns to it (4 for the environment, 6 for undecodable stdin, 7 for a
//    configuration that decodes but is wrong, 1 for a version this side cannot speak).
export const CNI_SPEC_VERSION = '1.0.0';
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] as const;

export const CniErrorCode = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENVIRONMENT: 4,
  IO_FAILURE: 5,
  DECODING_FAILURE: 6,
  INVALID_NETWORK_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
} as const;

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';
export const CNI_COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION'];

export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

/** The variables a runtime sets (CNI_*), as read from an environment. */
export interface CniEnvironment {
  CNI_COMMAND?: string;
  CNI_CONTAINERID?: string;
  CNI_NETNS?: string;
  CNI_IFNAME?: string;
  CNI_ARGS?: string;
  CNI_PATH?: string;
}

export const CNI_ENV_NAMES = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH'] as const;

/** The network configuration a plugin receives on stdin (the fields every plugin reads). */
export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  prevResult?: Record<string, unknown>;
  runtimeConfig?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface PluginRequest {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifName: string;
  /** CNI_ARGS as ordered pairs (`K=V;K=V`). */
  args: Array<[string, string]>;
  path: string[];
  config: NetConf;
  /** stdin exactly as received (for passthrough). */
  stdin: string;
}

export function cniError(code: number, msg: string, details?: string, cniVersion: string = CNI_SPEC_VERSION): CniErrorJson {
  return details === undefined ? { cniVersion, code, msg } : { cniVersion, code, msg, details };
}

export function versionResult(cniVersion: string = CNI_SPEC_VERSION): { cniVersion: string; supportedVersions: string[] } {
  return { cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] };
}

/** Container IDs: a letter or digit, then letters, digits, `_`, `.`, `-` (the spec's rule). */
const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const MAX_CONTAINER_ID = 1024;

/** An interface name Linux accepts: 1-15 bytes, not `.`/`..`, no `/`, `:` or whitespace. */
export function validIfName(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= 15 && name !== '.' && name !== '..' && !/[/:\s]/.test(name);
}

/** `K=V;K=V` (CNI_ARGS) into ordered pairs; undefined when a part has no `=` or an empty key. */
export function parseCniArgs(text: string): Array<[string, string]> | undefined {
  if (text === '') return [];
  const out: Array<[string, string]> = [];
  for (const part of text.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    out.push([part.slice(0, eq), part.slice(eq + 1)]);
  }
  return out;
}

export function formatCniArgs(args: ReadonlyArray<readonly [string, string]>): string {
  return args.map(([k, v]) => `${k}=${v}`).join(';');
}

/** Which variables each command requires (CNI 1.0 "Parameters"). */
export function requiredEnv(command: CniCommand): Array<(typeof CNI_ENV_NAMES)[number]> {
  switch (command) {
    case 'ADD':
      return ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'];
    case 'CHECK':
      return ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'];
    case 'DEL':
      return ['CNI_CONTAINERID', 'CNI_IFNAME'];
    case 'VERSION':
      return [];
  }
}

function versionParts(v: string): number[] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

export function compareVersions(a: string, b: string): number {
  const x = versionParts(a) ?? [0, 0, 0];
  const y = versionParts(b) ?? [0, 0, 0];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/** Decodes and checks a network configuration (stdin of a plugin). */
export function parseNetConf(stdin: string): { ok: true; value: NetConf } | { ok: false; error: CniErrorJson } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin);
  } catch (e: unknown) {
    return { ok: false, error: cniError(CniErrorCode.DECODING_FAILURE, 'the network configuration on stdin is not JSON', e instanceof Error ? e.message : String(e)) };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, error: cniError(CniErrorCode.DECODING_FAILURE, 'the network configuration on stdin is not a JSON object') };
  }
  const c = parsed as Record<string, unknown>;
  const version = typeof c.cniVersion === 'string' ? c.cniVersion : undefined;
  for (const field of ['cniVersion', 'name', 'type'] as const) {
    if (typeof c[field] !== 'string' || c[field] === '') {
      return { ok: false, error: cniError(CniErrorCode.INVALID_NETWORK_CONFIG, `the network configuration has no "${field}" string`, undefined, version) };
    }
  }
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(version!)) {
    return {
      ok: false,
      error: cniError(CniErrorCode.INCOMPATIBLE_VERSION, `CNI version ${version} is not supported`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`, CNI_SPEC_VERSION),
    };
  }
  if (c.prevResult !== undefined && (typeof c.prevResult !== 'object' || c.prevResult === null || Array.isArray(c.prevResult))) {
    return { ok: false, error: cniError(CniErrorCode.INVALID_NETWORK_CONFIG, '"prevResult" is not a JSON object', undefined, version) };
  }
  if (c.runtimeConfig !== undefined && (typeof c.runtimeConfig !== 'object' || c.runtimeConfig === null || Array.isArray(c.runtimeConfig))) {
    return { ok: false, error: cniError(CniErrorCode.INVALID_NETWORK_CONFIG, '"runtimeConfig" is not a JSON object', undefined, version) };
  }
  return { ok: true, value: c as NetConf };
}

/**
 * A plugin invocation from its environment and stdin: the command, the variables it requires
 * (4 when one is missing or malformed), the configuration (6 / 7 / 1), CNI_ARGS.
 */
export function parsePluginRequest(env: CniEnvironment, stdin: string): { ok: true; value: PluginRequest } | { ok: false; error: CniErrorJson } {
  const command = env.CNI_COMMAND;
  if (command === undefined || command === '') return { ok: false, error: cniError(CniErrorCode.INVALID_ENVIRONMENT, 'CNI_COMMAND is not set') };
  if (!(CNI_COMMANDS as readonly string[]).includes(command)) {
    return { ok: false, error: cniError(CniErrorCode.INVALID_ENVIRONMENT, `CNI_COMMAND ${JSON.stringify(command.slice(0, 32))} is not one of ${CNI_COMMANDS.join(', ')}`) };
  }
  const cmd = command as CniCommand;
  const conf = parseNetConf(stdin);
  const version = conf.ok ? conf.value.cniVersion : CNI_SPEC_VERSION;
  const envError = (msg: string) => ({ ok: false as const, error: cniError(CniErrorCode.INVALID_ENVIRONMENT, msg, undefined, version) });
  for (const name of requiredEnv(cmd)) {
    if (env[name] === undefined || env[name] === '') return envError(`${name} is not set (required for ${cmd})`);
  }
  if (env.CNI_CONTAINERID !== undefined && env.CNI_CONTAINERID !== '' && (!CONTAINER_ID_RE.test(env.CNI_CONTAINERID) || env.CNI_CONTAINERID.length > MAX_CONTAINER_ID)) {
    return envError('CNI_CONTAINERID must start with a letter or digit and hold only letters, digits, "_", "." and "-"');
  }
  if (env.CNI_IFNAME !== undefined && env.CNI_IFNAME !== '' && !validIfName(env.CNI_IFNAME)) {
    return envError(`CNI_IFNAME ${JSON.stringify(env.CNI_IFNAME.slice(0, 32))} is not a valid interface name`);
  }
  if (env.CNI_NETNS !== undefined && env.CNI_NETNS !== '' && !env.CNI_NETNS.startsWith('/')) {
    return envError('CNI_NETNS must be an absolute path to a network namespace');
  }
  const args = parseCniArgs(env.CNI_ARGS ?? '');
  if (!args) return envError('CNI_ARGS must be K=V pairs separated by ";"');
  if (!conf.ok) return conf;
  return {
    ok: true,
    value: {
      command: cmd,
      containerId: env.CNI_CONTAINERID ?? '',
      netns: env.CNI_NETNS ?? '',
      ifName: env.CNI_IFNAME ?? '',
      args,
      path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
      config: conf.value,
      stdin,
    },
  };
}

/** The pod a Kubernetes runtime names in CNI_ARGS (K8S_POD_NAMESPACE, K8S_POD_NAME). */
export function kubernetesPod(args: ReadonlyArray<readonly [string, string]>): { namespace: string; name: string; uid?: string } | undefined {
  const get = (k: string) => args.find(([key]) => key === k)?.[1];
  const namespace = get('K8S_POD_NAMESPACE');
  const name = get('K8S_POD_NAME');
  if (!namespace || !name) return undefined;
  const uid = get('K8S_POD_UID');
  return uid ? { namespace, name, uid } : { namespace, name };
}
