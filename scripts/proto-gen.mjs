#!/usr/bin/env node
// `npm run proto`: TypeScript for every .proto under proto/ into src/xds/gen/ — buf generate
// (buf.gen.yaml, protoc-gen-es; both npm packages, so it runs offline), then the generated
// imports of `@bufbuild/protobuf/wkt` are pointed at src/xds/protobuf-runtime.ts, which loads
// only the well-known types our files use (see that file for why).
// `node scripts/proto-gen.mjs DIR` generates into DIR instead (scripts/check-proto.mjs does).
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const GEN_DIR = join(root, 'src', 'xds', 'gen');
const RUNTIME = join(root, 'src', 'xds', 'protobuf-runtime.js');

export function listFiles(dir) {
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

/** Generates into outDir (as if it were src/xds/gen: the rewritten imports are relative to that). */
export function generate(outDir) {
  const bin = join(root, 'node_modules', '.bin');
  const work = mkdtempSync(join(tmpdir(), 'ambit-proto-'));
  try {
    const template = readFileSync(join(root, 'buf.gen.yaml'), 'utf8').replace(/out: src\/xds\/gen/, `out: ${outDir}`);
    writeFileSync(join(work, 'buf.gen.yaml'), template);
    const r = spawnSync(join(bin, 'buf'), ['generate', '--template', join(work, 'buf.gen.yaml')], {
      cwd: root, encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
    });
    if (r.status !== 0) throw new Error(`buf generate failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stderr}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  for (const f of listFiles(outDir)) {
    const p = join(outDir, f);
    let rel = relative(dirname(join(GEN_DIR, f)), RUNTIME);
    if (!rel.startsWith('.')) rel = `./${rel}`;
    writeFileSync(p, readFileSync(p, 'utf8').replaceAll('from "@bufbuild/protobuf/wkt";', `from "${rel}";`));
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ? resolve(process.argv[2]) : GEN_DIR;
  generate(out);
  console.log(`proto: generated ${listFiles(out).length} files into ${relative(root, out) || '.'}`);
}
