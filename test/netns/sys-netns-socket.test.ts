// src/sys/netns-socket.ts and the addon's edges: sockets really live in the namespace they were
// made in, marks, bind options, the errors (refused, unreachable, timeout, bad namespace),
// this process's namespace never moving, and no fd leaking over thousands of connections.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { AmbitError } from '../../src/core/errors.js';
import { runCommand } from '../../src/sys/exec.js';
import { loadNative, loadNativeFrom, nativeAddonPath, packageRoot } from '../../src/sys/native.js';
import {
  NetnsHandle,
  connectInNetns,
  listenInNetns,
  setSocketMark,
  socketFd,
  socketMark,
} from '../../src/sys/netns-socket.js';
import { isProcessAlive } from '../../src/sys/proc.js';
import {
  createTestNetwork,
  listNetns,
  openFdCount,
  ownNetnsInode,
  threadNetns,
  trackConnections,
  type TestLink,
  type TestNetwork,
} from '../helpers/netns.js';
import { waitFor } from '../helpers/wait.js';

function connectError(p: Promise<net.Socket>): Promise<NodeJS.ErrnoException> {
  return p.then(
    (s) => {
      s.destroy();
      throw new Error('expected the connection to fail');
    },
    (e: unknown) => e as NodeJS.ErrnoException,
  );
}

