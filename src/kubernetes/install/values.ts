// The settings of `ambit install`: defaults, a values file (YAML) and `--set a.b=c`, checked
// with the config room's schema checker (unknown keys get "did you mean").
import { parse as parseYaml } from 'yaml';
import { AmbitError } from '../../core/errors.js';
import { formatPath } from '../../config/diagnostics.js';
import { checkSchema, int, isPlainObject, obj, str, bool, any, type Schema } from '../../config/schema.js';

export interface InstallValues {
  /** The install (and root) namespace. */
  namespace: string;
  trustDomain: string;
  image: { repository: string; tag: string; pullPolicy: 'Always' | 'IfNotPresent' | 'Never' };
  controlPlane: { replicas: number; certTtlSeconds: number; resources: Record<string, unknown>; waypoints: boolean };
  ztunnel: { resources: Record<string, unknown> };
  nodeAgent: { resources: Record<string, unknown> };
  cni: { binDir: string; confDir: string };
}

export const DEFAULT_VALUES: InstallValues = {
  namespace: 'istio-system',
  trustDomain: 'cluster.local',
  image: { repository: 'ambit', tag: '0.1.0', pullPolicy: 'IfNotPresent' },
  controlPlane: {
    replicas: 1, certTtlSeconds: 86400, waypoints: true,
    resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { memory: '2Gi' } },
  },
  ztunnel: { resources: { requests: { cpu: '200m', memory: '256Mi' }, limits: { memory: '1Gi' } } },
  nodeAgent: { resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } } },
  cni: { binDir: '/opt/cni/bin', confDir: '/etc/cni/net.d' },
};

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const resources = any;

export const VALUES_SCHEMA: Schema = obj({
  namespace: str({ pattern: DNS_LABEL, patternHint: 'a namespace name' }),
  trustDomain: str({ nonEmpty: true }),
  image: obj({ repository: str({ nonEmpty: true }), tag: str({ nonEmpty: true }), pullPolicy: str({ enum: ['Always', 'IfNotPresent', 'Never'] }) }),
  controlPlane: obj({ replicas: int(1, 10), certTtlSeconds: int(600, 30 * 86400), resources, waypoints: bool }),
  ztunnel: obj({ resources }),
  nodeAgent: obj({ resources }),
  cni: obj({ binDir: str({ pattern: /^\//, patternHint: 'an absolute path' }), confDir: str({ pattern: /^\//, patternHint: 'an absolute path' }) }),
});

function merge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base && k !== 'resources' ? merge(base[k], v) : v;
  return out;
}

/** `a.b.c=value`: true/false become booleans, whole numbers numbers, the rest strings. */
export function parseSet(expr: string): Record<string, unknown> {
  const i = expr.indexOf('=');
  if (i <= 0) throw new AmbitError('AMBIT_ERR_USAGE', `--set "${expr}" is not key=value`, { hint: 'e.g. --set image.tag=0.2.0' });
  const path = expr.slice(0, i).split('.');
  const raw = expr.slice(i + 1);
  const value: unknown = raw === 'true' ? true : raw === 'false' ? false : /^-?\d+$/.test(raw) ? Number(raw) : raw;
  return path.reduceRight<Record<string, unknown>>((acc, key, j) => (j === path.length - 1 ? { [key]: value } : { [key]: acc }), {});
}

/** Defaults, then the values file's text, then each --set, checked as a whole. */
export function resolveValues(fileText?: string, sets: readonly string[] = [], fileName = 'values'): InstallValues {
  let v: unknown = DEFAULT_VALUES;
  if (fileText !== undefined) {
    let parsed: unknown;
    try {
      parsed = parseYaml(fileText) ?? {};
    } catch (e: unknown) {
      throw new AmbitError('AMBIT_ERR_CONFIG_INVALID', `${fileName}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    }
    v = merge(v, parsed);
  }
  for (const s of sets) v = merge(v, parseSet(s));
  const issues = checkSchema(v, VALUES_SCHEMA);
  if (issues.length) {
    throw new AmbitError('AMBIT_ERR_CONFIG_INVALID', issues.map((x) => `${fileName}: ${formatPath(x.path)}: ${x.message}`).join('\n'), { hint: 'see `ambit install --help` for the settings' });
  }
  return v as InstallValues;
}
