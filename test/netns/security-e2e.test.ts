// Hostile workloads against the local cluster, end to end: each attack is refused with the
// documented answer, the ztunnel stays up with the same PID, other pods' traffic keeps flowing
// during the attack (a concurrent client counts its answers), and metrics count the refusals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster, eventually, type TestCluster } from '../helpers/cluster.js';
import { yaml } from '../helpers/config.js';

const mesh = yaml`
  apiVersion: v1
  kind: Namespace
  metadata: {name: demo, labels: {istio.io/dataplane-mode: ambient}}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: attacker, namespace: demo, labels: {app: attacker}}
  spec: {nodeName: node-1, serviceAccountName: attacker, containers: [{name: main, command: [sleep, infinity]}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: client, namespace: demo, labels: {app: client}}
  spec: {nodeName: node-1, serviceAccountName: client, containers: [{name: main, command: [sleep, infinity]}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: echo, namespace: demo, labels: {app: echo}}
  spec: {nodeName: node-2, serviceAccountName: echo, containers: [{name: echo, command: [ambit, app, echo, --port, "8080"]}]}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: echo, namespace: demo}
  spec: {selector: {app: echo}, ports: [{name: http, port: 80, targetPort: 8080}]}
`;

let c: TestCluster;

before(async () => {
  c = startCluster(mesh, { name: 'sec' });
  await eventually(() => c.exec('demo/client', ['curl', '-sS', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', 'http://echo/']).stdout === '200', 30_000, 'first request through the mesh');
});

after(() => {
  c?.down();
});

interface Status { components: { name: string; pid?: number; restarts: number }[] }
const status = (): Status => JSON.parse(c.ambit(['status', '-o', 'json']).stdout).status as Status;
const ztunnel1 = (): { pid?: number; restarts: number } => status().components.find((x) => x.name === 'ztunnel-node-1')!;

/**
 * Runs `python3 http-load` style steady traffic from demo/client for `seconds`, while `attack`
 * runs; resolves with the client's answer codes.
 */
async function whileServing<T>(seconds: number, attack: () => Promise<T>): Promise<{ codes: Record<string, number>; attack: T }> {
  const script = `import sys, time, urllib.request
codes = {}
end = time.time() + ${seconds}
while time.time() < end:
    try:
        with urllib.request.urlopen('http://echo/', timeout=3) as r:
            k = str(r.status); r.read()
    except Exception as e:
        k = type(e).__name__
    codes[k] = codes.get(k, 0) + 1
    time.sleep(0.02)
print(__import__('json').dumps(codes))`;
  const child = spawn('ip', ['netns', 'exec', c.netns('demo/client'), 'python3', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const a = await attack();
  await done;
  return { codes: JSON.parse(out) as Record<string, number>, attack: a };
}

async function metric(host: string, re: RegExp): Promise<number> {
  const text = await (await fetch(`http://${host}:15020/metrics`)).text();
  const m = re.exec(text);
  return m ? Number(m[1]) : 0;
}

test('a pod connecting to its own capture port (127.0.0.1:15001) is refused at once; the ztunnel stays up; other pods keep their traffic', async () => {
  const before = ztunnel1();
  const r = await whileServing(6, async () => {
    const attempts: { code: number; ms: number }[] = [];
    for (let round = 0; round < 4; round++) {
      const t0 = Date.now();
      // 50 parallel attempts per round, each a direct connection to the capture listener.
      const res = c.exec('demo/attacker', ['sh', '-c', 'for i in $(seq 50); do curl -sS -m5 -o /dev/null http://127.0.0.1:15001/ 2>/dev/null & done; wait; curl -sS -m5 -o /dev/null http://127.0.0.1:15001/; echo $?'], 30_000);
      attempts.push({ code: Number(res.stdout.trim()), ms: Date.now() - t0 });
      for (const target of ['127.0.0.1:15006', '127.0.0.1:15008', 'localhost:15001']) c.exec('demo/attacker', ['curl', '-sS', '-m3', '-o', '/dev/null', `http://${target}/`]);
    }
    return attempts;
  });
  for (const a of r.attack) {
    assert.notEqual(a.code, 0, 'the self-call must not succeed');
    assert.notEqual(a.code, 28, 'the self-call must be refused, not left to time out');
    assert.ok(a.ms < 5_000, `a round of refusals took ${a.ms} ms`);
  }
  assert.deepEqual(Object.keys(r.codes), ['200'], `the concurrent client's answers: ${JSON.stringify(r.codes)}`);
  assert.ok(r.codes['200']! > 50, JSON.stringify(r.codes));
  const after = ztunnel1();
  assert.equal(after.pid, before.pid, 'the ztunnel was not restarted');
  assert.equal(after.restarts, before.restarts);
  assert.ok(await metric(c.ztunnelHost(1), /ambit_self_calls_refused_total\{direction="outbound"\} (\d+)/) >= 204);
  assert.ok(await metric(c.ztunnelHost(1), /ambit_self_calls_refused_total\{direction="inbound"\} (\d+)/) >= 4);
  // Logged once per workload and interval, not once per connection.
  const log = readFileSync(join(c.stateDir, 'logs', 'ztunnel-node-1.log'), 'utf8');
  const lines = log.split('\n').filter((l) => l.includes('refused a self-call'));
  assert.ok(lines.length >= 1 && lines.length <= 6, `${lines.length} log lines about self-calls`);
});
