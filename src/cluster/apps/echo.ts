// `ambit app echo`: the built-in demo and test server. One port speaks HTTP/1.1, HTTP/2
// cleartext (h2c, so gRPC-style clients work) and raw TCP echo, chosen by the first bytes a
// client sends. HTTP answers describe who answered (pod, namespace, node, version) and what
// arrived (method, path, headers, protocol, peer), as JSON.
//
// Test hooks, by path: /status/<code> answers that code; /delay/<ms> waits first;
// /flaky answers 503 to every other request (per process); /stream/<bytes> sends that many.
// An HTTP/1.1 request with an Upgrade header (a WebSocket handshake, say) is answered 101 and
// the connection then echoes whatever bytes arrive.
import { sleep } from '../../core/clock.js';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { Duplex } from 'node:stream';

export interface EchoOptions {
  port: number;
  host?: string;
  env?: NodeJS.ProcessEnv;
  /** Called for every HTTP request (the command logs it: one JSON line on stderr). */
  onRequest?(r: { method: string; path: string; host: string; protocol: string }): void;
}

const HTTP_METHOD = /^(GET|HEAD|POST|PUT|DELETE|CONNECT|OPTIONS|TRACE|PATCH) /;
const H2_PREFACE = 'PRI * HTTP/2.0';

export async function startEcho(opts: EchoOptions): Promise<net.Server> {
  const env = opts.env ?? process.env;
  const who = {
    pod: env.POD_NAME ?? 'unknown',
    namespace: env.POD_NAMESPACE ?? 'unknown',
    node: env.NODE_NAME ?? 'unknown',
    ip: env.POD_IP ?? 'unknown',
    serviceAccount: env.SERVICE_ACCOUNT ?? 'default',
    version: env.VERSION ?? labels(env).version ?? 'v1',
    app: labels(env).app ?? 'echo',
  };
  let flaky = 0;
  const handle = (method: string, path: string, headers: Record<string, unknown>, protocol: string, remote: string | undefined,
    respond: (status: number, body: string, headers?: Record<string, string>) => void) => {
    const url = new URL(path, 'http://x');
    opts.onRequest?.({ method, path, host: String(headers[':authority'] ?? headers.host ?? ''), protocol });
    let status = 200;
    const m = /^\/status\/(\d{3})$/.exec(url.pathname);
    if (m) status = Number(m[1]);
    if (url.pathname === '/flaky') status = flaky++ % 2 === 0 ? 503 : 200;
    const d = /^\/delay\/(\d+)$/.exec(url.pathname);
    const s = /^\/stream\/(\d+)$/.exec(url.pathname);
    const body = s ? 'x'.repeat(Math.min(Number(s[1]), 64 * 1024 * 1024))
      : JSON.stringify({ ...who, method, path, protocol, remote, headers }) + '\n';
    const send = () => respond(status, body, { 'content-type': s ? 'text/plain' : 'application/json', 'x-echo-pod': who.pod, 'x-echo-version': who.version });
    if (d) void sleep(Math.min(Number(d[1]), 60_000)).then(send);
    else send();
  };

  const h1 = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => handle(req.method ?? 'GET', req.url ?? '/', req.headers, `HTTP/${req.httpVersion}`, req.socket.remoteAddress,
      (status, body, headers) => { res.writeHead(status, headers); res.end(body); }));
  });
  h1.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    opts.onRequest?.({ method: req.method ?? 'GET', path: req.url ?? '/', host: req.headers.host ?? '', protocol: `HTTP/${req.httpVersion} upgrade ${req.headers.upgrade ?? ''}` });
    socket.on('error', () => {});
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${req.headers.upgrade ?? ''}\r\n\r\n`);
    if (head.length) socket.write(head);
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('end', () => socket.end());
  });
  const h2 = http2.createServer();
  h2.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    stream.resume();
    stream.on('end', () => handle(String(headers[':method']), String(headers[':path']), headers, 'HTTP/2', stream.session?.socket?.remoteAddress,
      (status, body, extra) => { stream.respond({ ':status': status, ...extra }); stream.end(body); }));
  });

  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      const head = first.subarray(0, 16).toString('latin1');
      // Node's http2 reads a net.Socket's handle directly and would miss the unshifted
      // preface; a JS duplex over the socket makes it read through the stream instead.
      if (head.startsWith(H2_PREFACE)) h2.emit('connection', Object.assign(Duplex.from({ readable: socket, writable: socket }), { remoteAddress: socket.remoteAddress }));
      else if (HTTP_METHOD.test(head)) h1.emit('connection', socket);
      else {
        // Raw TCP: echo back, half-close preserved.
        socket.pipe(socket);
      }
      socket.resume();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  return server;
}

function labels(env: NodeJS.ProcessEnv): Record<string, string> {
  try {
    return JSON.parse(env.POD_LABELS ?? '{}') as Record<string, string>;
  } catch {
    return {};
  }
}
