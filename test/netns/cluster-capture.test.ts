// The in-pod capture rules (src/cluster/capture-rules.ts) in a pod of a real local-cluster
// topology: what iptables shows, where connections land (listeners made inside the pod's
// namespace with src/sys listenInNetns), the ztunnel mark's bypass, and removal that leaves an
// established connection alive.
//
//   node-1: demo/client 10.244.1.10 (capture installed), demo/server 10.244.1.11
//   client: 15001 (outbound capture), 15006 (inbound capture), 15008 (HBONE stand-in)
//   server: 7000 echo ("direct:<data>"), 8080 HTTP
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { captureInstalled, captureRestoreInput, installCapture, purgeCapture, removeCapture } from '../../src/cluster/capture-rules.js';
import { addPods, createTopology, destroyTopology, podNetnsName } from '../../src/cluster/topology.js';
import { connectInNetns, listenInNetns, NetnsHandle, originalDestination } from '../../src/sys/netns-socket.js';
import { runInNetns, trackConnections } from '../helpers/netns.js';

const prefix = `at${process.pid}-cc`;
const clientNs = podNetnsName(prefix, 'demo', 'client');
const serverNs = podNetnsName(prefix, 'demo', 'server');
const CLIENT = '10.244.1.10';
const SERVER = '10.244.1.11';

const EXPECTED_RULES = [
  '-P PREROUTING ACCEPT',
  '-P INPUT ACCEPT',
  '-P OUTPUT ACCEPT',
  '-P POSTROUTING ACCEPT',
  '-N AMBIT_OUTPUT',
  '-N AMBIT_PREROUTING',
  '-A PREROUTING -j AMBIT_PREROUTING',
  '-A OUTPUT -j AMBIT_OUTPUT',
  '-A AMBIT_OUTPUT -o lo -j RETURN',
  '-A AMBIT_OUTPUT -d 127.0.0.0/8 -j RETURN',
  '-A AMBIT_OUTPUT -m mark --mark 0x539/0xfff -j RETURN',
  '-A AMBIT_OUTPUT -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053',
  '-A AMBIT_OUTPUT -p tcp -m tcp --dport 53 --tcp-flags FIN,SYN,RST,ACK SYN -j REDIRECT --to-ports 15053',
  '-A AMBIT_OUTPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j REDIRECT --to-ports 15001',
  '-A AMBIT_PREROUTING -p tcp -m tcp --dport 15008 -j RETURN',
  '-A AMBIT_PREROUTING -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j REDIRECT --to-ports 15006',
];

async function natRules(netns: string): Promise<string[]> {
  const r = await runInNetns(netns, 'iptables', ['-t', 'nat', '-S']);
  return r.stdout.trim().split('\n');
}

/** Sends `text` and resolves with the next chunk the peer sends back. */
function roundTrip(socket: net.Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('data', (d: Buffer) => resolve(d.toString('utf8')));
    socket.once('error', reject);
    socket.write(text);
  });
}

