// The local cluster's network (src/cluster/topology.ts), service proxy (service-proxy.ts) and
// per-pod name resolution (dns.ts), with unmodified programs (python3 http.server, curl,
// getent) in real namespaces:
//
//   node-1: demo/a 10.244.1.10, demo/b 10.244.1.11        node-2: demo/c 10.244.2.10
//   b and c serve HTTP on 8080 ("hello from b" / "hello from c").
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '../../src/sys/exec.js';
import {
  addPod, addPods, createTopology, destroyTopology, listPods, podNetnsName, removePod, nodeNetnsName, underlayNetnsName,
} from '../../src/cluster/topology.js';
import { syncServiceRules, removeServiceRules, type ServiceRule } from '../../src/cluster/service-proxy.js';
import { removeDnsForPrefix, removePodDns, writePodDns, type DnsService } from '../../src/cluster/dns.js';
import { listNetns as listAllNetns } from '../../src/cluster/netns.js';
import { runInNetns, spawnInNetns, type TestProcess } from '../helpers/netns.js';
import type { NodeInfo } from '../../src/model/types.js';

const prefix = `at${process.pid}-cn`;
const nodes: NodeInfo[] = [
  { name: 'node-1', index: 1, podCidr: '10.244.1.0/24' },
  { name: 'node-2', index: 2, podCidr: '10.244.2.0/24' },
];
const pods = [
  { node: 'node-1', namespace: 'demo', name: 'a', ip: '10.244.1.10' },
  { node: 'node-1', namespace: 'demo', name: 'b', ip: '10.244.1.11' },
  { node: 'node-2', namespace: 'demo', name: 'c', ip: '10.244.2.10' },
];
const ns = (name: string) => podNetnsName(prefix, 'demo', name);

/** curl inside a pod; resolves with stdout, or rejects with curl's error. */
async function curl(pod: string, url: string, extra: string[] = []): Promise<string> {
  const r = await runInNetns(ns(pod), 'curl', ['-sS', '--noproxy', '*', '--max-time', '5', ...extra, url]);
  return r.stdout;
}

/** curl's exit code (0 = success) for a request that may fail. */
async function curlCode(pod: string, url: string): Promise<{ code: number; stderr: string }> {
  const r = await runInNetns(ns(pod), 'curl', ['-sS', '--noproxy', '*', '--max-time', '3', url], { okExitCodes: [0, 6, 7, 28, 35, 52, 56] });
  return { code: r.exitCode, stderr: r.stderr };
}

function hostAddresses(): Promise<string[]> {
  return runCommand('ip', ['-4', '-o', 'addr', 'show', 'scope', 'global']).then((r) =>
    [...r.stdout.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!),
  );
}

