// The C peers: an stunnel pair, an HAProxy L4 (mode tcp) mTLS pair and an HAProxy L7 (mode
// http) mTLS pair. The client-side proxy runs in the client's network namespace listening on
// 127.0.0.1, the server-side proxy in the server's namespace forwarding to 127.0.0.1, so the
// encrypted hop crosses the same pod -> node -> bridge -> node -> pod link as the mesh.
//
// Both sides use mesh-issued ECDSA P-256 certificates (`ambit ca init` / `ambit ca issue`),
// TLS 1.3 only with HBONE's suites in HBONE's order, both sides verify the chain to the mesh
// root, and neither resumes TLS sessions (HBONE never does): stunnel `sessionResume = no`,
// HAProxy `no-ssl-reuse` + `no-tls-tickets`. Neither checks the peer's SPIFFE URI SAN (they
// cannot); HBONE does, so the peers do slightly less work per handshake.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const CIPHERSUITES = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256';

export interface PeerCerts {
  root: string;
  client: { chain: string; key: string; combined: string };
  server: { chain: string; key: string; combined: string };
}

/** Makes a mesh CA and two workload certificates with the `ambit` CLI. Throws with its output on failure. */
export function issueCerts(ambit: (args: string[]) => { code: number; stdout: string; stderr: string }, dir: string, namespace: string): PeerCerts {
  mkdirSync(dir, { recursive: true });
  const ca = join(dir, 'ca');
  const must = (args: string[]) => {
    const r = ambit(args);
    if (r.code !== 0) throw new Error(`ambit ${args.join(' ')} failed: ${r.stderr}${r.stdout}`);
  };
  must(['ca', 'init', '--out', ca]);
  const one = (sa: string) => {
    const out = join(dir, sa);
    must(['ca', 'issue', '--ca', ca, '--identity', `spiffe://cluster.local/ns/${namespace}/sa/${sa}`, '--out', out, '--ttl', '2h']);
    const chain = join(out, 'cert-chain.pem');
    const key = join(out, 'key.pem');
    const combined = join(out, 'combined.pem');
    writeFileSync(combined, readFileSync(chain, 'utf8') + readFileSync(key, 'utf8'), { mode: 0o600 });
    return { chain, key, combined };
  };
  return { root: join(ca, 'root-cert.pem'), client: one('client'), server: one('server') };
}

/** One forwarded service of a pair: client side listens on 127.0.0.1:localPort, server side on tlsPort. */
export interface PairService {
  name: string;
  localPort: number;
  tlsPort: number;
  /** Where the server-side proxy delivers, in the server's namespace. */
  backendPort: number;
}

export function stunnelClientConfig(certs: PeerCerts, serverIp: string, services: PairService[]): string {
  return [
    'foreground = yes', 'debug = 3', 'pid =',
    ...services.flatMap((s) => [
      `[${s.name}]`, 'client = yes', `accept = 127.0.0.1:${s.localPort}`, `connect = ${serverIp}:${s.tlsPort}`,
      `cert = ${certs.client.chain}`, `key = ${certs.client.key}`, `CAfile = ${certs.root}`, 'verifyChain = yes',
      'sslVersionMin = TLSv1.3', `ciphersuites = ${CIPHERSUITES}`, 'sessionResume = no',
      'socket = l:TCP_NODELAY=1', 'socket = r:TCP_NODELAY=1',
    ]),
  ].join('\n') + '\n';
}

export function stunnelServerConfig(certs: PeerCerts, services: PairService[]): string {
  return [
    'foreground = yes', 'debug = 3', 'pid =',
    ...services.flatMap((s) => [
      `[${s.name}]`, `accept = 0.0.0.0:${s.tlsPort}`, `connect = 127.0.0.1:${s.backendPort}`,
      `cert = ${certs.server.chain}`, `key = ${certs.server.key}`, `CAfile = ${certs.root}`, 'verifyChain = yes',
      'sslVersionMin = TLSv1.3', `ciphersuites = ${CIPHERSUITES}`, 'options = NO_TICKET',
      'socket = l:TCP_NODELAY=1', 'socket = r:TCP_NODELAY=1',
    ]),
  ].join('\n') + '\n';
}

const HAPROXY_GLOBAL = (mode: 'tcp' | 'http') => [
  'global', '  maxconn 8000', `  ssl-default-bind-ciphersuites ${CIPHERSUITES}`, `  ssl-default-server-ciphersuites ${CIPHERSUITES}`,
  'defaults', `  mode ${mode}`, '  timeout connect 5s', '  timeout client 120s', '  timeout server 120s', '  maxconn 8000',
  ...(mode === 'http' ? ['  option http-keep-alive', '  http-reuse safe'] : []),
];

export function haproxyClientConfig(certs: PeerCerts, serverIp: string, services: PairService[], mode: 'tcp' | 'http'): string {
  return [
    ...HAPROXY_GLOBAL(mode),
    ...services.flatMap((s) => [
      `frontend ${s.name}_in`, `  bind 127.0.0.1:${s.localPort}`, `  default_backend ${s.name}_out`,
      `backend ${s.name}_out`,
      `  server peer ${serverIp}:${s.tlsPort} ssl crt ${certs.client.combined} ca-file ${certs.root} verify required ssl-min-ver TLSv1.3 no-ssl-reuse`,
    ]),
  ].join('\n') + '\n';
}

export function haproxyServerConfig(certs: PeerCerts, services: PairService[], mode: 'tcp' | 'http'): string {
  return [
    ...HAPROXY_GLOBAL(mode),
    ...services.flatMap((s) => [
      `frontend ${s.name}_in`,
      `  bind 0.0.0.0:${s.tlsPort} ssl crt ${certs.server.combined} ca-file ${certs.root} verify required ssl-min-ver TLSv1.3 no-tls-tickets`,
      `  default_backend ${s.name}_local`,
      `backend ${s.name}_local`, `  server local 127.0.0.1:${s.backendPort}`,
    ]),
  ].join('\n') + '\n';
}

/** `haproxy -c` on a config file; undefined when valid, else the complaint. */
export function checkHaproxyConfig(path: string): string | undefined {
  const r = spawnSync('haproxy', ['-c', '-q', '-f', path], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? undefined : `${r.stderr}${r.stdout}`.trim();
}
