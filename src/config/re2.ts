// Regular expressions from config (HTTPRoute and VirtualService matches and rewrites) run
// with RE2's semantics and in linear time, as Envoy's safe_regex does: a path or header value
// a client sends can never make a waypoint backtrack. re2js is RE2 in plain JavaScript.
// Validation uses the same compiler, so a pattern that validates is one the proxy can run;
// what RE2 refuses (backreferences, lookaround, possessive quantifiers) is a config error.
import { RE2JS } from 're2js';

/** A whole-value matcher (Envoy/RE2: the entire value must match). */
export interface FullRegex {
  test(value: string): boolean;
}

export function compileFullRegex(source: string, options: { ignoreCase?: boolean } = {}): FullRegex {
  const re = RE2JS.compile(source, options.ignoreCase ? RE2JS.CASE_INSENSITIVE : 0);
  return { test: (value) => re.matches(value) };
}

/**
 * Replaces every match of `pattern` in a value (VirtualService uriRegexRewrite). The
 * replacement refers to groups as Envoy writes them, `\1`.
 */
export function compileRegexRewrite(pattern: string, replacement: string): (value: string) => string {
  const re = RE2JS.compile(pattern);
  // re2js refers to groups as `$1` and writes a literal `$` as `$$`.
  const re2Replacement = replacement.replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1');
  return (value) => re.matcher(value).replaceAll(re2Replacement);
}

/** Why `source` is not an RE2 pattern, or undefined when it is one. */
export function regexProblem(source: string): string | undefined {
  try {
    RE2JS.compile(source);
    return undefined;
  } catch (e: unknown) {
    return e instanceof Error ? e.message : String(e);
  }
}
