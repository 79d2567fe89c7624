#!/usr/bin/env node
// The `ambit` command. The TypeScript sources are compiled to dist/ by `npm run build`
// (the README's commands do it for you).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// Ambit is built and tested on Node.js 24 LTS (package.json `engines`); `bin/ambit` and the npm
// scripts run it on the copy `npm run setup` installs. Another major gets a clear refusal.
const major = Number(process.versions.node.split('.')[0]);
if (major !== 24) {
  process.stderr.write(`ambit: needs Node.js 24 (this is ${process.version} at ${process.execPath}); ` +
    'run `npm run setup`, then use `bin/ambit` or `npm run ...`, which run the project\'s own Node.js 24\n');
  process.exit(2);
}

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('ambit: not built yet; run `npm run setup` (or `npm run build`) in ' +
    fileURLToPath(new URL('..', import.meta.url)) + '\n');
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
