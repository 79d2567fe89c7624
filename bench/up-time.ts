// `ambit up` wall time with N pods (default 50, half per node, all enrolled), from the command's
// start until it reports the cluster ready; then `ambit down`. `--ambit PATH` times another
// checkout's bin/ambit.js (e.g. a build from before a change), on the same machine and config.
//
//   node dist/bench/up-time.js [--pods 50] [--rounds 2] [--ambit /path/to/bin/ambit.js]   (root)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1]! : dflt);
const pods = Number(opt('pods', '50'));
const rounds = Number(opt('rounds', '2'));
const ambit = resolve(opt('ambit', join(resolve(new URL('../..', import.meta.url).pathname), 'bin', 'ambit.js')));

const docs = ['apiVersion: v1\nkind: Namespace\nmetadata: {name: load, labels: {istio.io/dataplane-mode: ambient}}'];
for (let i = 0; i < pods; i++) {
  docs.push(`apiVersion: v1\nkind: Pod\nmetadata: {name: p${i}, namespace: load}\nspec: {nodeName: node-${1 + (i % 2)}, containers: [{name: c, image: x, command: [sleep, infinity]}]}`);
}
const times: number[] = [];
for (let r = 0; r < rounds; r++) {
  const config = mkdtempSync(join(tmpdir(), 'ambit-uptime-config-'));
  const state = mkdtempSync(join(tmpdir(), 'ambit-e2e-state-'));
  writeFileSync(join(state, 'owner.pid'), `${process.pid}\n`);
  writeFileSync(join(config, 'mesh.yaml'), docs.join('\n---\n'));
  const env = { ...process.env, AMBIT_STATE_DIR: state };
  const prefix = `ut${process.pid % 10000}${r}`;
  const base = 23000 + ((process.pid + r * 31) % 8000);
  const t0 = Date.now();
  const up = spawnSync(process.execPath, [ambit, 'up', '--nodes', '2', '-f', config, '--prefix', prefix, '--xds', `127.0.0.1:${base}`, '--admin', `127.0.0.1:${base + 1}`,
    '--ztunnel-admin-net', `127.0.${150 + r}`], { env, encoding: 'utf8', timeout: 300_000 });
  const ms = Date.now() - t0;
  spawnSync(process.execPath, [ambit, 'down', '--prefix', prefix], { env, encoding: 'utf8', timeout: 120_000 });
  rmSync(config, { recursive: true, force: true });
  if (up.status !== 0) {
    console.error(`ambit up failed:\n${up.stderr.slice(-2000)}`);
    process.exit(1);
  }
  if (!/ready/.test(up.stderr)) console.error('warning: the cluster did not report ready (degraded?)');
  times.push(ms);
}
console.log(`ambit up, 2 nodes, ${pods} enrolled pods, ${ambit}: ${times.map((t) => `${(t / 1000).toFixed(1)} s`).join(', ')} (${new Date().toISOString()})`);
