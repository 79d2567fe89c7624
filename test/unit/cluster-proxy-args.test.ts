// The node flags the cluster gives its proxy processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proxyNodeArgs } from '../../src/cluster/daemon.js';

test('proxies get a 32 MB semi-space unless the AMBIT_*_NODE_ARGS hook sets one; hook flags follow', () => {
  assert.deepEqual(proxyNodeArgs(undefined), ['--max-semi-space-size=32']);
  assert.deepEqual(proxyNodeArgs(' --cpu-prof  --cpu-prof-dir=/tmp/p '), ['--max-semi-space-size=32', '--cpu-prof', '--cpu-prof-dir=/tmp/p']);
  assert.deepEqual(proxyNodeArgs('--max-semi-space-size=8'), ['--max-semi-space-size=8']);
});
