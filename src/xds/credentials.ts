// Transport and call credentials for the control plane's gRPC (ADS and CA), client and server.
//
// Invariants:
// - No `tls` option means plaintext (port 15010, local development); with `tls` the client
//   verifies the server against rootCertPem (port 15012).
// - The bearer token rides in call metadata (`authorization: Bearer <token>`), not as gRPC
//   call credentials, so it works over plaintext too (grpc-js refuses call credentials on an
//   insecure channel). A TokenSource is asked for every new call, so a rotated token is used
//   on the next reconnect.
// - Each client owns its channel and uses a local subchannel pool: its reconnect backoff is
//   its own, not shared with (or delayed by) another client's channel to the same address.
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';

export interface ClientTlsOptions {
  /** PEM trust anchors for the server's certificate. */
  rootCertPem: string;
  /** Client certificate chain and key, for mutual TLS. */
  certChainPem?: string;
  privateKeyPem?: string;
  /** Expected server name, when it differs from the address's host (sets the SNI and authority). */
  serverName?: string;
  /** Replace the hostname check (e.g. to check a SPIFFE URI SAN instead); return an Error to refuse. */
  checkServerIdentity?: (hostname: string, cert: PeerCertificate) => Error | undefined;
}

export interface ServerTlsOptions {
  certChainPem: string;
  privateKeyPem: string;
  /** Trust anchors for client certificates; with requireClientCert, mutual TLS. */
  clientRootCertPem?: string;
  requireClientCert?: boolean;
}

export type TokenSource = string | (() => string | Promise<string>);

export function channelCredentials(tls: ClientTlsOptions | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(
    Buffer.from(tls.rootCertPem),
    tls.privateKeyPem ? Buffer.from(tls.privateKeyPem) : null,
    tls.certChainPem ? Buffer.from(tls.certChainPem) : null,
    tls.checkServerIdentity ? { checkServerIdentity: tls.checkServerIdentity } : {},
  );
}

export function channelOptions(tls: ClientTlsOptions | undefined, extra: grpc.ChannelOptions = {}): grpc.ChannelOptions {
  const o: grpc.ChannelOptions = {
    'grpc.use_local_subchannel_pool': 1,
    // Workload API snapshots of a large mesh exceed gRPC's 4 MiB default.
    'grpc.max_receive_message_length': 256 * 1024 * 1024,
    ...extra,
  };
  if (tls?.serverName) {
    o['grpc.ssl_target_name_override'] = tls.serverName;
    o['grpc.default_authority'] = tls.serverName;
  }
  return o;
}

export function serverCredentials(tls: ServerTlsOptions | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(
    tls.clientRootCertPem ? Buffer.from(tls.clientRootCertPem) : null,
    [{ cert_chain: Buffer.from(tls.certChainPem), private_key: Buffer.from(tls.privateKeyPem) }],
    tls.requireClientCert ?? false,
  );
}

/** Binds a gRPC server to `host:port` (port 0 picks one); resolves to the bound port. */
export function bindServer(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, creds, (e, port) => (e ? reject(e) : resolve(port)));
  });
}

export async function callMetadata(token: TokenSource | undefined): Promise<grpc.Metadata> {
  const md = new grpc.Metadata();
  if (token !== undefined) {
    const t = typeof token === 'string' ? token : await token();
    if (t) md.set('authorization', `Bearer ${t}`);
  }
  return md;
}
