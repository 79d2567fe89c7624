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
import * as grpc from '@grpc/grpc-js';
import { AmbitError } from '../core/errors.js';
import { statusName } from './call-auth.js';
import { callMetadata, channelCredentials, channelOptions, type ClientTlsOptions, type TokenSource } from './credentials.js';
import { CA_CREATE_PATH, CA_SERVICE, grpcDefinitions } from './protos.js';
import { toStruct, type PbStruct } from './struct.js';

export const IMPERSONATED_IDENTITY_KEY = 'ImpersonatedIdentity';

export interface CaClientOptions {
  /** `host:port` of the CA (the control plane, 15012 with TLS). */
  address: string;
  tls?: ClientTlsOptions;
  token?: TokenSource;
  /** Deadline of each request; default 10 s. */
  timeoutMs?: number;
  channelOptions?: grpc.ChannelOptions;
}

export interface CreateCertificateRequest {
  csrPem: string;
  ttlSeconds: number;
  /** SPIFFE ID of the workload a node proxy asks for. */
  impersonatedIdentity?: string;
}

interface PbCertRequest {
  csr: string;
  validityDuration: number;
  metadata?: PbStruct;
}

interface PbCertResponse {
  certChain: string[];
}

export class CaClient {
  private readonly options: CaClientOptions;
  private readonly client: grpc.Client;
  private readonly method: grpc.MethodDefinition<PbCertRequest, PbCertResponse>;

  constructor(options: CaClientOptions) {
    this.options = options;
    this.client = new grpc.Client(options.address, channelCredentials(options.tls), channelOptions(options.tls, options.channelOptions));
    this.method = (grpcDefinitions()[CA_SERVICE] as unknown as grpc.ServiceDefinition)
      .CreateCertificate as grpc.MethodDefinition<PbCertRequest, PbCertResponse>;
  }

  /** Resolves to the PEM chain, leaf first, root last. */
  async createCertificate(req: CreateCertificateRequest): Promise<string[]> {
    const body: PbCertRequest = { csr: req.csrPem, validityDuration: req.ttlSeconds };
    if (req.impersonatedIdentity) body.metadata = toStruct({ [IMPERSONATED_IDENTITY_KEY]: req.impersonatedIdentity });
    let metadata: grpc.Metadata;
    try {
      metadata = await callMetadata(this.options.token);
    } catch (e: unknown) {
      throw new AmbitError('AMBIT_ERR_CA', `cannot get a token for the CA request: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const who = req.impersonatedIdentity ? ` for ${req.impersonatedIdentity}` : '';
    const resp = await new Promise<PbCertResponse>((resolve, reject) => {
      this.client.makeUnaryRequest(
        CA_CREATE_PATH, this.method.requestSerialize, this.method.responseDeserialize, body, metadata,
        { deadline: Date.now() + (this.options.timeoutMs ?? 10_000) },
        (e: grpc.ServiceError | null, value?: PbCertResponse) => {
          if (e) {
            const status = statusName(e.code);
            reject(new AmbitError('AMBIT_ERR_CA', `the CA at ${this.options.address} refused the certificate request${who}: ${status}: ${e.details || e.message}`, {
              cause: e,
              hint: status === 'UNAVAILABLE' ? 'is the control plane running and reachable on this address?'
                : status === 'PERMISSION_DENIED' ? 'a node may only ask for the identities of workloads scheduled on it'
                  : undefined,
              details: { grpcStatus: status, grpcCode: e.code },
            }));
          } else {
            resolve(value ?? { certChain: [] });
          }
        },
      );
    });
    if (resp.certChain.length === 0) {
      throw new AmbitError('AMBIT_ERR_CA', `the CA at ${this.options.address} returned an empty certificate chain${who}`, { details: { grpcStatus: 'OK' } });
    }
    return resp.certChain;
  }

  close(): void {
    this.client.close();
  }
}
