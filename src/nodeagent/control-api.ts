// The node agent's operator socket: HTTP/1.1 over a unix socket (root only, 0600), read by the
// cluster daemon (`ambit status`, graceful ztunnel restarts) and by tests.
//
//   GET /pods      the pods the agent knows: captured or not, annotations, recognized rules
//   GET /ztunnels  the ztunnels connected over ZDS: PID, state (hello/syncing/synced), features
//   GET /healthz   200 once the agent serves
import { listenUnix } from '../sys/unix-listen.js';
import http from 'node:http';

export interface ControlApiOptions {
  path: string;
  pods(): unknown;
  ztunnels(): unknown;
}

export class ControlApi {
  private readonly server: http.Server;

  constructor(private readonly opts: ControlApiOptions) {
    this.server = http.createServer((req, res) => {
      const route = (req.url ?? '/').split('?')[0];
      const body = route === '/pods' ? opts.pods() : route === '/ztunnels' ? opts.ztunnels() : route === '/healthz' ? { ok: true } : undefined;
      if (req.method !== 'GET' || body === undefined) {
        res.writeHead(req.method !== 'GET' ? 405 : 404, { 'content-type': 'text/plain' }).end('GET /pods, /ztunnels or /healthz\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
    });
  }

  async listen(): Promise<void> {
    await listenUnix(this.server, this.opts.path);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** GET a path of an agent's control socket (for the daemon, the CLI and tests). */
export function agentGet<T>(socketPath: string, path: string, timeoutMs = 3000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const req = http.get({ socketPath, path, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T);
        } catch (e: unknown) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${socketPath} in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}
