// The mesh CA's gRPC plumbing: registers istio.v1.auth.IstioCertificateService/
// CreateCertificate on a gRPC server and hands each request, decoded and authenticated, to a
// handler that decides and signs (the control plane's, built on identity/ca.ts).
//
// Invariants:
// - The caller is authenticated (options.authenticate) before the handler runs; a refusal is
//   UNAUTHENTICATED (or PERMISSION_DENIED) and the handler never sees the request.
// - Malformed requests are INVALID_ARGUMENT before the handler: an empty csr, a negative
//   validity_duration, an ImpersonatedIdentity that is not a non-empty string.
//   validity_duration 0 reaches the handler as ttlSeconds undefined (use the default).
// - The handler returns the chain or throws; the error becomes a status by call-auth.toStatus
//   (GrpcStatusError keeps its status; AMBIT_ERR_CSR_IDENTITY/PERMISSION -> PERMISSION_DENIED;
//   ...). Every refusal is logged with the caller and the reason.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../core/logger.js';
import { authenticateCall, callContext, GrpcStatusError, toStatus, type Authenticator, type Caller, type GrpcStatusName } from './call-auth.js';
import { IMPERSONATED_IDENTITY_KEY } from './ca-client.js';
import type { JsonObject } from '@bufbuild/protobuf';
import { CA_CREATE_PATH, grpcMethod } from './messages.js';
import {
  IstioCertificateRequestSchema, IstioCertificateResponseSchema, type IstioCertificateRequest as PbCertRequest,
} from './gen/istio/ca_pb.js';

export interface CaServiceRequest {
  csrPem: string;
  /** undefined when the client left validity_duration at 0. */
  ttlSeconds: number | undefined;
  impersonatedIdentity?: string;
  /** The whole request metadata Struct, as JSON. */
  metadata: JsonObject;
  caller: Caller;
  peer: string;
}

/** Returns the PEM chain (leaf first, root last) or throws (GrpcStatusError for a precise status). */
export type CaHandler = (req: CaServiceRequest) => Promise<string[]>;

export interface CaServiceOptions {
  handler: CaHandler;
  authenticate?: Authenticator;
  logger: Logger;
}

/** What the handler answers with (the response's only field). */
interface PbCertResponse {
  certChain: string[];
}

export function registerCaService(server: grpc.Server, options: CaServiceOptions): void {
  const log = options.logger.child({ part: 'ca-service' });
  const def: grpc.ServiceDefinition = {
    CreateCertificate: grpcMethod(CA_CREATE_PATH, IstioCertificateRequestSchema, IstioCertificateResponseSchema, { request: false, response: false }) as grpc.MethodDefinition<unknown, unknown>,
  };
  server.addService(def, {
    CreateCertificate: (call: grpc.ServerUnaryCall<PbCertRequest, PbCertResponse>, callback: grpc.sendUnaryData<PbCertResponse>) => {
      void handle(call, options, log).then(
        (certChain) => callback(null, { certChain }),
        (e: unknown) => {
          const st = toStatus(e);
          callback({ code: st.code, details: st.details, metadata: new grpc.Metadata() });
        },
      );
    },
  });
}

async function handle(call: grpc.ServerUnaryCall<PbCertRequest, PbCertResponse>, options: CaServiceOptions, log: Logger): Promise<string[]> {
  const ctx = callContext(call);
  const auth = await authenticateCall(options.authenticate, ctx);
  const refuse = (status: GrpcStatusName, message: string, caller?: Caller): GrpcStatusError => {
    log.warn('certificate request refused', { peer: ctx.peer, caller: caller?.identity ?? caller?.nodeId, status, reason: message });
    return new GrpcStatusError(status, message);
  };
  if (!auth.ok) throw refuse(auth.status ?? 'UNAUTHENTICATED', auth.message);
  const req = call.request;
  if (!req.csr) throw refuse('INVALID_ARGUMENT', 'the request has no CSR', auth.caller);
  if (req.validityDuration < 0n) throw refuse('INVALID_ARGUMENT', `validity_duration ${req.validityDuration} is negative`, auth.caller);
  const metadata = req.metadata ?? {};
  const imp = metadata[IMPERSONATED_IDENTITY_KEY];
  if (imp !== undefined && (typeof imp !== 'string' || imp === '')) {
    throw refuse('INVALID_ARGUMENT', `metadata ${IMPERSONATED_IDENTITY_KEY} must be a non-empty string`, auth.caller);
  }
  const request: CaServiceRequest = {
    csrPem: req.csr,
    ttlSeconds: req.validityDuration > 0n ? Number(req.validityDuration) : undefined,
    metadata,
    caller: auth.caller,
    peer: ctx.peer,
    ...(typeof imp === 'string' ? { impersonatedIdentity: imp } : {}),
  };
  try {
    return await options.handler(request);
  } catch (e: unknown) {
    const st = toStatus(e);
    throw refuse(grpc.status[st.code] as GrpcStatusName, st.details, auth.caller);
  }
}
