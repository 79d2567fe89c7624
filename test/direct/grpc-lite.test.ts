// The proxies' small gRPC client against a real grpc-js server: unary and bidi calls, metadata,
// statuses and details as grpc-js reports them, deadlines, cancellation, a server going away.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { GrpcCallError, GrpcCode, GrpcLiteChannel } from '../../src/xds/grpc-lite.js';

const raw = { path: '', requestStream: false, responseStream: false, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };
let server: grpc.Server;
let address = '';
const seenAuth: string[] = [];

before(async () => {
  server = new grpc.Server();
  server.register('/t.T/Echo', (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    seenAuth.push(String(call.metadata.get('authorization')[0] ?? ''));
    const text = call.request.toString();
    if (text === 'deny') cb({ code: grpc.status.PERMISSION_DENIED, details: 'no way: 100% sure' });
    else if (text === 'slow') setTimeout(() => cb(null, Buffer.from('late')), 2000);
    else cb(null, Buffer.from(`echo:${text}`));
  }, raw.responseSerialize, raw.requestDeserialize, 'unary');
  server.register('/t.T/Chat', (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    call.on('data', (m: Buffer) => call.write(Buffer.from(`re:${m.toString()}`)));
    call.on('end', () => call.end());
  }, raw.responseSerialize, raw.requestDeserialize, 'bidi');
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  address = `127.0.0.1:${port}`;
});

after(() => server?.forceShutdown());

test('unary: the answer, the metadata sent, and a status error with grpc-js wording', async () => {
  const ch = new GrpcLiteChannel({ address });
  try {
    assert.equal((await ch.unary('/t.T/Echo', Buffer.from('hi'), { authorization: 'Bearer tok' })).toString(), 'echo:hi');
    assert.equal(seenAuth.at(-1), 'Bearer tok');
    await assert.rejects(ch.unary('/t.T/Echo', Buffer.from('deny')), (e: unknown) => {
      assert.ok(e instanceof GrpcCallError);
      assert.equal(e.code, GrpcCode.PERMISSION_DENIED);
      assert.equal(e.details, 'no way: 100% sure');
      assert.match(e.message, /^7 PERMISSION_DENIED: no way/);
      return true;
    });
    await assert.rejects(ch.unary('/t.T/Nope', Buffer.from('x')), (e: unknown) => e instanceof GrpcCallError && e.code === GrpcCode.UNIMPLEMENTED);
    await assert.rejects(ch.unary('/t.T/Echo', Buffer.from('slow'), {}, 200), (e: unknown) => e instanceof GrpcCallError && e.code === GrpcCode.DEADLINE_EXCEEDED);
  } finally {
    ch.close();
  }
});

test('bidi: messages both ways in order, then OK; cancel gives CANCELLED', async () => {
  const ch = new GrpcLiteChannel({ address });
  try {
    const s = ch.call('/t.T/Chat');
    const got: string[] = [];
    const status = new Promise<number>((resolve) => s.on('status', (st) => resolve(st.code)));
    s.on('data', (m) => got.push(Buffer.from(m).toString()));
    for (const m of ['a', 'b', 'c']) s.write(Buffer.from(m));
    s.end();
    assert.equal(await status, GrpcCode.OK);
    assert.deepEqual(got, ['re:a', 're:b', 're:c']);
    const c = ch.call('/t.T/Chat');
    const cancelled = new Promise<number>((resolve) => c.on('status', (st) => resolve(st.code)));
    c.write(Buffer.from('x'));
    c.cancel();
    assert.equal(await cancelled, GrpcCode.CANCELLED);
  } finally {
    ch.close();
  }
});

test('a server that is not there is UNAVAILABLE', async () => {
  const ch = new GrpcLiteChannel({ address: '127.0.0.1:1' });
  try {
    await assert.rejects(ch.unary('/t.T/Echo', Buffer.from('x'), {}, 2000), (e: unknown) => e instanceof GrpcCallError && e.code === GrpcCode.UNAVAILABLE);
  } finally {
    ch.close();
  }
});
