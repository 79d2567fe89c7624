// The gRPC services' paths and message codecs, from the code generated from proto/ (src/xds/gen,
// `npm run proto`). The proxies' clients (grpc-lite.ts) and the control plane's servers
// (grpc-js) both (de)serialize with these, so there is one encoder and one decoder per
// message and its TypeScript type comes with it.
//
// Invariants:
// - Decoding untrusted bytes throws (the generated decoder refuses truncated or malformed
//   input); callers turn that into a gRPC status (INTERNAL for a client, the call's error for
//   the server) and never crash.
// - Serialized messages are Buffers over the encoder's bytes (no copy).
import type { DescMessage, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import { create, fromBinary, toBinary } from './protobuf-runtime.js';
import type * as grpc from '@grpc/grpc-js';

export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const ADS_DELTA_PATH = `/${ADS_SERVICE}/DeltaAggregatedResources`;
export const CA_SERVICE = 'istio.v1.auth.IstioCertificateService';
export const CA_CREATE_PATH = `/${CA_SERVICE}/CreateCertificate`;

export interface MessageCodec<Desc extends DescMessage> {
  serialize(value: MessageInitShape<Desc>): Buffer;
  deserialize(bytes: Uint8Array): MessageShape<Desc>;
}

export function messageCodec<Desc extends DescMessage>(schema: Desc): MessageCodec<Desc> {
  return {
    serialize: (value) => {
      const bytes = toBinary(schema, create(schema, value));
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    deserialize: (bytes) => fromBinary(schema, bytes),
  };
}

/** A grpc-js method definition whose messages are the generated ones (`serializeResponse` overrides how responses are written). */
export function grpcMethod<Req extends DescMessage, Res extends DescMessage>(
  path: string, request: Req, response: Res, streams: { request: boolean; response: boolean },
): grpc.MethodDefinition<MessageShape<Req>, MessageShape<Res>> {
  const req = messageCodec(request);
  const res = messageCodec(response);
  return {
    path,
    requestStream: streams.request,
    responseStream: streams.response,
    requestSerialize: (v: MessageShape<Req>) => req.serialize(v as MessageInitShape<Req>),
    requestDeserialize: (b: Buffer) => req.deserialize(b),
    responseSerialize: (v: MessageShape<Res>) => res.serialize(v as MessageInitShape<Res>),
    responseDeserialize: (b: Buffer) => res.deserialize(b),
  };
}
