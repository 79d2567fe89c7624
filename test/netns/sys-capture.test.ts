// The capture path (src/cluster/capture-rules.ts), with real iptables rules in a real namespace, driven
// from this (host-namespace) Node process through src/sys/: listeners on 15001/15006/15008
// made inside the pod's namespace, SO_ORIGINAL_DST, and the 0x539 mark that exempts a socket.
//
//   pod (10.99.1.1, fd00:99:1::1)  <--veth-->  peer (10.99.1.2, fd00:99:1::2)
//   pod: OUTPUT   tcp !-> 127.0.0.1, unmarked  -> REDIRECT 15001   (a '::' dual-stack listener)
//        PREROUTING tcp, dport != 15008       -> REDIRECT 15006   (a '0.0.0.0' listener)
//        (ip6tables: the same for IPv6)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { AmbitError } from '../../src/core/errors.js';
import {
  NetnsHandle,
  connectInNetns,
  listenInNetns,
  originalDestination,
  socketMark,
  type OriginalDst,
} from '../../src/sys/netns-socket.js';
import { createTestNetwork, listNetns, ownNetnsInode, threadNetns, trackConnections, type TestLink, type TestNetwork } from '../helpers/netns.js';

const ZTUNNEL_MARK = 0x539;

function captureRules(ip6: boolean): string[][] {
  const lo = ip6 ? '::1/128' : '127.0.0.1/32';
  return [
    ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '!', '-d', lo, '-m', 'mark', '!', '--mark', '0x539/0xfff', '-j', 'REDIRECT', '--to-ports', '15001'],
    ['-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '!', '--dport', '15008', '-j', 'REDIRECT', '--to-ports', '15006'],
  ];
}

/** Reads everything a socket sends until it ends. */
function readAll(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.once('end', () => resolve(data));
    socket.once('error', reject);
  });
}

const unmap = (a: string | undefined) => (a ?? '').replace(/^::ffff:/, '');