describe('cluster: capture rules in a pod', () => {
  let client: NetnsHandle;
  let server: NetnsHandle;
  const closers: Array<() => Promise<void>> = [];
  const outbound: string[] = [];
  const inbound: string[] = [];
  const hbone: string[] = [];

  async function listen(ns: NetnsHandle, host: string, port: number, onConnection: (s: net.Socket) => void, srv?: net.Server): Promise<void> {
    const server = await listenInNetns(ns, { host, port, server: srv });
    server.on('connection', (s) => {
      s.on('error', () => undefined);
      onConnection(s);
    });
    const t = trackConnections(server);
    closers.push(() => t.closeAll());
  }

  before(async () => {
    await createTopology({ prefix, nodes: [{ name: 'node-1', index: 1, podCidr: '10.244.1.0/24' }] });
    await addPods(prefix, [
      { node: 'node-1', namespace: 'demo', name: 'client', ip: CLIENT },
      { node: 'node-1', namespace: 'demo', name: 'server', ip: SERVER },
    ]);
    client = NetnsHandle.open(clientNs);
    server = NetnsHandle.open(serverNs);
    // server: echo on 7000, HTTP on 8080.
    await listen(server, '0.0.0.0', 7000, (s) => s.on('data', (d: Buffer) => s.write(`direct:${d.toString()}`)));
    await listen(server, '0.0.0.0', 8080, () => undefined, http.createServer((_req, res) => res.end('hello from server\n')));
    // client: the capture listeners.
    await listen(client, '0.0.0.0', 15001, (s) => {
      const dst = originalDestination(s);
      outbound.push(`${dst.address}:${dst.port}`);
      if (dst.port === 7000) {
        s.on('data', (d: Buffer) => s.write(`captured:${d.toString()}`));
      } else {
        const body = `captured ${dst.address}:${dst.port}\n`;
        s.once('data', () => s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`));
      }
    });
    await listen(client, '0.0.0.0', 15006, (s) => {
      const dst = originalDestination(s);
      inbound.push(`${dst.address}:${dst.port}`);
      s.end(`inbound ${dst.address}:${dst.port}\n`);
    });
    await listen(client, '0.0.0.0', 15008, (s) => {
      hbone.push(`${s.localAddress}:${s.localPort}`);
      s.end('hbone\n');
    });
    await listen(client, '127.0.0.1', 7100, (s) => s.end('loopback\n'));
  });

  after(async () => {
    for (const close of closers.splice(0)) await close().catch(() => undefined);
    client?.close();
    server?.close();
    await destroyTopology(prefix);
  });

  test('installed rules are exactly the expected `iptables -t nat -S`, also after installing twice', async () => {
    assert.equal(await captureInstalled(clientNs), false);
    await installCapture(clientNs);
    assert.deepEqual(await natRules(clientNs), EXPECTED_RULES);
    await installCapture(clientNs);
    assert.deepEqual(await natRules(clientNs), EXPECTED_RULES);
    assert.equal(await captureInstalled(clientNs), true);
    assert.equal(await captureInstalled(serverNs), false);
    // What a user is shown is what iptables-restore takes.
    assert.match(captureRestoreInput(), /^\*nat\n:AMBIT_OUTPUT - \[0:0\]\n/);
  });

  test('curl from the pod lands on 15001 with its original destination', async () => {
    outbound.length = 0;
    const r = await runInNetns(clientNs, 'curl', ['-sS', '--noproxy', '*', '--max-time', '5', `http://${SERVER}:8080/`]);
    assert.equal(r.stdout, `captured ${SERVER}:8080\n`);
    assert.deepEqual(outbound, [`${SERVER}:8080`]);
  });

  test('a socket with the ztunnel mark 0x539 bypasses the capture; an unmarked one does not', async () => {
    outbound.length = 0;
    const marked = await connectInNetns(client, { host: SERVER, port: 7000, mark: 0x539, timeoutMs: 3_000 });
    assert.equal(await roundTrip(marked, 'x'), 'direct:x');
    marked.destroy();
    const plain = await connectInNetns(client, { host: SERVER, port: 7000, timeoutMs: 3_000 });
    assert.equal(await roundTrip(plain, 'y'), 'captured:y');
    plain.destroy();
    assert.deepEqual(outbound, [`${SERVER}:7000`]);
  });

  test('loopback traffic is not captured', async () => {
    outbound.length = 0;
    const r = await runInNetns(clientNs, 'curl', ['-sS', '--max-time', '3', '--http0.9', 'http://127.0.0.1:7100/']);
    assert.equal(r.stdout, 'loopback\n');
    assert.deepEqual(outbound, []);
  });

  test('inbound to any port but 15008 lands on 15006; 15008 is left alone', async () => {
    inbound.length = 0;
    hbone.length = 0;
    const s = await connectInNetns(server, { host: CLIENT, port: 9090, timeoutMs: 3_000 });
    const got = await new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())));
    assert.equal(got, `inbound ${CLIENT}:9090\n`);
    s.destroy();
    const h = await connectInNetns(server, { host: CLIENT, port: 15008, timeoutMs: 3_000 });
    const got2 = await new Promise<string>((resolve) => h.once('data', (d: Buffer) => resolve(d.toString())));
    assert.equal(got2, 'hbone\n');
    h.destroy();
    assert.deepEqual(inbound, [`${CLIENT}:9090`]);
    assert.deepEqual(hbone, [`${CLIENT}:15008`]);
  });

  test('removing the rules keeps an established captured connection alive; new connections go direct', async () => {
    const live = await connectInNetns(client, { host: SERVER, port: 7000, timeoutMs: 3_000 });
    try {
      assert.equal(await roundTrip(live, 'one'), 'captured:one');
      await removeCapture(clientNs);
      assert.equal(await captureInstalled(clientNs), false);
      // The jumps are gone; the chains stay, unreachable, and keep conntrack running.
      assert.deepEqual(await natRules(clientNs), EXPECTED_RULES.filter((r) => !/^-A (OUTPUT|PREROUTING) /.test(r)));
      await removeCapture(clientNs); // idempotent
      assert.equal(await roundTrip(live, 'two'), 'captured:two', 'conntrack kept the redirect');
      const fresh = await connectInNetns(client, { host: SERVER, port: 7000, timeoutMs: 3_000 });
      assert.equal(await roundTrip(fresh, 'three'), 'direct:three');
      fresh.destroy();
    } finally {
      live.destroy();
    }
  });

  test('install repairs a duplicated jump; purge removes everything', async () => {
    await installCapture(clientNs);
    await runInNetns(clientNs, 'iptables', ['-t', 'nat', '-A', 'OUTPUT', '-j', 'AMBIT_OUTPUT']);
    assert.equal(await captureInstalled(clientNs), false);
    await installCapture(clientNs);
    assert.equal(await captureInstalled(clientNs), true);
    assert.deepEqual(await natRules(clientNs), EXPECTED_RULES);
    await purgeCapture(clientNs);
    await purgeCapture(clientNs);
    assert.deepEqual(await natRules(clientNs), EXPECTED_RULES.slice(0, 4));
    const fresh = await connectInNetns(client, { host: SERVER, port: 7000, timeoutMs: 3_000 });
    assert.equal(await roundTrip(fresh, 'four'), 'direct:four');
    fresh.destroy();
  });
});
