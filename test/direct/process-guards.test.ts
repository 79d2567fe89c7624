// Crash tests: a long-running Ambit process survives what nobody handled. (1) A rejected
// promise nobody awaited and an 'error' event nobody listened to are logged and counted, and
// the process keeps running. (2) A real ztunnel run out of file descriptors by a connection
// flood (libuv sheds what it cannot accept) keeps running and accepts again afterwards.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { yaml } from '../helpers/config.js';
import { waitFor } from '../helpers/wait.js';


const BIN = resolve('bin/ambit.js');
const dir = mkdtempSync(join(tmpdir(), 'ambit-guards-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('an unhandled rejection and an unlistened error event are logged and counted; the process keeps running', async () => {
  const script = `
    const { installProcessGuards, processGuardStats } = await import('${new URL('../../src/core/process-guards.js', import.meta.url).href}');
    const { Logger } = await import('${new URL('../../src/core/logger.js', import.meta.url).href}');
    const { EventEmitter } = await import('node:events');
    installProcessGuards(new Logger({ component: 'crash-test' }));
    void Promise.reject(new Error('nobody awaits me'));
    setTimeout(() => new EventEmitter().emit('error', new Error('nobody listens to me')), 10);
    setTimeout(() => { console.log('alive', JSON.stringify(processGuardStats())); process.exit(0); }, 300);
  `;
  const r = await new Promise<{ code: number | null; out: string; err: string }>((res) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], (e, out, err) => res({ code: e ? (e as { code?: number }).code ?? 1 : 0, out, err }));
  });
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /alive \{"unhandledRejections":1,"uncaughtExceptions":1\}/);
  assert.match(r.err, /unhandled promise rejection.*nobody awaits me/);
  assert.match(r.err, /uncaught exception.*nobody listens to me/);
});

test('a ztunnel run out of file descriptors keeps running, and accepts again once they are free', async () => {
  const mesh = yaml`
    apiVersion: v1
    kind: Namespace
    metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: server, namespace: shop}
    spec: {nodeName: node-1, containers: [{name: c, command: [x]}]}
    status: {podIP: 127.0.77.1}
  `;
  writeFileSync(join(dir, 'mesh.yaml'), mesh);
  const api = await new Promise<string>((res, rej) => execFile(process.execPath, [BIN, 'x', 'workload-api', '-f', join(dir, 'mesh.yaml'), '-o', 'yaml'], (e, out, err) => (e ? rej(new Error(err)) : res(out))));
  writeFileSync(join(dir, 'api.yaml'), api);
  await new Promise<void>((res, rej) => execFile(process.execPath, [BIN, 'ca', 'init', '--out', join(dir, 'ca')], (e, _o, err) => (e ? rej(new Error(err)) : res())));
  // 64 descriptors: Node itself takes a few dozen; the flood takes the rest.
  const z = spawn('prlimit', ['--nofile=64:64', process.execPath, BIN, 'ztunnel', '--node', 'node-1', '--config', join(dir, 'api.yaml'), '--ca', join(dir, 'ca'),
    '--admin', '127.0.77.9:15000', '--metrics', '127.0.77.9:15020', '--readiness', '127.0.77.9:15021'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(z);
  let log = '';
  z.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
  let exited = false;
  z.once('exit', () => { exited = true; });
  await waitFor('the ztunnel serves the pod', () => /serving workload/.test(log), 20_000);
  const flood: net.Socket[] = [];
  for (let i = 0; i < 120; i++) {
    const s = net.connect(15008, '127.0.77.1');
    s.on('error', () => {});
    flood.push(s);
  }
  // Every descriptor the ztunnel may open is taken; the rest of the flood is shed.
  await new Promise((r) => setTimeout(r, 1500));
  const fds = Number((await new Promise<string>((res) => execFile('sh', ['-c', `ls /proc/${z.pid}/fd | wc -l`], (_e, o) => res(o)))).trim());
  assert.ok(fds >= 55, `the ztunnel holds ${fds} descriptors of 64`);
  for (const s of flood) s.destroy();
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(exited, false, `the ztunnel exited:\n${log.slice(-2000)}`);
  // It accepts again: a TCP connection to 15008 gets through (and TLS starts on it).
  const ok = await new Promise<boolean>((res) => {
    const s = net.connect(15008, '127.0.77.1', () => { s.destroy(); res(true); });
    s.on('error', () => res(false));
  });
  assert.equal(ok, true);
  assert.equal(exited, false);
});
