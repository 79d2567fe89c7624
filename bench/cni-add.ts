// How long a runtime waits for Ambit's CNI plugin: CNI ADD p50/p99 over N pods (default 100),
// as a kubelet would see it, with a real node agent, control plane and a ZDS peer (the
// ztunnel's own ZDS client, acking as a ztunnel does):
//   ambit-cni ADD, enrolled pod       (rules, held listeners, ZDS add + Ack)
//   ambit-cni ADD, pod outside mesh   (passthrough)
//   the whole chain: ptp + static IPAM, then ambit-cni, run in the node's namespace
// and, as the baseline that decided the plugin is C: `node -e 0` (the start-up a Node.js
// plugin would pay on every call).
//
//   node dist/bench/cni-add.js [--pods 100]        (root: network namespaces)
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../src/core/clock.js';
import { Logger } from '../src/core/logger.js';
import { CniRuntime, parseConfList } from '../src/cni/runtime.js';
import { ambitCniDir, SYSTEM_CNI_DIR } from '../src/cluster/pod-cni.js';
import { ZdsClient } from '../src/ztunnel/zds-client.js';
import { createTestNetwork } from '../test/helpers/netns.js';
import { startAgentHarness } from '../test/helpers/node-agent.js';

const args = process.argv.slice(2);
const pods = Number(args[args.indexOf('--pods') + 1] ?? 100) || 100;

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(1);
  return `p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${s[s.length - 1]!.toFixed(1)} ms (n=${s.length})`;
}

const mesh = ['apiVersion: v1\nkind: Namespace\nmetadata: {name: demo, labels: {istio.io/dataplane-mode: ambient}}', 'apiVersion: v1\nkind: Namespace\nmetadata: {name: legacy}'];
for (let i = 0; i < pods; i++) {
  for (const ns of ['demo', 'legacy']) {
    mesh.push(`apiVersion: v1\nkind: Pod\nmetadata: {name: p${i}, namespace: ${ns}}\nspec: {nodeName: node-1, containers: [{name: c, image: x, command: [sleep, infinity]}]}`);
  }
}

const net = await createTestNetwork('cnib', { namespaces: ['node', ...Array.from({ length: pods }, (_, i) => `p${i}`)] });
const h = await startAgentHarness(mesh.join('\n---\n'), 'cnib', `/var/run/netns/${net.ns('node')}`);
const zds = new ZdsClient({ path: h.zdsSocket, clock: systemClock, logger: new Logger({ component: 'bench', level: 'error' }), onChange: () => undefined, ready: () => ({ ready: true }) });
try {
  zds.start();
  const plugin = join(ambitCniDir(), 'ambit-cni');
  const prev = JSON.stringify({ cniVersion: '1.0.0', interfaces: [], ips: [] });
  // Async: the ZDS peer runs in this process and must answer while the plugin waits.
  const run = async (command: string, i: number, ns: string): Promise<number> => {
    const env = {
      CNI_COMMAND: command, CNI_CONTAINERID: `bench-${ns}-${i}`, CNI_NETNS: `/var/run/netns/${net.ns(`p${i}`)}`, CNI_IFNAME: 'eth0',
      CNI_PATH: `${SYSTEM_CNI_DIR}:${ambitCniDir()}`, CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=p${i}`,
    };
    const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'ambit', type: 'ambit-cni', agent_socket: h.cniSocket, prevResult: JSON.parse(prev) });
    const t0 = process.hrtime.bigint();
    const child = spawn(plugin, [], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stdin.end(stdin);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (code !== 0) throw new Error(`${command} ${ns}/p${i}: ${out}`);
    return ms;
  };
  const each = async (command: string, ns: string): Promise<number[]> => {
    const ms: number[] = [];
    for (let i = 0; i < pods; i++) ms.push(await run(command, i, ns));
    return ms;
  };

  const enrolled = await each('ADD', 'demo');
  await each('DEL', 'demo');
  const outside = await each('ADD', 'legacy');
  await each('DEL', 'legacy');

  const runtime = new CniRuntime({
    confList: parseConfList(readFileSync(h.conflist, 'utf8')), binDirs: [SYSTEM_CNI_DIR, ambitCniDir()],
    cacheDir: join(h.dir, 'cache'), execNetns: `/var/run/netns/${net.ns('node')}`,
  });
  const chain: number[] = [];
  for (let i = 0; i < pods; i++) {
    const rt = {
      containerId: `chain-${i}`, netns: `/var/run/netns/${net.ns(`p${i}`)}`, ifName: 'eth0',
      args: [['IgnoreUnknown', '1'], ['K8S_POD_NAMESPACE', 'demo'], ['K8S_POD_NAME', `p${i}`], ['IP', `10.244.1.${10 + (i % 240)}/24`], ['GATEWAY', '10.244.1.1']] as Array<[string, string]>,
    };
    const t0 = process.hrtime.bigint();
    await runtime.add(rt);
    chain.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await runtime.del(rt);
  }
  const nodeStart = Array.from({ length: 20 }, () => {
    const t0 = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0']);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  });
  console.log(`CNI ADD over ${pods} pods (${new Date().toISOString()}, Node ${process.version}, ${process.arch})`);
  console.log(`  ambit-cni, enrolled pod (rules, listeners, ZDS add+Ack): ${stats(enrolled)}`);
  console.log(`  ambit-cni, pod outside the mesh (passthrough):           ${stats(outside)}`);
  console.log(`  chain ptp + static IPAM + ambit-cni (enrolled):          ${stats(chain)}`);
  console.log(`  baseline: node -e 0 (what a Node.js plugin pays per call): ${stats(nodeStart)}`);
} finally {
  zds.close();
  await h.stop();
  await net.cleanup();
}
