// Whether a Gateway API regular expression compiles as RE2 (what the proxies run), for validation.
import { regexProblem } from './re2.js';
export function fullRegexProblem(source: string): string | undefined {
  const problem = regexProblem(source);
  return problem === undefined ? undefined : `"${source}" is not an RE2 regular expression: ${problem}`;
}
