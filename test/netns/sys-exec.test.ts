// src/sys/exec.ts (running ip, iptables, `ip netns exec ...`) and the netns test helpers that
// run commands and long-lived processes inside namespaces.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { AmbitError } from '../../src/core/errors.js';
import { formatCommandLine, netnsExec, runCommand } from '../../src/sys/exec.js';
import { createTestNetwork, runInNetns, type TestNetwork } from '../helpers/netns.js';

describe('sys: exec', () => {
  let network: TestNetwork;

  before(async () => {
    network = await createTestNetwork('sysexec', { links: [['one', 'two']] });
  });

  after(async () => {
    await network?.cleanup();
  });

  test('runs a command inside a namespace and returns its output', async () => {
    const [cmd, args] = netnsExec(network.ns('one'), 'ip', ['-o', '-4', 'addr', 'show']);
    const r = await runCommand(cmd, args);
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout, /inet 10\.99\.1\.1\/24/);
    assert.match(r.commandLine, new RegExp(`^ip netns exec ${network.ns('one')} ip -o -4 addr show$`));
    const two = await runInNetns(network.ns('two'), 'ip', ['-o', '-4', 'addr', 'show']);
    assert.match(two.stdout, /inet 10\.99\.1\.2\/24/);
    assert.doesNotMatch(two.stdout, /10\.99\.1\.1\//);
  });

  test('a failing command is an AmbitError carrying the command line and its stderr', async () => {
    const missing = `${network.prefix}-nope`;
    const e = await runCommand('ip', ['netns', 'exec', missing, 'true'], { errorCode: 'AMBIT_ERR_NETNS', hint: 'is the pod running?' }).then(
      () => assert.fail('expected a failure'),
      (x: unknown) => x as AmbitError,
    );
    assert.ok(e instanceof AmbitError);
    assert.equal(e.code, 'AMBIT_ERR_NETNS');
    assert.match(e.message, new RegExp(`^ip netns exec ${missing} true failed \\(exit \\d+\\): .*${missing}`));
    assert.equal(e.hint, 'is the pod running?');
    assert.equal(typeof e.details?.stderr, 'string');
  });

  test('okExitCodes, stdin input, output limit', async () => {
    const grep = await runCommand('grep', ['-c', 'x'], { input: 'a\nb\n', okExitCodes: [0, 1] });
    assert.equal(grep.exitCode, 1);
    assert.equal(grep.stdout.trim(), '0');
    const cat = await runCommand('cat', [], { input: 'hello' });
    assert.equal(cat.stdout, 'hello');
    const big = await runCommand('head', ['-c', '100000', '/dev/zero'], { maxOutputBytes: 1000 });
    assert.equal(big.stdout.length, 1000);
    assert.equal(big.truncated, true);
  });

  test('a command that outlives its timeout is killed: AMBIT_ERR_TIMEOUT', async () => {
    const started = Date.now();
    await assert.rejects(runCommand('sleep', ['30'], { timeoutMs: 200 }), (e: AmbitError) => e.code === 'AMBIT_ERR_TIMEOUT' && /sleep 30 did not finish within 200 ms/.test(e.message));
    assert.ok(Date.now() - started < 5_000);
  });

  test('a command that is not installed: AMBIT_ERR_NOT_FOUND with a hint', async () => {
    await assert.rejects(runCommand('ambit-no-such-command', ['x']), (e: AmbitError) => e.code === 'AMBIT_ERR_NOT_FOUND' && /npm run setup/.test(e.hint ?? ''));
  });

  test('formatCommandLine quotes only what needs quoting', () => {
    assert.equal(formatCommandLine('iptables', ['-t', 'nat', '-A', 'OUTPUT', '!', '-d', '127.0.0.1/32']), "iptables -t nat -A OUTPUT '!' -d 127.0.0.1/32");
    assert.equal(formatCommandLine('sh', ['-c', "echo 'hi' there"]), `sh -c 'echo '\\''hi'\\'' there'`);
  });

  test('a long-running process spawned in a namespace runs there and is stopped by PID', async () => {
    const p = network.spawn('one', 'sh', ['-c', 'readlink /proc/self/ns/net; echo ready; exec sleep 1000']);
    const out = await p.waitForOutput(/ready/);
    const inner = out.split('\n')[0];
    assert.match(inner ?? '', /^net:\[\d+\]$/);
    assert.notEqual(inner, readlinkSync('/proc/self/ns/net'), 'not in our namespace');
    const pids = (await runCommand('ip', ['netns', 'pids', network.ns('one')])).stdout.split(/\s+/).filter(Boolean).map(Number);
    assert.ok(pids.includes(p.pid), `pid ${p.pid} in ${pids.join(',')}`);
    await p.stop();
    const { signal } = await p.exited;
    assert.equal(signal, 'SIGTERM');
  });
});
