// A control plane and one node agent as real processes, for tests (and benchmarks) of the CNI
// path without a whole cluster: `ambit control-plane` serves the pods of a YAML config (the
// agent's "API server"), `ambit node-agent` serves node-1's CNI socket and ZDS. Ports are
// per test process; every file lives in one temp dir; stop() ends both processes (by PID).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCommand, type RunResult } from '../../src/sys/exec.js';
import { agentGet } from '../../src/nodeagent/control-api.js';
import { ambitCniDir, baseConfList } from '../../src/cluster/pod-cni.js';
import { waitFor } from './wait.js';


const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
const BIN = join(ROOT, 'bin', 'ambit.js');

export interface AgentHarness {
  dir: string;
  adminUrl: string;
  adminToken: string;
  conflist: string;
  cniSocket: string;
  zdsSocket: string;
  controlSocket: string;
  agent: ChildProcess;
  /** What the agent logged (it logs one JSON line per event). */
  agentLog(): string;
  /** Runs native/build/ambit-cni as a runtime would; exit code and what it printed. */
  plugin(env: Record<string, string | undefined>, stdin: string): Promise<RunResult>;
  /** Starts the agent again (after stopAgent or a kill). */
  startAgent(): Promise<void>;
  stopAgent(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

let counter = 0;

/** `nodeNetns`: the node namespace whose veths lead to the pods (scopes the agent's discovery). */
export async function startAgentHarness(yaml: string, name: string, nodeNetns: string): Promise<AgentHarness> {
  const dir = mkdtempSync(join(tmpdir(), `ambit-${name}-`));
  const base = 21000 + ((process.pid * 13 + counter++ * 97) % 11000);
  const adminUrl = `http://127.0.0.1:${base + 1}`;
  mkdirSync(join(dir, 'config'));
  writeFileSync(join(dir, 'config', 'mesh.yaml'), yaml);
  writeFileSync(join(dir, 'tokens.json'), JSON.stringify({ 'node-1': 'token-1' }));
  const ca = spawnSync(process.execPath, [BIN, 'ca', 'init', '--out', join(dir, 'ca')], { encoding: 'utf8' });
  if (ca.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`ambit ca init failed: ${ca.stderr}`);
  }
  const cp = spawn(process.execPath, [BIN, 'control-plane', '--ca', join(dir, 'ca'), '--node-tokens', join(dir, 'tokens.json'), '--nodes', '1',
    '--xds', `127.0.0.1:${base}`, '--admin', `127.0.0.1:${base + 1}`, '--admin-token-file', join(dir, 'admin-token'), '-f', join(dir, 'config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let cpErr = '';
  cp.stderr?.on('data', (d: Buffer) => { cpErr += d.toString(); });
  try {
    await waitFor('control plane ready', async () => (await fetch(`${adminUrl}/ready`).then((r) => r.ok, () => false)), 30_000);
  } catch (e: unknown) {
    cp.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${e instanceof Error ? e.message : String(e)}: ${cpErr.slice(-500)}`);
  }
  const adminToken = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  const conflist = join(dir, 'net.d', '10-ambit.conflist');
  mkdirSync(join(dir, 'net.d'));
  writeFileSync(conflist, JSON.stringify(baseConfList(), null, 2));
  const agentDir = join(dir, 'agent');
  const h: AgentHarness = {
    dir, adminUrl, adminToken, conflist,
    cniSocket: join(agentDir, 'cni.sock'), zdsSocket: join(agentDir, 'ztunnel.sock'), controlSocket: join(agentDir, 'agent.sock'),
    agent: undefined as unknown as ChildProcess,
    agentLog: () => readFileSync(join(dir, 'agent.log'), 'utf8'),
    plugin: (env, stdin) => runCommand(join(ambitCniDir(), 'ambit-cni'), [], {
      env: Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>, input: stdin, okExitCodes: [0, 1], timeoutMs: 70_000,
    }),
    async startAgent() {
      const log = openSync(join(dir, 'agent.log'), 'a');
      h.agent = spawn(process.execPath, [BIN, 'node-agent', '--node', 'node-1', '--dir', agentDir, '--control-plane', adminUrl,
        '--admin-token-file', join(dir, 'admin-token'), '--cni-conf', conflist, '--node-netns', nodeNetns], { stdio: ['ignore', log, log] });
      closeSync(log);
      await waitFor('node agent up', () => agentGet(h.controlSocket, '/healthz').then(() => true, () => false), 20_000);
    },
    async stopAgent(signal = 'SIGTERM') {
      const a = h.agent;
      if (!a || a.exitCode !== null || a.signalCode !== null) return;
      const gone = new Promise((r) => a.once('exit', r));
      a.kill(signal);
      await gone;
    },
    async stop() {
      await h.stopAgent('SIGKILL');
      const gone = new Promise((r) => cp.once('exit', r));
      if (cp.exitCode === null && cp.signalCode === null) cp.kill('SIGKILL');
      await gone;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await h.startAgent();
  return h;
}
