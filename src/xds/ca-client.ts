// Client of the mesh CA: istio.v1.auth.IstioCertificateService/CreateCertificate.
//
// Invariants:
// - A node proxy asking for a workload's certificate sets impersonatedIdentity: it travels as
//   the request's metadata Struct field "ImpersonatedIdentity" (a string), as Istio's ztunnel
//   sends it. Without it the certificate is for the caller's own identity.
// - The bearer token rides in call metadata (see credentials.ts). Each call has a deadline
//   (timeoutMs, default 10 s).
// - Failures reject with AmbitError AMBIT_ERR_CA whose message names the gRPC status and the
//   server's words; details.grpcStatus carries the status name (PERMISSION_DENIED, ...). An
//   empty chain is a failure too.
// - The proxies load no grpc-js and no proto-loader: the call goes over grpc-lite.ts (one
//   HTTP/2 session, reopened on the next call after it closed) and the messages are the
//   generated ones (messages.ts).
import type * as grpc from '@grpc/grpc-js';
import { AmbitError } from '../core/errors.js';
import type { ClientTlsOptions, TokenSource } from './credentials.js';
import { bearerMetadata, GrpcCallError, GrpcCode, grpcStatusName, GrpcLiteChannel } from './grpc-lite.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { CA_CREATE_PATH, messageCodec, type MessageCodec } from './messages.js';
import { IstioCertificateRequestSchema, IstioCertificateResponseSchema, type IstioCertificateResponse } from './gen/istio/ca_pb.js';

export const IMPERSONATED_IDENTITY_KEY = 'ImpersonatedIdentity';

export interface CaClientOptions {
  /** `host:port` of the CA (the control plane, 15012 with TLS). */
  address: string;
  tls?: ClientTlsOptions;
  token?: TokenSource;
  /** Deadline of each request; default 10 s. */
  timeoutMs?: number;
  /** Honoured: grpc.max_receive_message_length, grpc.default_authority; the rest is ignored. */
  channelOptions?: grpc.ChannelOptions;
}

export interface CreateCertificateRequest {
  csrPem: string;
  ttlSeconds: number;
  /** SPIFFE ID of the workload a node proxy asks for. */
  impersonatedIdentity?: string;
}


export class CaClient {
  private readonly options: CaClientOptions;
  private readonly client: GrpcLiteChannel;
  private readonly request: MessageCodec<typeof IstioCertificateRequestSchema>;
  private readonly response: MessageCodec<typeof IstioCertificateResponseSchema>;

  constructor(options: CaClientOptions) {
    this.options = options;
    const extra = options.channelOptions ?? {};
    const maxReceive = extra['grpc.max_receive_message_length'];
    const authority = extra['grpc.default_authority'];
    this.client = new GrpcLiteChannel({
      address: options.address,
      ...(options.tls ? { tls: options.tls } : {}),
      ...(typeof maxReceive === 'number' && maxReceive >= 0 ? { maxReceiveMessageBytes: maxReceive } : {}),
      ...(typeof authority === 'string' ? { authority } : {}),
    });
    this.request = messageCodec(IstioCertificateRequestSchema);
    this.response = messageCodec(IstioCertificateResponseSchema);
  }

  /** Resolves to the PEM chain, leaf first, root last. */
  async createCertificate(req: CreateCertificateRequest): Promise<string[]> {
    const body: MessageInitShape<typeof IstioCertificateRequestSchema> = { csr: req.csrPem, validityDuration: BigInt(req.ttlSeconds) };
    if (req.impersonatedIdentity) body.metadata = { [IMPERSONATED_IDENTITY_KEY]: req.impersonatedIdentity };
    let metadata: Record<string, string>;
    try {
      metadata = await bearerMetadata(this.options.token);
    } catch (e: unknown) {
      throw new AmbitError('AMBIT_ERR_CA', `cannot get a token for the CA request: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const who = req.impersonatedIdentity ? ` for ${req.impersonatedIdentity}` : '';
    let resp: IstioCertificateResponse;
    try {
      const bytes = await this.client.unary(CA_CREATE_PATH, this.request.serialize(body), metadata, this.options.timeoutMs ?? 10_000);
      try {
        resp = this.response.deserialize(bytes);
      } catch (e: unknown) {
        throw new GrpcCallError({ code: GrpcCode.INTERNAL, details: `Response message parsing error: ${e instanceof Error ? e.message : String(e)}`, metadata: {} });
      }
    } catch (e: unknown) {
      const code = e instanceof GrpcCallError ? e.code : GrpcCode.INTERNAL;
      const message = e instanceof GrpcCallError ? e.details || e.message : e instanceof Error ? e.message : String(e);
      const status = grpcStatusName(code);
      throw new AmbitError('AMBIT_ERR_CA', `the CA at ${this.options.address} refused the certificate request${who}: ${status}: ${message}`, {
        cause: e,
        hint: status === 'UNAVAILABLE' ? 'is the control plane running and reachable on this address?'
          : status === 'PERMISSION_DENIED' ? 'a node may only ask for the identities of workloads scheduled on it'
            : undefined,
        details: { grpcStatus: status, grpcCode: code },
      });
    }
    if (resp.certChain.length === 0) {
      throw new AmbitError('AMBIT_ERR_CA', `the CA at ${this.options.address} returned an empty certificate chain${who}`, { details: { grpcStatus: 'OK' } });
    }
    return resp.certChain;
  }

  close(): void {
    this.client.close();
  }
}
