#!/usr/bin/env node
// The `ambit` command. The TypeScript sources are compiled to dist/ by `npm run build`
// (the README's commands do it for you).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('ambit: not built yet; run `npm run setup` (or `npm run build`) in ' +
    fileURLToPath(new URL('..', import.meta.url)) + '\n');
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