describe('sys: sockets in another network namespace', () => {
  let network: TestNetwork;
  let link: TestLink;
  let a: NetnsHandle;
  let b: NetnsHandle;
  let netnsBefore: number;
  let threadsBefore: string[];
  let bServer: net.Server;
  let bConns: ReturnType<typeof trackConnections>;

  before(async () => {
    netnsBefore = ownNetnsInode();
    threadsBefore = threadNetns();
    network = await createTestNetwork('syssock', { links: [['a', 'b']] });
    link = network.links()[0]!;
    // b drops TCP to port 9 silently (a connect there times out) and has a server on 7000
    // that writes back the source address and port it saw.
    await network.run('b', 'iptables', ['-A', 'INPUT', '-p', 'tcp', '--dport', '9', '-j', 'DROP']);
    a = NetnsHandle.open(network.ns('a'));
    b = NetnsHandle.open(network.ns('b'));
    bServer = await listenInNetns(b, { host: '0.0.0.0', port: 7000 });
    bServer.on('connection', (s) => {
      s.on('error', () => undefined);
      s.end(`${s.remoteAddress} ${s.remotePort}\n`);
    });
    bConns = trackConnections(bServer);
  });

  after(async () => {
    await bConns?.closeAll();
    a?.close();
    b?.close();
    await network?.cleanup();
  });

  const read = (s: net.Socket) =>
    new Promise<string>((resolve, reject) => {
      let d = '';
      s.setEncoding('utf8').on('data', (x: string) => (d += x)).once('end', () => resolve(d)).once('error', reject);
    });

  test("a listener made in a namespace is reachable there and not from this process's namespace", async () => {
    const server = await listenInNetns(a, { host: '127.0.0.1', port: 0 });
    const conns = trackConnections(server);
    server.on('connection', (s) => s.end('from a\n'));
    try {
      const port = (server.address() as net.AddressInfo).port;
      assert.ok(port > 0);
      const inside = await connectInNetns(a, { host: '127.0.0.1', port, timeoutMs: 3_000 });
      assert.equal(await read(inside), 'from a\n');
      inside.destroy();
      const outside = await connectError(connectInNetns(null, { host: '127.0.0.1', port, timeoutMs: 3_000 }));
      assert.equal(outside.code, 'ECONNREFUSED');
    } finally {
      await conns.closeAll();
    }
  });

  test('the same port can be bound in two namespaces, but not twice in one (EADDRINUSE)', async () => {
    const one = await listenInNetns(a, { host: '0.0.0.0', port: 7300 });
    const two = await listenInNetns(b, { host: '0.0.0.0', port: 7300 });
    try {
      await assert.rejects(listenInNetns(a, { host: '0.0.0.0', port: 7300 }), (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, 'EADDRINUSE');
        assert.equal(e.syscall, 'bind');
        return true;
      });
    } finally {
      await new Promise((r) => one.close(r));
      await new Promise((r) => two.close(r));
    }
  });

  test('a connection from a namespace uses its addresses; localAddress/localPort bind the source', async () => {
    const s = await connectInNetns(a, { host: link.bAddress, port: 7000, timeoutMs: 3_000 });
    assert.equal((await read(s)).trim().split(' ')[0], link.aAddress);
    assert.equal(s.remoteAddress, link.bAddress);
    assert.equal(s.remotePort, 7000);
    s.destroy();
    const bound = await connectInNetns(a, { host: link.bAddress, port: 7000, localAddress: link.aAddress, localPort: 47123, timeoutMs: 3_000 });
    assert.equal((await read(bound)).trim(), `${link.aAddress} 47123`);
    bound.destroy();
  });

  test('data flows both ways and the socket behaves as a normal net.Socket (half-close, end)', async () => {
    const server = await listenInNetns(b, { host: '0.0.0.0', port: 7400, server: net.createServer({ allowHalfOpen: true }) });
    const conns = trackConnections(server);
    server.on('connection', (s) => {
      let got = '';
      s.setEncoding('utf8').on('data', (d: string) => (got += d)).on('end', () => s.end(got.toUpperCase()));
    });
    try {
      const s = await connectInNetns(a, { host: link.bAddress, port: 7400, timeoutMs: 3_000, allowHalfOpen: true });
      const reply = read(s);
      s.write('hello ');
      s.end('namespace');
      assert.equal(await reply, 'HELLO NAMESPACE');
      s.destroy();
    } finally {
      await conns.closeAll();
    }
  });

  test('getMark returns what was set, on sockets made in a namespace and on plain Node sockets', async () => {
    const native = loadNative();
    const s = await connectInNetns(a, { host: link.bAddress, port: 7000, mark: 0x539, timeoutMs: 3_000 });
    s.on('error', () => undefined);
    try {
      assert.equal(socketMark(s), 0x539);
      setSocketMark(s, 0xabcdef12);
      assert.equal(socketMark(s), 0xabcdef12);
      native.setMark(socketFd(s), 0);
      assert.equal(native.getMark(socketFd(s)), 0);
    } finally {
      s.destroy();
    }
    const server = await listenInNetns(null, { host: '127.0.0.1', port: 0, mark: 0x77 });
    const conns = trackConnections(server);
    try {
      assert.equal(socketMark(server), 0x77);
      const plain = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
      await new Promise((r) => plain.once('connect', r));
      assert.equal(socketMark(plain), 0);
      setSocketMark(plain, 0x539);
      assert.equal(socketMark(plain), 0x539);
      plain.destroy();
    } finally {
      await conns.closeAll();
    }
  });

  test('a connection refused in the namespace rejects with ECONNREFUSED, like net.connect', async () => {
    const e = await connectError(connectInNetns(a, { host: link.bAddress, port: 7999, timeoutMs: 3_000 }));
    assert.equal(e.code, 'ECONNREFUSED');
    assert.equal(e.syscall, 'connect');
    assert.equal((e as unknown as { address: string }).address, link.bAddress);
    assert.equal((e as unknown as { port: number }).port, 7999);
  });

  test('a destination with no route in the namespace rejects with ENETUNREACH', async () => {
    const e = await connectError(connectInNetns(a, { host: '10.250.0.1', port: 80, timeoutMs: 3_000 }));
    assert.equal(e.code, 'ENETUNREACH');
  });

  test('a connect that gets no answer rejects with AMBIT_ERR_TIMEOUT after timeoutMs and leaves no fd behind', async () => {
    const fdsBefore = openFdCount();
    const started = Date.now();
    const e = await connectError(connectInNetns(a, { host: link.bAddress, port: 9, timeoutMs: 300 }));
    const took = Date.now() - started;
    assert.ok(e instanceof AmbitError, String(e));
    assert.equal(e.code, 'AMBIT_ERR_TIMEOUT');
    assert.match(e.message, /10\.99\.1\.2:9 timed out after 300 ms/);
    assert.ok(took >= 290, `took ${took} ms`);
    await waitFor('the condition', () => openFdCount() <= fdsBefore);
  });

  test('IP_TRANSPARENT and IP_FREEBIND allow binding an address the namespace does not have', async () => {
    const foreign = '10.99.1.77';
    await assert.rejects(listenInNetns(a, { host: foreign, port: 7500 }), (e: NodeJS.ErrnoException) => e.code === 'EADDRNOTAVAIL' && e.syscall === 'bind');
    const transparent = await listenInNetns(a, { host: foreign, port: 7500, transparent: true });
    await new Promise((r) => transparent.close(r));
    const freebind = await listenInNetns(a, { host: foreign, port: 7501, freebind: true });
    await new Promise((r) => freebind.close(r));
    await assert.rejects(connectInNetns(a, { host: link.bAddress, port: 7000, localAddress: foreign }), (e: NodeJS.ErrnoException) => e.code === 'EADDRNOTAVAIL');
  });

  test('namespace errors are AmbitErrors with a hint', async () => {
    assert.throws(() => NetnsHandle.open(`${network.prefix}-missing`), (e: AmbitError) => e.code === 'AMBIT_ERR_NETNS' && /ip netns list/.test(e.hint ?? ''));
    const notNs = NetnsHandle.open('/proc/self/cmdline');
    try {
      await assert.rejects(connectInNetns(notNs, { host: '127.0.0.1', port: 1 }), (e: AmbitError) => e.code === 'AMBIT_ERR_NETNS' && /not a network namespace/.test(e.hint ?? ''));
    } finally {
      notNs.close();
    }
    const closed = NetnsHandle.open(network.ns('a'));
    closed.close();
    closed.close(); // idempotent
    await assert.rejects(connectInNetns(closed, { host: '127.0.0.1', port: 1 }), (e: AmbitError) => e.code === 'AMBIT_ERR_NETNS');
    await assert.rejects(connectInNetns(a, { host: 'example.com', port: 80 }), (e: AmbitError) => e.code === 'AMBIT_ERR_USAGE');
  });

  test('the addon reports errno errors with code and syscall, and rejects bad arguments', () => {
    const native = loadNative();
    assert.throws(() => native.getMark(987654), (e: NodeJS.ErrnoException) => e.code === 'EBADF' && e.syscall === 'getsockopt' && e.errno === -9);
    assert.throws(() => native.openNetns('/nonexistent/ns'), (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.syscall === 'open');
    assert.throws(() => native.setMark(-1, 1), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_VALUE');
    assert.throws(() => native.makeSocket({ family: 5 as 4 }), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_VALUE');
    assert.throws(() => native.makeSocket({ family: 4, bindAddress: '::1' }), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_VALUE');
  });

  test('the addon loader finds the package root and explains a missing or broken addon', () => {
    assert.ok(existsSync(`${packageRoot()}/native/binding.gyp`));
    assert.equal(nativeAddonPath(), `${packageRoot()}/native/build/Release/ambit_native.node`);
    assert.equal(loadNativeFrom(nativeAddonPath()).abiVersion, loadNative().abiVersion);
    assert.throws(
      () => loadNativeFrom('/nonexistent/ambit_native.node'),
      (e: AmbitError) => e.code === 'AMBIT_ERR_NATIVE' && /is missing/.test(e.message) && /npm run setup/.test(e.hint ?? '') && /python3, make and g\+\+/.test(e.hint ?? ''),
    );
    assert.throws(() => loadNativeFrom('/etc/hostname'), (e: AmbitError) => e.code === 'AMBIT_ERR_NATIVE' && /could not be loaded/.test(e.message) && /npm run setup/.test(e.hint ?? ''));
  });

  test('2,000 connections (and 200 refusals) from a namespace leak no file descriptor', async () => {
    const server = await listenInNetns(a, { host: '127.0.0.1', port: 7600 });
    const conns = trackConnections(server);
    server.on('connection', (s) => {
      s.on('error', () => undefined);
      s.end();
    });
    try {
      // Warm up once (lazily opened fds, e.g. the addon's), then count.
      (await connectInNetns(a, { host: '127.0.0.1', port: 7600 })).destroy();
      await waitFor('the condition', () => conns.open() === 0);
      const fdsBefore = openFdCount();
      for (let i = 0; i < 2_000; i++) {
        const s = await connectInNetns(a, { host: '127.0.0.1', port: 7600, mark: 0x539, timeoutMs: 3_000 });
        s.destroy();
      }
      for (let i = 0; i < 200; i++) {
        const e = await connectError(connectInNetns(a, { host: '127.0.0.1', port: 7601 }));
        assert.equal(e.code, 'ECONNREFUSED');
      }
      for (let i = 0; i < 200; i++) NetnsHandle.open(network.ns('b')).close();
      await waitFor('the condition', () => conns.open() === 0);
      assert.equal(conns.accepted(), 2_001);
      await waitFor('the condition', () => openFdCount() <= fdsBefore);
      assert.ok(openFdCount() <= fdsBefore, `fds: ${fdsBefore} before, ${openFdCount()} after`);
    } finally {
      await conns.closeAll();
    }
  });

  test("this process's network namespace, and every thread's, is unchanged", () => {
    assert.equal(ownNetnsInode(), netnsBefore);
    const threads = threadNetns();
    assert.ok(threads.every((t) => t === threadsBefore[0]), `threads in: ${[...new Set(threads)].join(', ')}`);
  });

  test('cleanup kills the processes in the namespaces and removes them all', async () => {
    const tracked = network.spawn('a', 'sleep', ['1000']);
    await network.run('b', 'sh', ['-c', 'sleep 1000 >/dev/null 2>&1 &']); // not tracked: found by `ip netns pids`
    const strays = (await runCommand('ip', ['netns', 'pids', network.ns('b')])).stdout.split(/\s+/).filter(Boolean).map(Number);
    assert.equal(strays.length, 1);
    await bConns.closeAll();
    a.close();
    b.close();
    await network.cleanup();
    await tracked.exited;
    const alive = isProcessAlive; // a zombie is dead
    assert.equal(alive(tracked.pid), false);
    await waitFor('the condition', () => !alive(strays[0]!));
    assert.deepEqual((await listNetns()).filter((n) => n.startsWith(network.prefix)), []);
  });
});
