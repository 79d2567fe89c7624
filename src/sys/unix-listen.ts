// A server on a unix socket only its owner may use: a stale socket file is removed first, the
// new one is made 0600 (root's control sockets: the daemon's, the node agent's). After it
// listens, its errors are passed to onError (Node would otherwise throw them).
import { chmodSync, rmSync } from 'node:fs';
import type net from 'node:net';

export async function listenUnix(server: net.Server, path: string, onError: (e: Error) => void = () => {}): Promise<void> {
  rmSync(path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => { server.off('error', reject); resolve(); });
  });
  chmodSync(path, 0o600);
  server.on('error', onError);
}
