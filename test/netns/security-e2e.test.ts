// Hostile workloads against the local cluster, end to end: each attack is refused with the
// documented answer, the ztunnel stays up with the same PID, other pods' traffic keeps flowing
// during the attack (a concurrent client counts its answers), and metrics count the refusals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { yaml } from '../helpers/config.js';
import { waitFor } from '../helpers/wait.js';

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
  kind: Pod
  metadata: {name: snoop, namespace: demo}
  spec:
    nodeName: node-1
    containers: [{name: main, command: [sh, -c, 'echo "uid=$(id -u)"; cat "$STATE/ca/ca-key.pem" && echo READ-CA-KEY; ls -A "$STATE" | wc -l | sed "s/^/entries=/"; cat /proc/self/environ | tr "\\0" "\\n" | grep -c AMBIT_TEST_CANARY | sed "s/^/canary=/"; grep CapEff /proc/self/status; python3 -m http.server 80 --bind 0.0.0.0'], env: [{name: STATE, value: "STATE_DIR"}]}]
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: rootpod, namespace: demo}
  spec:
    nodeName: node-1
    securityContext: {runAsUser: 0}
    containers: [{name: main, command: [sh, -c, 'echo "uid=$(id -u)"; ls -A "$STATE" | wc -l | sed "s/^/entries=/"; iptables -t nat -F 2>/dev/null && echo FLUSHED-CAPTURE; nsenter -t 1 -n true 2>/dev/null && echo ESCAPED; sleep infinity'], env: [{name: STATE, value: "STATE_DIR"}]}]
  ---
  apiVersion: v1
  kind: Namespace
  metadata: {name: outside}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: flooder, namespace: outside}
  spec: {nodeName: node-1, containers: [{name: main, command: [sleep, infinity]}]}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: echo, namespace: demo}
  spec: {selector: {app: echo}, ports: [{name: http, port: 80, targetPort: 8080}]}
`;

let c: TestCluster;

before(async () => {
  // A variable of the process that starts the cluster: pods must not inherit it.
  process.env.AMBIT_TEST_CANARY = 'leaked';
  const stateDirPlaceholder = 'STATE_DIR';
  c = startCluster(mesh, { name: 'sec', patch: (stateDir) => mesh.replaceAll(stateDirPlaceholder, stateDir) });
  delete process.env.AMBIT_TEST_CANARY;
  await waitFor('first request through the mesh', () => c.exec('demo/client', ['curl', '-sS', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', 'http://echo/']).stdout === '200', 30_000);
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
  assert.ok(r.codes['200']! > 20, JSON.stringify(r.codes));
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

/** What the pod's process printed (not the supervisor's lines, which quote its command). */
function podLog(pod: string): string {
  return readFileSync(join(c.stateDir, 'logs', 'pods', `demo_${pod}_main.log`), 'utf8').split('\n').filter((l) => !l.startsWith('--- ambit supervisor')).join('\n');
}

test('pods run as an unprivileged user without capabilities, with the state directory hidden and none of the daemon\'s environment', async () => {
  await waitFor('the snoop pod ran its probes', () => /CapEff/.test(podLog('snoop')), 20_000);
  const log = podLog('snoop');
  assert.match(log, /uid=65534/);
  assert.doesNotMatch(log, /READ-CA-KEY|BEGIN/, 'the CA key stays unreadable');
  assert.match(log, /entries=0/, 'the state directory is an empty mount in the pod');
  assert.match(log, /canary=0/, 'no variable of the daemon reaches the pod');
  assert.match(log, /CapEff:\s+0000000000000000/);
  // It can still serve on port 80 (a pod's network namespace lets any user bind low ports).
  await waitFor('the unprivileged server answers on port 80', () => c.exec('demo/client', ['curl', '-sS', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', `http://${podIp('snoop')}:80/`]).stdout === '200', 20_000);
  // `ambit exec` runs as the pod's user too.
  const e = c.ambit(['exec', 'demo/snoop', '--', 'sh', '-c', `id -u; cat ${c.stateDir}/admin-token 2>&1; ls -A ${c.stateDir} | wc -l`]);
  assert.deepEqual(e.stdout.trim().split('\n').map((l) => l.trim()).filter((l) => !l.includes('Permission denied') && !l.includes('No such file')), ['65534', '0'], e.stdout + e.stderr);
});

test('a pod that asks for uid 0 is root without the powers to leave its sandbox: no state directory, no iptables, no other namespaces', async () => {
  await waitFor('the root pod ran its probes', () => /entries=/.test(podLog('rootpod')), 20_000);
  const log = podLog('rootpod');
  assert.match(log, /uid=0/);
  assert.match(log, /entries=0/);
  assert.doesNotMatch(log, /FLUSHED-CAPTURE/);
  assert.doesNotMatch(log, /ESCAPED/);
});

