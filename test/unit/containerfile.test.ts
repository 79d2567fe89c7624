// The Containerfile builds with the same commands as `npm run setup` (no container engine runs
// here, so this is what keeps the image build honest): each build step names a command that
// scripts/setup.sh runs too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../../..', import.meta.url).pathname;
const containerfile = readFileSync(join(root, 'Containerfile'), 'utf8');
const setup = readFileSync(join(root, 'scripts/setup.sh'), 'utf8');

test('the image build runs the commands setup.sh runs', () => {
  for (const cmd of [
    'npm ci --no-audit --no-fund --loglevel=error',
    'node_modules/.bin/node',
    'node-gyp/bin/node-gyp.js" rebuild --loglevel=error --nodedir="$NODE_HOME"',
    'node_modules/typescript/bin/tsc -p tsconfig.json',
  ]) {
    assert.ok(containerfile.includes(cmd), `Containerfile lacks: ${cmd}`);
    assert.ok(setup.includes(cmd), `setup.sh lacks: ${cmd}`);
  }
});

test('the image runs as a non-root user, with the files the components need', () => {
  assert.match(containerfile, /^USER 1337:1337$/m);
  assert.match(containerfile, /^ENTRYPOINT \["ambit"\]$/m);
  for (const dir of ['node_modules', 'bin', 'proto', 'native/build', 'dist/src']) assert.ok(containerfile.includes(`COPY --from=build /opt/ambit/${dir}`), dir);
});
