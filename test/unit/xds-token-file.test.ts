// A rotated token file is read again on the next call; a missing one fails at start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tokenFromFile } from '../../src/xds/token-file.js';

test('the token is re-read when the file is replaced (kubelet rotation), not before', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-token-'));
  try {
    const path = join(dir, 'token');
    writeFileSync(path, 'first\n');
    const source = tokenFromFile(path) as () => string;
    assert.equal(source(), 'first');
    writeFileSync(join(dir, 'next'), 'second\n');
    renameSync(join(dir, 'next'), path);
    assert.equal(source(), 'second');
    rmSync(path);
    assert.equal(source(), 'second', 'gone for an instant: the last token is kept');
    assert.throws(() => tokenFromFile(join(dir, 'missing')), /cannot read the token file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
