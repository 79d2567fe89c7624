// A diagnostic is one thing wrong (error) or suspicious (warning) in the user's config,
// with where it is: file, line, the resource (`Kind ns/name`) and the JSON path inside it.
// The CLI, the control plane's apply API, the file watcher and xDS NACKs all print these,
// so the user reads the same words everywhere.
import { byCodeUnits } from '../core/compare.js';

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  severity: Severity;
  /** Stable, kebab-case: `unknown-field`, `bad-cidr`, `dangling-reference`, ... */
  code: string;
  file: string;
  line: number;
  column?: number;
  /** `Kind ns/name` */
  resource?: string;
  /** JSON path inside the resource, e.g. `spec.rules[0].from[0].source.ipBlocks[1]` */
  path?: string;
  message: string;
}

export type PathSegment = string | number;

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.file}:${d.line}${d.column ? `:${d.column}` : ''}`;
  const what = [d.resource, d.path].filter(Boolean).join(' ');
  return `${where}: ${d.severity} [${d.code}]${what ? ` ${what}:` : ''} ${d.message}`;
}

export function errorsOf(ds: readonly Diagnostic[]): Diagnostic[] {
  return ds.filter((d) => d.severity === 'error');
}

export function warningsOf(ds: readonly Diagnostic[]): Diagnostic[] {
  return ds.filter((d) => d.severity === 'warning');
}

export function sortDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  return [...ds].sort((a, b) => byCodeUnits(a.file, b.file) || a.line - b.line || (a.column ?? 0) - (b.column ?? 0));
}
