// Whether a Gateway API regular expression compiles (as a whole-string match), for validation.
export function fullRegexProblem(source: string): string | undefined {
  try {
    new RegExp(`^(?:${source})$`);
    return undefined;
  } catch (e: unknown) {
    return `"${source}" is not a regular expression: ${e instanceof Error ? e.message : String(e)}`;
  }
}
