// ZDS over real unix SOCK_SEQPACKET sockets with real file descriptors (SCM_RIGHTS), each side
// against a test peer written here from the protocol, not from our other side:
//  - the node agent's server (src/nodeagent/zds-server.ts) against a test ztunnel: hello,
//    snapshot with the netns fd and the listening sockets, snapshot_sent, add/del, a refused
//    add, protocol errors (no hello, bad version, an Ack nobody asked for, fds from a ztunnel);
//  - the ztunnel's client (src/ztunnel/zds-client.ts) against a test agent: hello with the
//    listener-handoff feature, adds with good and bad fds, missing fd, malformed and truncated
//    frames, unknown uids, fds on a del, snapshot_sent forgetting what was not sent — every bad
//    request answered by an Ack with an error, no fd leaked, the client still working after.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../src/core/clock.js';
import { Logger } from '../../src/core/logger.js';
import { loadNative } from '../../src/sys/native.js';
import { closeFds, SeqpacketConnection, SeqpacketServer, type SeqpacketMessage } from '../../src/sys/seqpacket.js';
import { decodeAck, decodeRequest, encodeAck, encodeHello, encodeRequest, type WorkloadRequest } from '../../src/xds/zds.js';
import { ZdsServer, type ZdsPod } from '../../src/nodeagent/zds-server.js';
import { ZdsClient } from '../../src/ztunnel/zds-client.js';
import { waitFor } from '../helpers/wait.js';


const logger = new Logger({ component: 'test', level: 'error' });
const native = loadNative();
const openFds = () => readdirSync('/proc/self/fd').length;