async function hostVeths(): Promise<string[]> {
  const r = await runCommand('ip', ['-o', 'link', 'show', 'type', 'veth']);
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

describe('cluster: topology, service proxy and DNS', () => {
  const servers: TestProcess[] = [];
  const dirs: string[] = [];
  let vethsBefore: string[] = [];

  before(async () => {
    vethsBefore = await hostVeths();
    await createTopology({ prefix, nodes });
    await addPods(prefix, pods);
    for (const name of ['b', 'c']) {
      const dir = mkdtempSync(join(tmpdir(), `ambit-${name}-`));
      dirs.push(dir);
      writeFileSync(join(dir, 'index.html'), `hello from ${name}\n`);
      const p = spawnInNetns(ns(name), 'python3', ['-u', '-m', 'http.server', '8080', '--bind', '0.0.0.0', '--directory', dir]);
      servers.push(p);
      await p.waitForOutput(/Serving HTTP/);
    }
  });

  after(async () => {
    for (const p of servers) await p.stop(1_000).catch(() => undefined);
    await destroyTopology(prefix);
    await removeDnsForPrefix(prefix);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('each pod namespace has eth0 with its /32, a link route to 169.254.1.1 and a default via it', async () => {
    const addr = await runCommand('ip', ['-n', ns('a'), '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    assert.match(addr.stdout, /inet 10\.244\.1\.10\/32 /);
    const routes = (await runCommand('ip', ['-n', ns('a'), 'route'])).stdout.trim().split('\n').map((l) => l.trim());
    assert.deepEqual(routes.sort(), ['169.254.1.1 dev eth0 scope link', 'default via 169.254.1.1 dev eth0']);
    const nodeRoutes = (await runCommand('ip', ['-n', nodeNetnsName(prefix, 'node-1'), 'route'])).stdout;
    assert.match(nodeRoutes, /10\.244\.2\.0\/24 via 172\.30\.0\.12 dev ul0/);
    assert.match(nodeRoutes, /10\.244\.1\.10 dev av[0-9a-f]{12} scope link/);
    const local = (await runCommand('ip', ['-n', nodeNetnsName(prefix, 'node-1'), 'route', 'show', 'table', 'local'])).stdout;
    assert.match(local, /^local 10\.96\.0\.0\/16 dev lo /m, 'the service CIDR is local to the node');
    const lo = await runCommand('ip', ['-n', ns('a'), '-o', 'link', 'show', 'lo']);
    assert.match(lo.stdout, /UP/);
  });

  test('TCP between pods on the same node and across nodes (curl to python http.server)', async () => {
    assert.equal(await curl('a', 'http://10.244.1.11:8080/'), 'hello from b\n');
    assert.equal(await curl('a', 'http://10.244.2.10:8080/'), 'hello from c\n');
    assert.equal(await curl('c', 'http://10.244.1.11:8080/'), 'hello from b\n');
    // The server sees the client's own pod IP (no NAT between pods).
    const log = servers[1]!.stderr();
    assert.match(log, /10\.244\.1\.10 - - /);
  });

  test('pods cannot reach the host: its own addresses are unreachable, and no veth appeared in the host namespace', async () => {
    const hostServer = http.createServer((_req, res) => res.end('host\n'));
    await new Promise<void>((resolve) => hostServer.listen(0, '0.0.0.0', resolve));
    const port = (hostServer.address() as net.AddressInfo).port;
    try {
      const addrs = await hostAddresses();
      assert.ok(addrs.length > 0, 'the host has a global IPv4 address to try');
      for (const ip of addrs) {
        // Sanity: the host itself reaches the listener on that address.
        const direct = await runCommand('curl', ['-sS', '--noproxy', '*', '--max-time', '3', `http://${ip}:${port}/`]);
        assert.equal(direct.stdout, 'host\n');
        const fromPod = await curlCode('a', `http://${ip}:${port}/`);
        assert.notEqual(fromPod.code, 0, `pod reached the host at ${ip}`);
      }
      const route = await runCommand('ip', ['-n', nodeNetnsName(prefix, 'node-1'), 'route', 'get', addrs[0]!], { okExitCodes: [0, 1, 2] });
      assert.match(route.stderr, /unreachable/i, 'the node has no route to the host networks');
    } finally {
      hostServer.close();
    }
    assert.deepEqual(await hostVeths(), vethsBefore);
  });

  test('listPods reads the pods back from the kernel; addPods/createTopology twice change nothing', async () => {
    const listed = await listPods(prefix);
    assert.deepEqual(
      listed.map((p) => `${p.namespace}/${p.name} ${p.node} ${p.ip} ${p.netns}`),
      pods.map((p) => `${p.namespace}/${p.name} ${p.node} ${p.ip} ${ns(p.name)}`),
    );
    const pidsBefore = servers.map((s) => s.pid);
    await createTopology({ prefix, nodes });
    await addPods(prefix, pods);
    // Still serving, same processes, same links.
    assert.equal(await curl('a', 'http://10.244.2.10:8080/'), 'hello from c\n');
    assert.deepEqual(servers.map((s) => s.pid), pidsBefore);
    const again = await listPods(prefix);
    assert.deepEqual(again, listed);
  });

  describe('service proxy (non-enrolled pods)', () => {
    const services: ServiceRule[] = [
      { vip: '10.96.0.10', name: 'demo/remote', ports: [{ port: 80, endpoints: [{ ip: '10.244.2.10', port: 8080 }] }] },
      { vip: '10.96.0.11', name: 'demo/local', ports: [{ port: 80, endpoints: [{ ip: '10.244.1.11', port: 8080 }] }] },
      { vip: '10.96.0.12', name: 'demo/both', ports: [{ port: 80, endpoints: [{ ip: '10.244.1.11', port: 8080 }, { ip: '10.244.2.10', port: 8080 }] }] },
      { vip: '10.96.0.13', name: 'demo/empty', ports: [{ port: 80, endpoints: [] }] },
    ];

    before(async () => {
      for (const n of nodes) await syncServiceRules(prefix, n.name, services);
    });

    test('a VIP reaches an endpoint on the other node', async () => {
      assert.equal(await curl('a', 'http://10.96.0.10/'), 'hello from c\n');
      assert.equal(await curl('c', 'http://10.96.0.10/'), 'hello from c\n', 'and a pod reaching itself through a VIP (masqueraded)');
    });

    test('a VIP reaches an endpoint on the same node (hairpin through the node)', async () => {
      assert.equal(await curl('a', 'http://10.96.0.11/'), 'hello from b\n');
      assert.equal(await curl('b', 'http://10.96.0.11/'), 'hello from b\n', 'b to itself');
    });

    test('connections are spread over the endpoints', async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 24 && seen.size < 2; i++) seen.add((await curl('a', 'http://10.96.0.12/')).trim());
      assert.deepEqual([...seen].sort(), ['hello from b', 'hello from c']);
    });

    test('a process in the node\'s own namespace reaches a VIP too (masqueraded)', async () => {
      const r = await runInNetns(nodeNetnsName(prefix, 'node-1'), 'curl', ['-sS', '--noproxy', '*', '--max-time', '5', 'http://10.96.0.10/']);
      assert.equal(r.stdout, 'hello from c\n');
      assert.match(servers[1]!.stderr(), /172\.30\.0\.11 - - /, 'c saw node-1\'s underlay address');
    });

    test('a service port without endpoints is refused at once, and a sync to fewer services removes their chains', async () => {
      for (let i = 0; i < 10; i++) {
        // Every time: a TCP reset from the node (VIPs are local there), not a rate-limited ICMP error.
        for (const url of ['http://10.96.0.13/', 'http://10.96.0.10:81/']) {
          const refused = await curlCode('a', url);
          assert.equal(refused.code, 7, refused.stderr);
        }
      }
      const rules = async () => {
        const n = nodeNetnsName(prefix, 'node-1');
        return (await runInNetns(n, 'iptables', ['-t', 'nat', '-S'])).stdout + (await runInNetns(n, 'iptables', ['-t', 'filter', '-S'])).stdout;
      };
      const before = await rules();
      await syncServiceRules(prefix, 'node-1', services); // twice: the same table
      const same = await rules();
      assert.equal(same, before);
      assert.equal((before.match(/-A PREROUTING -j AMBIT_SERVICES$/gm) ?? []).length, 1);
      assert.equal((before.match(/-A OUTPUT -j AMBIT_SERVICES_LOCAL$/gm) ?? []).length, 1);
      assert.match(before, /--comment "?demo\/both:80"?/);
      await syncServiceRules(prefix, 'node-1', services.slice(0, 1));
      const fewer = (await runInNetns(nodeNetnsName(prefix, 'node-1'), 'iptables-save', ['-t', 'nat'])).stdout;
      assert.equal((fewer.match(/^:AMBIT_SVC_/gm) ?? []).length, 1);
      assert.equal((fewer.match(/^:AMBIT_SEP_/gm) ?? []).length, 1);
      assert.notEqual((await curlCode('a', 'http://10.96.0.11/')).code, 0, 'the removed VIP no longer answers');
      assert.equal(await curl('a', 'http://10.96.0.10/'), 'hello from c\n');
      await removeServiceRules(prefix, 'node-1');
      await removeServiceRules(prefix, 'node-1');
      const none = (await runInNetns(nodeNetnsName(prefix, 'node-1'), 'iptables-save')).stdout;
      assert.doesNotMatch(none, /AMBIT/);
      await syncServiceRules(prefix, 'node-1', services);
    });
  });

  describe('DNS files', () => {
    const services: DnsService[] = [
      { namespace: 'demo', name: 'web', vip: '10.96.0.10' },
      { namespace: 'other', name: 'api', vip: '10.96.0.11' },
    ];
    const dnsFor = (svcs: DnsService[]) => ({
      prefix, netns: ns('a'), namespace: 'demo', name: 'a', ip: '10.244.1.10', services: svcs,
      pods: pods.map((p) => ({ namespace: p.namespace, name: p.name, ip: p.ip })),
    });

    before(async () => {
      for (const n of nodes) {
        await syncServiceRules(prefix, n.name, [
          { vip: '10.96.0.10', ports: [{ port: 80, endpoints: [{ ip: '10.244.2.10', port: 8080 }] }] },
          { vip: '10.96.0.11', ports: [{ port: 8080, endpoints: [{ ip: '10.244.1.11', port: 8080 }] }] },
        ]);
      }
      await writePodDns(dnsFor(services));
    });

    test('curl by short name, namespaced name and FQDN; short names only for the pod\'s own namespace', async () => {
      assert.equal(await curl('a', 'http://web/'), 'hello from c\n');
      assert.equal(await curl('a', 'http://web.demo.svc.cluster.local/'), 'hello from c\n');
      assert.equal(await curl('a', 'http://api.other:8080/'), 'hello from b\n');
      assert.equal(await curl('a', 'http://api.other.svc.cluster.local:8080/'), 'hello from b\n');
      assert.equal(await curl('a', 'http://b.demo:8080/'), 'hello from b\n', 'pod.ns names');
      const short = await runInNetns(ns('a'), 'getent', ['hosts', 'api'], { okExitCodes: [0, 2] });
      assert.equal(short.exitCode, 2, 'api is in another namespace: no short name');
    });

    test('an unknown name fails fast (nothing listens on the nameserver), and pods without DNS files keep the host\'s', async () => {
      const started = Date.now();
      const r = await runInNetns(ns('a'), 'getent', ['hosts', 'nosuch.example.com'], { okExitCodes: [0, 2] });
      assert.equal(r.exitCode, 2);
      assert.ok(Date.now() - started < 2_500, `took ${Date.now() - started} ms`);
      const resolv = await runInNetns(ns('a'), 'cat', ['/etc/resolv.conf']);
      assert.match(resolv.stdout, /^search demo\.svc\.cluster\.local svc\.cluster\.local cluster\.local$/m);
      assert.match(resolv.stdout, /^options ndots:5/m);
      const other = await runInNetns(ns('b'), 'cat', ['/etc/hosts']);
      assert.equal(other.stdout, readFileSync('/etc/hosts', 'utf8'));
    });

    test('an update is seen by a process already running, and the file keeps its inode', async () => {
      const file = `/etc/netns/${ns('a')}/hosts`;
      const inode = statSync(file).ino;
      const watcher = spawnInNetns(ns('a'), 'python3', [
        '-u', '-c',
        'import socket, time\n' +
          'print("watching", flush=True)\n' +
          'for i in range(200):\n' +
          '    try:\n' +
          '        print("late=" + socket.gethostbyname("late"), flush=True); break\n' +
          '    except OSError:\n' +
          '        time.sleep(0.05)\n',
      ]);
      try {
        await watcher.waitForOutput(/watching/);
        await new Promise((r) => setTimeout(r, 200));
        assert.doesNotMatch(watcher.stdout(), /late=/, 'not resolvable yet');
        const { changed } = await writePodDns(dnsFor([...services, { namespace: 'demo', name: 'late', vip: '10.96.0.99' }]));
        assert.deepEqual(changed, ['hosts']);
        await watcher.waitForOutput(/late=10\.96\.0\.99/, 5_000);
        assert.equal(statSync(file).ino, inode);
        const unchanged = await writePodDns(dnsFor([...services, { namespace: 'demo', name: 'late', vip: '10.96.0.99' }]));
        assert.deepEqual(unchanged.changed, []);
        // Shrinking: the service goes, the file keeps its inode and holds no stale line.
        assert.deepEqual((await writePodDns(dnsFor(services))).changed, ['hosts']);
        assert.deepEqual((await writePodDns(dnsFor(services))).changed, [], 'the padded file counts as unchanged');
        assert.equal(statSync(file).ino, inode);
        const text = readFileSync(file, 'utf8');
        assert.doesNotMatch(text, /late/);
        assert.match(text, /\n#\s*\n$/, 'padded with a comment line');
        const gone = await runInNetns(ns('a'), 'getent', ['hosts', 'late'], { okExitCodes: [0, 2] });
        assert.equal(gone.exitCode, 2);
      } finally {
        await watcher.stop(500);
      }
    });

    test('removePodDns removes the directory; removeDnsForPrefix only ours', async () => {
      await writePodDns({ ...dnsFor(services), netns: ns('c'), name: 'c', ip: '10.244.2.10' });
      assert.ok(existsSync(`/etc/netns/${ns('c')}`));
      assert.equal(await removePodDns({ netns: ns('c') }), true);
      assert.equal(await removePodDns({ netns: ns('c') }), false);
      assert.ok(!existsSync(`/etc/netns/${ns('c')}`));
    });
  });

  test('removePod removes its namespace, link and route; adding it back works', async () => {
    const extra = { prefix, node: 'node-2', namespace: 'demo', name: 'extra', ip: '10.244.2.20' };
    const made = await addPod(extra);
    assert.equal(made.netns, ns('extra'));
    assert.equal(await curl('extra', 'http://10.244.1.11:8080/'), 'hello from b\n');
    const sleeper = spawnInNetns(ns('extra'), 'sleep', ['1000']);
    await new Promise((r) => setTimeout(r, 100));
    const removed = await removePod(extra);
    assert.equal(removed.removed, true);
    assert.ok(removed.killedPids.includes(sleeper.pid), 'the process inside was killed');
    await sleeper.exited;
    assert.equal((await removePod(extra)).removed, false, 'idempotent');
    const nodeRoutes = (await runCommand('ip', ['-n', nodeNetnsName(prefix, 'node-2'), 'route'])).stdout;
    assert.doesNotMatch(nodeRoutes, /10\.244\.2\.20/);
    await addPod(extra);
    assert.equal(await curl('extra', 'http://10.244.1.11:8080/'), 'hello from b\n');
    await removePod(extra);
  });

  test('a half-made pod (left by a crash) is rebuilt by addPod', async () => {
    const spec = { prefix, node: 'node-1', namespace: 'demo', name: 'crashed', ip: '10.244.1.30' };
    await runCommand('ip', ['netns', 'add', ns('crashed')]);
    await addPod(spec);
    assert.equal(await curl('crashed', 'http://10.244.2.10:8080/'), 'hello from c\n');
    // Same pod, new IP: rebuilt with the new address.
    await addPod({ ...spec, ip: '10.244.1.31' });
    const addr = await runCommand('ip', ['-n', ns('crashed'), '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    assert.match(addr.stdout, /inet 10\.244\.1\.31\/32/);
    assert.equal(await curl('crashed', 'http://10.244.2.10:8080/'), 'hello from c\n');
    await removePod(spec);
  });

  test('destroyTopology removes every namespace of the prefix, kills what ran inside, and is idempotent', async () => {
    // A namespace under our name prefix but tagged by another cluster (prefix `<prefix>-x`).
    const foreign = `${prefix}-x-underlay`;
    await runCommand('ip', ['netns', 'add', foreign]);
    try {
      await runCommand('ip', ['-n', foreign, 'link', 'set', 'lo', 'alias', `ambit:${prefix}-x:underlay`]);
      // The python servers are still running inside b and c: destroy kills them.
      const result = await destroyTopology(prefix);
      assert.ok(result.removed.includes(underlayNetnsName(prefix)));
      assert.ok(result.removed.includes(ns('a')));
      assert.deepEqual(result.skipped, [foreign]);
      for (const s of servers) assert.ok(result.killedPids.includes(s.pid), `server ${s.pid} killed`);
      const left = (await listAllNetns()).filter((n) => n.startsWith(`${prefix}-`));
      assert.deepEqual(left, [foreign]);
      assert.deepEqual(await hostVeths(), vethsBefore);
      const again = await destroyTopology(prefix);
      assert.deepEqual(again.removed, []);
    } finally {
      await runCommand('ip', ['netns', 'del', foreign]);
    }
  });
});