test('the control plane\'s admin API refuses callers without the token and web pages; ambit (root, state dir) is let in', async () => {
  const status = await fetch(`${c.adminUrl}/api/status`);
  assert.equal(status.status, 401);
  const apply = await fetch(`${c.adminUrl}/api/apply`, { method: 'POST', body: 'apiVersion: v1\nkind: Namespace\nmetadata: {name: evil}\n', headers: { 'content-type': 'text/plain' } });
  assert.equal(apply.status, 401);
  const token = readFileSync(join(c.stateDir, 'admin-token'), 'utf8').trim();
  const fromPage = await fetch(`${c.adminUrl}/api/apply`, { method: 'POST', body: 'apiVersion: v1\nkind: Namespace\nmetadata: {name: evil}\n', headers: { 'content-type': 'text/plain', origin: 'http://evil.example', authorization: `Bearer ${token}` } });
  assert.equal(fromPage.status, 403);
  assert.equal((await fetch(`${c.adminUrl}/metrics`)).status, 200);
  const got = c.ambit(['get', 'namespaces']);
  assert.equal(got.code, 0, got.stderr);
  assert.doesNotMatch(got.stdout, /evil/);
  const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
  assert.equal(mode(c.stateDir), '700');
  for (const f of ['admin-token', 'proxy-key', 'node-tokens.json', 'ca/ca-key.pem']) assert.equal(mode(join(c.stateDir, f)), '600', f);
});

function podIp(pod: string): string {
  const s = JSON.parse(c.ambit(['status', '-o', 'json']).stdout).status as { pods: { name: string; ip: string }[] };
  return s.pods.find((p) => p.name === pod)!.ip;
}

function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

test('a flood of idle TCP connections and half-finished TLS handshakes to a pod\'s 15008: the ztunnel\'s memory stays bounded, legitimate traffic keeps flowing', async () => {
  const z2 = status().components.find((x) => x.name === 'ztunnel-node-2')!;
  const before = rssKb(z2.pid!);
  const echoIp = podIp('echo');
  // From a pod outside the mesh: 3,000 connections to echo's HBONE port, half of them with the
  // first bytes of a TLS ClientHello and then silence, all held open for 8 s.
  const flood = `import socket, time, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
socks, refused = [], 0
for i in range(3000):
    s = socket.socket(); s.setblocking(False)
    try: s.connect(('${echoIp}', 15008))
    except BlockingIOError: pass
    except OSError: refused += 1; continue
    socks.append(s)
time.sleep(0.5)
for i, s in enumerate(socks):
    if i % 2 == 0:
        try: s.send(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]))
        except OSError: pass
time.sleep(7.5)
alive = 0
for s in socks:
    try:
        if s.recv(1): alive += 1
    except BlockingIOError: alive += 1
    except OSError: pass
print(len(socks), alive)`;
  let peakKb = before;
  const r = await whileServing(9, async () => {
    const child = spawn('ip', ['netns', 'exec', c.netns('outside/flooder'), 'python3', '-c', flood], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const sampler = setInterval(() => { peakKb = Math.max(peakKb, rssKb(z2.pid!)); }, 200);
    await new Promise<void>((resolve) => child.once('exit', () => resolve()));
    clearInterval(sampler);
    return out.trim();
  });
  const [opened, stillOpen] = r.attack.split(' ').map(Number);
  assert.ok(opened! >= 2000, `the flooder opened ${opened} connections`);
  assert.ok(stillOpen! <= 64 + 10, `${stillOpen} of its connections were still held by the ztunnel (bound: 64 pending handshakes per source)`);
  assert.deepEqual(Object.keys(r.codes), ['200'], `the concurrent client's answers: ${JSON.stringify(r.codes)}`);
  assert.ok(peakKb - before < 64 * 1024, `the ztunnel grew by ${Math.round((peakKb - before) / 1024)} MiB (bound: 64 MiB)`);
  assert.equal(status().components.find((x) => x.name === 'ztunnel-node-2')!.pid, z2.pid, 'the ztunnel was not restarted');
  assert.ok(await metric(c.ztunnelHost(2), /ambit_hbone_refused_total\{reason="limit"\} (\d+)/) > 1000);
  const lines = readFileSync(join(c.stateDir, 'logs', 'ztunnel-node-2.log'), 'utf8').split('\n').filter((l) => l.includes('hbone refused'));
  assert.ok(lines.length < 20, `${lines.length} log lines about refusals`);
  console.log(`flood: ${opened} connections, ${stillOpen} held; ztunnel RSS ${Math.round(before / 1024)} -> peak ${Math.round(peakKb / 1024)} MiB; client ${JSON.stringify(r.codes)}`);
});