describe('sys: capture in a pod namespace (iptables REDIRECT, SO_ORIGINAL_DST, SO_MARK)', () => {
  let network: TestNetwork;
  let link: TestLink;
  let pod: NetnsHandle;
  let peer: NetnsHandle;
  let netnsBefore: number;
  let threadsBefore: string[];
  const closers: Array<() => Promise<void>> = [];

  // What the capture listeners saw.
  const outboundSeen: Array<OriginalDst & { remote: string }> = [];
  const inboundSeen: OriginalDst[] = [];
  const hboneSeen: Array<{ local: string; localPort: number; original: OriginalDst | AmbitError }> = [];
  const upstreamMarks: number[] = [];
  const proxyUpstreamPorts = new Set<number>();
  const outboundErrors: unknown[] = [];

  before(async () => {
    netnsBefore = ownNetnsInode();
    threadsBefore = threadNetns();
    network = await createTestNetwork('syscap', { links: [['pod', 'peer']] });
    link = network.links()[0]!;
    for (const rule of captureRules(false)) await network.run('pod', 'iptables', rule);
    for (const rule of captureRules(true)) await network.run('pod', 'ip6tables', rule);
    pod = NetnsHandle.open(network.ns('pod'));
    peer = NetnsHandle.open(network.ns('peer'));

    // peer: an HTTP server (dual-stack) that says who connected.
    const web = await listenInNetns(peer, {
      host: '::',
      port: 8080,
      server: http.createServer((req, res) => {
        res.end(`hello from peer; you are ${unmap(req.socket.remoteAddress)} port ${req.socket.remotePort}\n`);
      }),
    });
    const webConns = trackConnections(web);
    closers.push(() => webConns.closeAll());

    // peer: a raw TCP server that tells the client the source port it saw.
    const echoPort = await listenInNetns(peer, { host: '::', port: 7000 });
    echoPort.on('connection', (s) => s.end(`${s.remotePort}\n`));
    const echoConns = trackConnections(echoPort);
    closers.push(() => echoConns.closeAll());

    // pod: outbound capture on 15001 (dual-stack), proxying to the original destination with
    // a socket marked 0x539, made in the pod's namespace.
    const outbound = await listenInNetns(pod, { host: '::', port: 15001 });
    outbound.on('connection', (down) => {
      let dst: OriginalDst;
      try {
        dst = originalDestination(down);
      } catch (e: unknown) {
        outboundErrors.push(e);
        down.destroy();
        return;
      }
      outboundSeen.push({ ...dst, remote: unmap(down.remoteAddress) });
      down.pause();
      down.on('error', () => undefined);
      connectInNetns(pod, { host: dst.address, port: dst.port, mark: ZTUNNEL_MARK, timeoutMs: 3_000 }).then(
        (up) => {
          upstreamMarks.push(socketMark(up));
          proxyUpstreamPorts.add(up.localPort ?? -1);
          up.on('error', () => down.destroy());
          down.on('close', () => up.destroy());
          up.on('close', () => down.destroy());
          down.pipe(up).pipe(down);
          down.resume();
        },
        (e: unknown) => {
          outboundErrors.push(e);
          down.destroy();
        },
      );
    });
    const outboundConns = trackConnections(outbound);
    closers.push(() => outboundConns.closeAll());

    // pod: inbound plaintext capture on 15006 (IPv4 only) and HBONE port 15008.
    const inbound = await listenInNetns(pod, { host: '0.0.0.0', port: 15006 });
    inbound.on('connection', (s) => {
      const dst = originalDestination(s);
      inboundSeen.push(dst);
      s.end(`inbound ${dst.address}:${dst.port}\n`);
    });
    const inboundConns = trackConnections(inbound);
    closers.push(() => inboundConns.closeAll());

    const hbone = await listenInNetns(pod, { host: '0.0.0.0', port: 15008 });
    hbone.on('connection', (s) => {
      let original: OriginalDst | AmbitError;
      try {
        original = originalDestination(s);
      } catch (e: unknown) {
        original = e as AmbitError;
      }
      hboneSeen.push({ local: unmap(s.localAddress), localPort: s.localPort ?? 0, original });
      s.end('hbone\n');
    });
    const hboneConns = trackConnections(hbone);
    closers.push(() => hboneConns.closeAll());
  });

  after(async () => {
    for (const close of closers.splice(0)) await close().catch(() => undefined);
    pod?.close();
    peer?.close();
    await network?.cleanup();
  });

  test('curl in the pod to the peer is captured on 15001 with its original destination, and the marked upstream reaches the peer', async () => {
    outboundSeen.length = 0;
    const r = await network.run('pod', 'curl', ['-sS', '--noproxy', '*', '--max-time', '5', `http://${link.bAddress}:8080/x`]);
    assert.match(r.stdout, /^hello from peer; you are 10\.99\.1\.1 port \d+/);
    assert.equal(outboundSeen.length, 1, 'exactly one connection was captured');
    assert.deepEqual(
      { address: outboundSeen[0]!.address, port: outboundSeen[0]!.port, family: outboundSeen[0]!.family },
      { address: link.bAddress, port: 8080, family: 'IPv4' },
    );
    // The proxy's upstream socket carried the mark (and so was not captured again).
    assert.deepEqual(upstreamMarks.slice(-1), [ZTUNNEL_MARK]);
    const port = Number(/port (\d+)/.exec(r.stdout)![1]);
    assert.ok(proxyUpstreamPorts.has(port), 'the peer saw the proxy, not curl');
    assert.deepEqual(outboundErrors, []);
  });

  test('IPv6: curl -6 is captured too and IP6T_SO_ORIGINAL_DST gives the v6 destination', async () => {
    outboundSeen.length = 0;
    const r = await network.run('pod', 'curl', ['-sS', '-g', '--noproxy', '*', '--max-time', '5', `http://[${link.bAddress6}]:8080/`]);
    assert.match(r.stdout, /^hello from peer; you are fd00:99:1::1 port \d+/);
    assert.equal(outboundSeen.length, 1);
    assert.deepEqual(
      { address: outboundSeen[0]!.address, port: outboundSeen[0]!.port, family: outboundSeen[0]!.family },
      { address: link.bAddress6, port: 8080, family: 'IPv6' },
    );
  });

  // mark -> captured? (the rule matches `! --mark 0x539/0xfff`: only the low 12 bits count)
  const markCases: Array<{ mark: number | undefined; captured: boolean }> = [
    { mark: undefined, captured: true },
    { mark: ZTUNNEL_MARK, captured: false },
    { mark: 0x1539, captured: false },
    { mark: 0x538, captured: true },
  ];
  for (const { mark, captured } of markCases) {
    test(`a socket made in the pod with mark ${mark === undefined ? 'none' : `0x${mark.toString(16)}`} is ${captured ? 'redirected to 15001' : 'not redirected'}`, async () => {
      outboundSeen.length = 0;
      const s = await connectInNetns(pod, { host: link.bAddress, port: 7000, mark, timeoutMs: 3_000 });
      try {
        assert.equal(socketMark(s), mark ?? 0);
        const seenPort = Number((await readAll(s)).trim());
        if (captured) {
          assert.equal(outboundSeen.length, 1);
          assert.deepEqual({ address: outboundSeen[0]!.address, port: outboundSeen[0]!.port }, { address: link.bAddress, port: 7000 });
          assert.notEqual(seenPort, s.localPort, 'the peer saw the capture proxy');
          assert.ok(proxyUpstreamPorts.has(seenPort));
        } else {
          assert.equal(outboundSeen.length, 0, 'not captured');
          assert.equal(seenPort, s.localPort, 'the peer saw this very socket');
        }
      } finally {
        s.destroy();
      }
    });
  }

  test('a socket made in the pod to its own loopback is not captured', async () => {
    outboundSeen.length = 0;
    const s = await connectInNetns(pod, { host: '127.0.0.1', port: 15008, timeoutMs: 3_000 });
    assert.equal(await readAll(s), 'hbone\n');
    s.destroy();
    assert.equal(outboundSeen.length, 0);
  });

  test('inbound from the peer to any pod port but 15008 lands on 15006 with its original destination', async () => {
    inboundSeen.length = 0;
    for (const port of [9090, 80]) {
      const s = await connectInNetns(peer, { host: link.aAddress, port, timeoutMs: 3_000 });
      assert.equal(await readAll(s), `inbound ${link.aAddress}:${port}\n`);
      s.destroy();
    }
    assert.deepEqual(
      inboundSeen.map((d) => `${d.family} ${d.address}:${d.port}`),
      [`IPv4 ${link.aAddress}:9090`, `IPv4 ${link.aAddress}:80`],
    );
  });

  test('inbound to 15008 is not redirected: it reaches the HBONE listener, original destination = local address', async () => {
    hboneSeen.length = 0;
    const s = await connectInNetns(peer, { host: link.aAddress, port: 15008, timeoutMs: 3_000 });
    assert.equal(await readAll(s), 'hbone\n');
    s.destroy();
    assert.equal(hboneSeen.length, 1);
    const seen = hboneSeen[0]!;
    assert.equal(seen.local, link.aAddress);
    assert.equal(seen.localPort, 15008);
    // conntrack knows the connection; un-NATed, its original destination is where it landed.
    assert.ok(!(seen.original instanceof Error), `unexpected error ${String(seen.original)}`);
    assert.equal(seen.original.address, link.aAddress);
    assert.equal(seen.original.port, 15008);
  });

  test('in a namespace without NAT rules a connection has no original destination (AMBIT_ERR_NOT_FOUND)', async () => {
    const listener = await listenInNetns(peer, { host: '0.0.0.0', port: 7100 });
    const conns = trackConnections(listener);
    try {
      const got = new Promise<unknown>((resolve) => {
        listener.once('connection', (s) => {
          try {
            resolve(originalDestination(s));
          } catch (e: unknown) {
            resolve(e);
          }
          s.destroy();
        });
      });
      const c = await connectInNetns(pod, { host: link.bAddress, port: 7100, mark: ZTUNNEL_MARK, timeoutMs: 3_000 });
      const result = await got;
      c.destroy();
      assert.ok(result instanceof AmbitError, `expected an AmbitError, got ${JSON.stringify(result)}`);
      assert.equal(result.code, 'AMBIT_ERR_NOT_FOUND');
      assert.equal((result.cause as NodeJS.ErrnoException).code, 'ENOENT');
      assert.equal((result.cause as NodeJS.ErrnoException).syscall, 'getsockopt');
    } finally {
      await conns.closeAll();
    }
  });

  test("this process's network namespace, and every thread's, is unchanged", () => {
    assert.equal(ownNetnsInode(), netnsBefore);
    const threads = threadNetns();
    assert.ok(threads.length >= 1);
    assert.ok(threads.every((t) => t === threadsBefore[0]), `threads in: ${[...new Set(threads)].join(', ')}`);
  });

  test('cleanup removes every namespace of the test network', async () => {
    for (const close of closers.splice(0)) await close();
    pod.close();
    peer.close();
    await network.cleanup();
    const left = (await listNetns()).filter((n) => n.startsWith(network.prefix));
    assert.deepEqual(left, []);
  });
});
