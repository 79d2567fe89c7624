#!/usr/bin/env node
// Checks that src/xds/gen/ is what `npm run proto` (scripts/proto-gen.mjs) makes from proto/
// now: generates into a temporary directory and compares file by file. Run by the lint tier;
// buf and protoc-gen-es come from node_modules (npm packages), so it works offline.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GEN_DIR, generate, listFiles } from './proto-gen.mjs';

const out = mkdtempSync(join(tmpdir(), 'ambit-proto-check-'));
try {
  try {
    generate(out);
  } catch (e) {
    console.error(`proto check: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
  const want = listFiles(out);
  const have = listFiles(GEN_DIR);
  const problems = [];
  for (const f of new Set([...want, ...have])) {
    if (!want.includes(f)) problems.push(`${f}: not generated from proto/ any more (delete it)`);
    else if (!have.includes(f)) problems.push(`${f}: missing`);
    else if (readFileSync(join(out, f), 'utf8') !== readFileSync(join(GEN_DIR, f), 'utf8')) problems.push(`${f}: differs`);
  }
  if (problems.length > 0) {
    console.error(`proto check: src/xds/gen/ is not what proto/ generates:\n  ${problems.join('\n  ')}\n  run: npm run proto`);
    process.exit(1);
  }
  console.log(`proto check: ok (${have.length} generated files current)`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
