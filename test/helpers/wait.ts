// The one way tests wait: for a condition, polled, with a deadline and a message naming what
// was awaited. Tests never sleep to let something happen; they wait for it.
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5_000, intervalMs = 20): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