/** Messages of a connection, awaited one at a time. */
function inbox(conn: SeqpacketConnection): () => Promise<SeqpacketMessage> {
  const queue: SeqpacketMessage[] = [];
  const waiting: Array<(m: SeqpacketMessage) => void> = [];
  conn.on('message', (m: SeqpacketMessage) => {
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  return () => new Promise((resolve, reject) => {
    const m = queue.shift();
    if (m) return resolve(m);
    const t = setTimeout(() => reject(new Error('no message in 5 s')), 5000);
    waiting.push((x) => { clearTimeout(t); resolve(x); });
  });
}

function tcpListener(): { fd: number; port: number } {
  const fd = native.makeSocket({ family: 4, bindAddress: '127.0.0.1', bindPort: 0, listen: true });
  return { fd, port: native.fdInfo(fd).port! };
}

describe('ZDS: the node agent side against a test ztunnel', () => {
  let dir: string;
  let server: ZdsServer;
  const pods = new Map<string, ZdsPod>();
  let netnsFd: number;
  let listeners: Array<{ fd: number; port: number }>;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ambit-zds-'));
    netnsFd = native.openNetns('/proc/self/ns/net');
    listeners = [tcpListener(), tcpListener()];
    pods.set('uid-a', { uid: 'uid-a', info: { name: 'a', namespace: 'demo', serviceAccount: 'sa' }, netnsFd, listeners: new Map(listeners.map((l) => [l.port, l.fd])) });
    server = new ZdsServer({
      path: join(dir, 'ztunnel.sock'), clock: systemClock, logger, helloTimeoutMs: 300, ackTimeoutMs: 2000,
      snapshot: () => [...pods.keys()], lookup: (uid) => pods.get(uid),
    });
    server.listen();
  });

  after(() => {
    server.close();
    closeFds([netnsFd, ...listeners.map((l) => l.fd)]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('hello, a snapshot with the netns fd and the listening sockets, snapshot_sent, then add and del', async () => {
    const z = SeqpacketConnection.connect(join(dir, 'ztunnel.sock'));
    const next = inbox(z);
    await z.send(encodeHello({ version: 1, features: ['listener-handoff'] }));
    const add = await next();
    const req = decodeRequest(add.data);
    assert.deepEqual(req, { ok: true, value: { kind: 'add', uid: 'uid-a', info: { name: 'a', namespace: 'demo', serviceAccount: 'sa' }, listenerPorts: listeners.map((l) => l.port) } });
    assert.equal(add.fds.length, 3, 'the netns fd and two listening sockets');
    assert.equal(native.fdInfo(add.fds[0]!).kind, 'netns');
    assert.equal(native.fdInfo(add.fds[0]!).ino, native.fdInfo(netnsFd).ino, 'the very namespace');
    assert.deepEqual(add.fds.slice(1).map((fd) => native.fdInfo(fd).port), listeners.map((l) => l.port), 'the very sockets, in port order');
    closeFds(add.fds);
    assert.equal(server.status()[0]!.state, 'syncing');
    await z.send(encodeAck());
    assert.deepEqual(decodeRequest((await next()).data), { ok: true, value: { kind: 'snapshot_sent' } });
    await z.send(encodeAck());
    await waitFor('synced, named by our PID', () => server.status().some((c) => c.state === 'synced' && c.pid === process.pid), 2000);

    pods.set('uid-b', { uid: 'uid-b', info: { name: 'b', namespace: 'demo', serviceAccount: 'sa' }, netnsFd, listeners: new Map() });
    const outcome = server.add('uid-b');
    const b = await next();
    assert.equal(decodeRequest(b.data).ok && (decodeRequest(b.data) as { value: WorkloadRequest }).value.kind, 'add');
    assert.equal(b.fds.length, 1);
    closeFds(b.fds);
    await z.send(encodeAck('cannot serve b'));
    assert.deepEqual(await outcome, { sent: true, error: 'cannot serve b' }, 'a refusal reaches the caller');

    const del = server.del('uid-b');
    assert.deepEqual(decodeRequest((await next()).data), { ok: true, value: { kind: 'del', uid: 'uid-b' } });
    await z.send(encodeAck());
    await del;
    pods.delete('uid-b');
    z.close();
    await waitFor('the connection is gone', () => server.status().length === 0, 2000);
  });

  test('an add for a pod released while it waited is not sent', async () => {
    assert.deepEqual(await server.add('uid-gone'), { sent: false, reason: 'no ztunnel is connected' });
    const z = SeqpacketConnection.connect(join(dir, 'ztunnel.sock'));
    const next = inbox(z);
    await z.send(encodeHello({ version: 1, features: [] }));
    const add = await next();
    assert.equal(add.fds.length, 1, 'no listener-handoff: only the netns fd');
    closeFds(add.fds);
    const pending = server.add('uid-gone'); // queued behind the snapshot
    await z.send(encodeAck());
    await next(); // snapshot_sent
    await z.send(encodeAck());
    assert.deepEqual(await pending, { sent: false, reason: 'the pod is no longer captured' });
    z.close();
  });

  const protocolErrors: Array<[string, (z: SeqpacketConnection) => Promise<void>]> = [
    ['no hello in time', async () => undefined],
    ['a hello with another version', async (z) => z.send(encodeHello({ version: 7, features: [] }))],
    ['garbage instead of a hello', async (z) => z.send(Buffer.from([0xff, 0xff]))],
    ['fds from the ztunnel', async (z) => z.send(encodeHello({ version: 1, features: [] }), [netnsFd])],
    ['an Ack nobody asked for, after the snapshot', async (z) => {
      const next = inbox(z);
      await z.send(encodeHello({ version: 1, features: [] }));
      closeFds((await next()).fds);
      await z.send(encodeAck());
      await next();
      await z.send(encodeAck());
      await z.send(encodeAck()); // answers nothing
    }],
  ];
  for (const [name, act] of protocolErrors) {
    test(`protocol error closes only that connection: ${name}`, async () => {
      const z = SeqpacketConnection.connect(join(dir, 'ztunnel.sock'));
      const closed = new Promise<void>((resolve) => z.once('close', () => resolve()));
      await act(z);
      await closed;
      // The server still serves a well-behaved ztunnel.
      const ok = SeqpacketConnection.connect(join(dir, 'ztunnel.sock'));
      const next = inbox(ok);
      await ok.send(encodeHello({ version: 1, features: [] }));
      const m = await next();
      assert.equal(decodeRequest(m.data).ok, true);
      closeFds(m.fds);
      ok.close();
    });
  }
});

describe('ZDS: the ztunnel side against a test agent', () => {
  let dir: string;
  let agent: SeqpacketServer;
  let client: ZdsClient;
  let peer: SeqpacketConnection;
  let next: () => Promise<SeqpacketMessage>;
  let changes = 0;
  let fdsBefore = 0;
  let netnsFd: number;

  const ask = async (data: Uint8Array, fds: number[] = []): Promise<string> => {
    await peer.send(data, fds);
    const m = await next();
    const ack = decodeAck(m.data);
    assert.ok(ack.ok, 'every request gets a WorkloadResponse');
    return ack.ok ? ack.value.error : '';
  };
  const add = (uid: string, ports: number[] = []): Uint8Array => encodeRequest({ kind: 'add', uid, info: { name: uid, namespace: 'demo', serviceAccount: 'sa' }, listenerPorts: ports });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ambit-zdsc-'));
    netnsFd = native.openNetns('/proc/self/ns/net');
    agent = new SeqpacketServer();
    agent.listen(join(dir, 'ztunnel.sock'));
    const connected = new Promise<SeqpacketConnection>((resolve) => agent.once('connection', resolve));
    fdsBefore = openFds();
    client = new ZdsClient({ path: join(dir, 'ztunnel.sock'), clock: systemClock, logger, onChange: () => { changes++; }, ready: () => ({ ready: true }), reconnectMs: 100 });
    client.start();
    peer = await connected;
    next = inbox(peer);
  });

  after(() => {
    client.close();
    agent.close();
    closeFds([netnsFd]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('the ztunnel says hello first, V1, with listener-handoff', async () => {
    const m = await next();
    assert.equal(m.data.toString('hex').slice(0, 4), '0801');
    assert.match(m.data.toString('latin1'), /listener-handoff/);
  });

  test('add with the netns fd and matching listeners is accepted; the pod is served from them', async () => {
    const l = tcpListener();
    const dup = native.dupFd(netnsFd);
    assert.equal(await ask(add('pod-a', [l.port]), [dup, l.fd]), '');
    closeFds([l.fd, dup]); // ours; the client keeps its own copies
    const w = client.lookup('demo', 'pod-a');
    assert.ok(w, 'registered');
    assert.equal(native.fdInfo(w!.netnsFd).kind, 'netns');
    assert.equal(native.fdInfo(w!.listeners.get(l.port)!).port, l.port);
    assert.ok(changes > 0);
  });

  const refusals: Array<[string, () => [Uint8Array, number[]], RegExp]> = [
    ['add without any fd (missing fd)', () => [add('pod-x'), []], /no network namespace fd/],
    ['add whose fd is not a netns', () => { const l = tcpListener(); return [add('pod-x'), [l.fd]]; }, /not a network namespace/],
    ['add with fewer fds than listener ports', () => [add('pod-x', [15001]), [native.dupFd(netnsFd)]], /listener port/],
    ['add whose listener is on another port', () => { const l = tcpListener(); return [add('pod-x', [l.port + 1 === 65536 ? 1 : l.port + 1]), [native.dupFd(netnsFd), l.fd]]; }, /not a listening TCP socket/],
    ['add without workload_info', () => [encodeRequest({ kind: 'add', uid: 'pod-x', info: undefined, listenerPorts: [] }), [native.dupFd(netnsFd)]], /workload_info/],
    ['malformed frame', () => [Buffer.from([0x0a, 0xff, 0xff, 0xff]), []], /malformed/],
    ['malformed frame carrying an fd', () => [Buffer.from([0x0a, 0xff]), [native.dupFd(netnsFd)]], /malformed/],
    ['a frame larger than 64 KiB (truncated)', () => [Buffer.alloc(70_000, 0x0a), []], /truncated/],
    ['del of an unknown uid', () => [encodeRequest({ kind: 'del', uid: 'nobody' }), []], /unknown workload/],
    ['keep of an unknown uid', () => [encodeRequest({ kind: 'keep', uid: 'nobody' }), []], /unknown workload/],
    ['fds on a del', () => [encodeRequest({ kind: 'del', uid: 'pod-a' }), [native.dupFd(netnsFd)]], /unexpected file descriptors/],
  ];
  for (const [name, make, why] of refusals) {
    test(`refused with an Ack error, nothing changes, no fd leaks: ${name}`, async () => {
      const fds = openFds();
      const [data, sent] = make();
      const error = await ask(data, sent);
      closeFds(sent); // our copies
      assert.match(error, why);
      assert.equal(client.lookup('demo', 'pod-x'), undefined, 'nothing half-added');
      assert.ok(client.lookup('demo', 'pod-a'), 'the served pod is untouched');
      await waitFor(`fds back to ${fds} (now ${openFds()})`, () => openFds() <= fds, 2000);
    });
  }

  test('keep and snapshot_sent: what was not sent on this connection is forgotten', async () => {
    const dup = native.dupFd(netnsFd);
    assert.equal(await ask(add('pod-b'), [dup]), '');
    closeFds([dup]);
    assert.equal(await ask(encodeRequest({ kind: 'keep', uid: 'pod-a' })), '');
    assert.equal(await ask(encodeRequest({ kind: 'snapshot_sent' })), '');
    assert.ok(client.lookup('demo', 'pod-a') && client.lookup('demo', 'pod-b'), 'both were sent (add / keep)');
    assert.equal(client.synced, true);
  });

  test('del forgets a pod and closes its fds; a reconnecting agent\'s snapshot replaces the rest', async () => {
    assert.equal(await ask(encodeRequest({ kind: 'del', uid: 'pod-b' })), '');
    assert.equal(client.lookup('demo', 'pod-b'), undefined);
    const again = new Promise<SeqpacketConnection>((resolve) => agent.once('connection', resolve));
    peer.close();
    peer = await again;
    next = inbox(peer);
    await next(); // hello
    assert.ok(client.lookup('demo', 'pod-a'), 'losing the agent changes nothing served');
    assert.equal(await ask(encodeRequest({ kind: 'snapshot_sent' })), '');
    assert.equal(client.lookup('demo', 'pod-a'), undefined, 'not in the new snapshot: forgotten');
    await waitFor(`every fd of the forgotten pods closed (${openFds()} open, ${fdsBefore} before)`, () => openFds() <= fdsBefore + 2, 2000);
  });
});
