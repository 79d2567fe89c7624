// A small structural schema language for Kubernetes-style resources, and its checker.
// The checker reports every problem it finds (it never stops at the first), each with the
// JSON path, so that the user can fix a file in one pass. Semantic checks (CIDRs, ports,
// references) live in validate-*.ts; this file knows only shapes.
import type { PathSegment } from './diagnostics.js';

export type Schema =
  | { t: 'string'; enum?: readonly string[]; pattern?: RegExp; patternHint?: string; nonEmpty?: boolean }
  | { t: 'int'; min?: number; max?: number }
  | { t: 'bool' }
  | { t: 'intOrString' }
  | { t: 'any' }
  | { t: 'object'; fields: Readonly<Record<string, Schema>>; required?: readonly string[]; what?: string }
  | { t: 'array'; items: Schema; minItems?: number }
  | { t: 'map'; values: Schema; what?: string };

export const str = (o: Omit<Extract<Schema, { t: 'string' }>, 't'> = {}): Schema => ({ t: 'string', ...o });
export const int = (min?: number, max?: number): Schema => ({ t: 'int', min, max });
export const bool: Schema = { t: 'bool' };
export const any: Schema = { t: 'any' };
export const intOrString: Schema = { t: 'intOrString' };
export const arr = (items: Schema, minItems?: number): Schema => ({ t: 'array', items, minItems });
export const map = (values: Schema, what?: string): Schema => ({ t: 'map', values, what });
export const obj = (fields: Record<string, Schema>, required: readonly string[] = [], what?: string): Schema =>
  ({ t: 'object', fields, required, what });
export const strList = arr(str());
export const labels = map(str(), 'labels');

export interface SchemaIssue {
  path: PathSegment[];
  code: string;
  message: string;
  /** Point at the key rather than the value (unknown fields). */
  atKey?: boolean;
}

export function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  switch (typeof v) {
    case 'string': return `a string (${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)})`;
    case 'number': return `a number (${v})`;
    case 'boolean': return `a boolean (${v})`;
    case 'object': return 'an object';
    default: return typeof v;
  }
}

export function checkSchema(value: unknown, schema: Schema, path: PathSegment[] = [], issues: SchemaIssue[] = []): SchemaIssue[] {
  switch (schema.t) {
    case 'any':
      break;
    case 'string':
      if (typeof value !== 'string') {
        const quoteHint = typeof value === 'number' || typeof value === 'boolean' ? `; quote it: "${String(value)}"` : '';
        issues.push({ path, code: 'wrong-type', message: `expected a string, got ${describeType(value)}${quoteHint}` });
      } else if (schema.enum && !schema.enum.includes(value)) {
        const close = suggest(value, schema.enum);
        issues.push({ path, code: 'bad-value', message: `"${value}" is not one of ${schema.enum.join(', ')}${close ? `; did you mean "${close}"?` : ''}` });
      } else if (schema.nonEmpty && value === '') {
        issues.push({ path, code: 'bad-value', message: 'must not be empty' });
      } else if (schema.pattern && !schema.pattern.test(value)) {
        issues.push({ path, code: 'bad-value', message: `"${value}" is not ${schema.patternHint ?? `of the form ${schema.pattern.source}`}` });
      }
      break;
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        issues.push({ path, code: 'wrong-type', message: `expected a whole number, got ${describeType(value)}` });
      } else if ((schema.min !== undefined && value < schema.min) || (schema.max !== undefined && value > schema.max)) {
        issues.push({ path, code: 'out-of-range', message: `${value} is out of range (${schema.min ?? '-∞'}..${schema.max ?? '∞'})` });
      }
      break;
    case 'bool':
      if (typeof value !== 'boolean') issues.push({ path, code: 'wrong-type', message: `expected true or false, got ${describeType(value)}` });
      break;
    case 'intOrString':
      if (typeof value !== 'string' && !(typeof value === 'number' && Number.isInteger(value))) {
        issues.push({ path, code: 'wrong-type', message: `expected a number or a name, got ${describeType(value)}` });
      }
      break;
    case 'array':
      if (!Array.isArray(value)) {
        issues.push({ path, code: 'wrong-type', message: `expected a list, got ${describeType(value)}` });
        break;
      }
      if (schema.minItems !== undefined && value.length < schema.minItems) {
        issues.push({ path, code: 'too-few', message: `needs at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}` });
      }
      value.forEach((item, i) => checkSchema(item, schema.items, [...path, i], issues));
      break;
    case 'map':
      if (!isPlainObject(value)) {
        issues.push({ path, code: 'wrong-type', message: `expected a map${schema.what ? ` of ${schema.what}` : ''} (key: value), got ${describeType(value)}` });
        break;
      }
      for (const [k, v] of Object.entries(value)) checkSchema(v, schema.values, [...path, k], issues);
      break;
    case 'object': {
      if (!isPlainObject(value)) {
        issues.push({ path, code: 'wrong-type', message: `expected ${schema.what ?? 'an object'}, got ${describeType(value)}` });
        break;
      }
      for (const req of schema.required ?? []) {
        if (value[req] === undefined || value[req] === null) {
          issues.push({ path, code: 'missing-field', message: `missing required field "${req}"` });
        }
      }
      const known = Object.keys(schema.fields);
      for (const [k, v] of Object.entries(value)) {
        const fieldSchema = schema.fields[k];
        if (!fieldSchema) {
          const close = suggest(k, known);
          issues.push({
            path: [...path, k], code: 'unknown-field', atKey: true,
            message: `unknown field "${k}"${close ? `; did you mean "${close}"?` : `; known fields: ${known.join(', ')}`}`,
          });
          continue;
        }
        if (v === null || v === undefined) continue;
        checkSchema(v, fieldSchema, [...path, k], issues);
      }
      break;
    }
  }
  return issues;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The closest candidate within a small edit distance, for "did you mean". */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) { bestD = d; best = c; }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}
