// Who is calling, and how a refusal becomes a gRPC status. Shared by the ADS server and the CA
// service.
//
// Invariants:
// - An Authenticator sees the call's metadata, peer address and TLS peer certificate (when the
//   server uses TLS), and returns { ok: true, caller } or { ok: false, message } (status
//   UNAUTHENTICATED unless it says PERMISSION_DENIED). A thrown error also rejects the call,
//   as UNAUTHENTICATED, and is logged: an authenticator bug never lets a call through.
// - Without an authenticator every call is accepted as an anonymous caller (local development
//   over plaintext; the control plane always sets one in production).
// - toStatus() maps errors to gRPC statuses: GrpcStatusError keeps its status; AmbitError
//   AMBIT_ERR_PERMISSION / AMBIT_ERR_CSR_IDENTITY -> PERMISSION_DENIED, AMBIT_ERR_USAGE /
//   AMBIT_ERR_CONFIG_INVALID -> INVALID_ARGUMENT; anything else -> INTERNAL. The message is
//   kept, so the caller reads the same words the server logged.
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { AmbitError } from '../core/errors.js';

export type GrpcStatusName = keyof typeof grpc.status;

export class GrpcStatusError extends AmbitError {
  readonly status: GrpcStatusName;
  constructor(status: GrpcStatusName, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(status === 'UNAUTHENTICATED' || status === 'PERMISSION_DENIED' ? 'AMBIT_ERR_PERMISSION' : 'AMBIT_ERR_XDS', message, options);
    this.name = 'GrpcStatusError';
    this.status = status;
  }
}

export interface CallContext {
  metadata: grpc.Metadata;
  /** The peer's address as grpc-js reports it (e.g. `127.0.0.1:53412`). */
  peer: string;
  /** `authorization: Bearer <token>`, if present. */
  bearerToken: string | undefined;
  /** The verified client certificate, on a TLS server that asked for one. */
  peerCertificate: PeerCertificate | undefined;
}

/** What the server knows about an authenticated caller. */
export interface Caller {
  /** The node this caller may act for (a ztunnel's node); checked against the ADS Node.id. */
  nodeId?: string;
  /** An authenticated identity (a SPIFFE ID, a service account), for logs and authorization. */
  identity?: string;
  /** The caller is the proxy of this one pod (a waypoint replica, a sidecar): it acts for that pod only. */
  pod?: { namespace: string; name: string };
  attributes?: Record<string, string>;
}

export type AuthResult =
  | { ok: true; caller: Caller }
  | { ok: false; message: string; status?: 'UNAUTHENTICATED' | 'PERMISSION_DENIED' };

export type Authenticator = (ctx: CallContext) => AuthResult | Promise<AuthResult>;

export function bearerToken(metadata: grpc.Metadata): string | undefined {
  for (const v of metadata.get('authorization')) {
    const s = typeof v === 'string' ? v : v.toString('utf8');
    const m = /^Bearer\s+(.+)$/i.exec(s.trim());
    if (m) return m[1];
  }
  return undefined;
}

interface AuthCall {
  metadata: grpc.Metadata;
  getPeer(): string;
  getAuthContext?(): { sslPeerCertificate?: PeerCertificate };
}

export function callContext(call: AuthCall): CallContext {
  let peerCertificate: PeerCertificate | undefined;
  try {
    const cert = call.getAuthContext?.().sslPeerCertificate;
    // Node gives an empty object when the client sent no certificate.
    if (cert && Object.keys(cert).length > 0) peerCertificate = cert;
  } catch {
    peerCertificate = undefined;
  }
  return { metadata: call.metadata, peer: call.getPeer(), bearerToken: bearerToken(call.metadata), peerCertificate };
}

/** Runs the authenticator; never throws. */
export async function authenticateCall(authenticate: Authenticator | undefined, ctx: CallContext): Promise<AuthResult> {
  if (!authenticate) return { ok: true, caller: {} };
  try {
    return await authenticate(ctx);
  } catch (e: unknown) {
    return { ok: false, status: 'UNAUTHENTICATED', message: `authentication failed: ${e instanceof Error ? e.message : String(e)}` };
  }
}

export function toStatus(e: unknown): { code: grpc.status; details: string } {
  if (e instanceof GrpcStatusError) return { code: grpc.status[e.status], details: e.message };
  if (e instanceof AmbitError) {
    switch (e.code) {
      case 'AMBIT_ERR_PERMISSION':
      case 'AMBIT_ERR_CSR_IDENTITY':
        return { code: grpc.status.PERMISSION_DENIED, details: e.message };
      case 'AMBIT_ERR_USAGE':
      case 'AMBIT_ERR_CONFIG_INVALID':
        return { code: grpc.status.INVALID_ARGUMENT, details: e.message };
      default:
        return { code: grpc.status.INTERNAL, details: e.message };
    }
  }
  return { code: grpc.status.INTERNAL, details: e instanceof Error ? e.message : String(e) };
}

export function statusName(code: number | undefined): string {
  if (code === undefined) return 'UNKNOWN';
  return grpc.status[code] ?? String(code);
}
