// Istio's string-match forms for authorization values, as the workload API's StringMatch.
//
//   "*"        presence: any non-empty value
//   "*suffix"  suffix
//   "prefix*"  prefix
//   anything   exact
//
// An absent value (undefined) never matches any form; so a not-form of it always holds.

import type { StringMatch } from '../xds/workload-api.js';

export function toStringMatch(value: string): StringMatch {
  if (value === '*') return { presence: {} };
  if (value.startsWith('*')) return { suffix: value.slice(1) };
  if (value.endsWith('*')) return { prefix: value.slice(0, -1) };
  return { exact: value };
}

export function matchString(m: StringMatch, value: string | undefined): boolean {
  if (value === undefined) return false;
  if ('exact' in m) return value === m.exact;
  if ('prefix' in m) return value.startsWith(m.prefix);
  if ('suffix' in m) return value.endsWith(m.suffix);
  return value.length > 0;
}

/** The same match with its text lower-cased (for case-insensitive attributes such as hosts). */
export function lowerStringMatch(m: StringMatch): StringMatch {
  if ('exact' in m) return { exact: m.exact.toLowerCase() };
  if ('prefix' in m) return { prefix: m.prefix.toLowerCase() };
  if ('suffix' in m) return { suffix: m.suffix.toLowerCase() };
  return m;
}

/** The policy text of a match, for messages: `*`, `*suffix`, `prefix*` or the exact value. */
export function formatStringMatch(m: StringMatch): string {
  if ('exact' in m) return m.exact;
  if ('prefix' in m) return `${m.prefix}*`;
  if ('suffix' in m) return `*${m.suffix}`;
  return '*';
}
