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
// A long-running process (proxy, control plane, daemon) must survive an error nobody handled:
// it is logged and counted (ambit_unhandled_errors), never the end of every connection.
const { installProcessGuards } = await import(new URL('../dist/src/core/process-guards.js', import.meta.url).href);
const { Logger } = await import(new URL('../dist/src/core/logger.js', import.meta.url).href);
installProcessGuards(new Logger({ component: process.argv[2] ?? 'ambit' }));
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
