#!/usr/bin/env node
// Checks that src/xds/gen/ is what `npm run proto` (buf generate, buf.gen.yaml) makes from
// proto/ now: generates into a temporary directory and compares file by file. Run by the lint
// tier; buf and protoc-gen-es come from node_modules (npm packages), so it works offline.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = resolve(new URL('..', import.meta.url).pathname);
const committed = join(root, 'src', 'xds', 'gen');
const out = mkdtempSync(join(tmpdir(), 'ambit-proto-'));
const bin = join(root, 'node_modules', '.bin');

function files(dir) {
  const list = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else list.push(relative(dir, p));
    }
  };
  walk(dir);
  return list.sort();
}

try {
  // The same template with another output directory.
  const template = readFileSync(join(root, 'buf.gen.yaml'), 'utf8').replace(/out: src\/xds\/gen/, `out: ${join(out, 'gen')}`);
  const templateFile = join(out, 'buf.gen.yaml');
  writeFileSync(templateFile, template);
  const r = spawnSync(join(bin, 'buf'), ['generate', '--template', templateFile], {
    cwd: root, encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
  });
  if (r.status !== 0) {
    console.error(`proto check: buf generate failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stderr}`);
    process.exit(1);
  }
  const want = files(join(out, 'gen'));
  const have = files(committed);
  const problems = [];
  for (const f of new Set([...want, ...have])) {
    if (!want.includes(f)) problems.push(`${f}: not generated from proto/ any more (delete it)`);
    else if (!have.includes(f)) problems.push(`${f}: missing`);
    else if (readFileSync(join(out, 'gen', f), 'utf8') !== readFileSync(join(committed, f), 'utf8')) problems.push(`${f}: differs`);
  }
  if (problems.length > 0) {
    console.error(`proto check: src/xds/gen/ is not what proto/ generates:\n  ${problems.join('\n  ')}\n  run: npm run proto`);
    process.exit(1);
  }
  console.log(`proto check: ok (${have.length} generated files current)`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
