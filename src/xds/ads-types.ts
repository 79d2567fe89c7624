// Shapes shared by the ADS server and client: resources, the requests and responses as
// proto-loader presents them (camelCase; google.protobuf.Any keeps `type_url`), and the
// status the server reports for /debug/syncz.
import type { Caller } from './call-auth.js';
import type { JsonObject, PbStruct } from './struct.js';

/** A resource as the control plane hands it to the server. */
export interface AdsResource {
  name: string;
  /** Opaque version; defaults to a hash of `body`, so an unchanged body is never re-sent. */
  version?: string;
  /** The encoded message (the Any's value), e.g. codec.encodeAddress(). */
  body: Uint8Array;
}

/** A resource as the server holds it: the envoy Resource message encoded once, sent to many. */
export interface ServerResource {
  name: string;
  version: string;
  /** Bytes of envoy.service.discovery.v3.Resource{name, version, resource: Any}. */
  wire: Buffer;
}

// ---- messages as proto-loader (de)serializes them (see protos.ts LOADER_OPTIONS) ----

export interface PbNode {
  id: string;
  cluster: string;
  metadata: PbStruct | null;
  userAgentName: string;
}

export interface PbStatus {
  code: number;
  message: string;
}

export interface DeltaRequest {
  node: PbNode | null;
  typeUrl: string;
  resourceNamesSubscribe: string[];
  resourceNamesUnsubscribe: string[];
  initialResourceVersions: Record<string, string>;
  responseNonce: string;
  errorDetail: PbStatus | null;
}

export interface DeltaRequestOut {
  node?: { id: string; cluster?: string; metadata?: PbStruct; userAgentName?: string };
  typeUrl: string;
  resourceNamesSubscribe?: string[];
  resourceNamesUnsubscribe?: string[];
  initialResourceVersions?: Record<string, string>;
  responseNonce?: string;
  errorDetail?: { code: number; message: string };
}

export interface PbAny {
  // protobufjs's bundled Any keeps snake_case even with keepCase false.
  type_url: string;
  value: Buffer;
}

export interface PbResource {
  name: string;
  version: string;
  aliases: string[];
  resource: PbAny | null;
}

export interface DeltaResponse {
  systemVersionInfo: string;
  resources: PbResource[];
  typeUrl: string;
  removedResources: string[];
  nonce: string;
}

// ---- server status (/debug/syncz) and counters ----

export interface AdsNode {
  id: string;
  cluster: string;
  metadata: JsonObject;
  userAgentName: string;
}

/** What a filter and the control plane know about a connected client. */
export interface AdsClientInfo {
  /** Unique per stream (`<server instance>-<n>`). */
  streamId: string;
  nodeId: string;
  node: AdsNode;
  caller: Caller;
  peer: string;
  connectedAtMs: number;
}

export interface AdsPendingStatus {
  nonce: string;
  sentAt: string;
  resources: number;
  removals: number;
  bytes: number;
}

export interface AdsNackStatus {
  nonce: string;
  at: string;
  code: number;
  message: string;
  /** The type version that response carried. */
  version: string;
}

export interface AdsTypeStatus {
  typeUrl: string;
  wildcard: boolean;
  subscribed: string[];
  /** The server's type version (system_version_info) in the last response sent / ACKed. */
  versionSent: string;
  versionAcked: string;
  /** Resources the client has (or will have) / has ACKed. */
  resourcesSent: number;
  resourcesAcked: number;
  lastNonce: string;
  lastAckedNonce: string;
  pending: AdsPendingStatus[];
  acks: number;
  nacks: number;
  lastNack?: AdsNackStatus;
}

export interface AdsClientStatus {
  streamId: string;
  nodeId: string;
  peer: string;
  identity?: string;
  connectedSince: string;
  bytesSent: number;
  types: AdsTypeStatus[];
}

export interface AdsServerStatus {
  types: { typeUrl: string; version: string; resources: number; ready: boolean }[];
  clients: AdsClientStatus[];
}

export interface LatencyStat {
  count: number;
  sumMs: number;
  maxMs: number;
}

/** Plain numbers for the control plane's metrics. All but connectedClients only grow. */
export interface AdsServerCounters {
  connectedClients: number;
  streamsOpened: number;
  streamsRejected: number;
  responsesSent: number;
  resourcesSent: number;
  removalsSent: number;
  bytesSent: number;
  acks: number;
  nacks: number;
  /** Subscriptions to types the server does not serve (ignored). */
  unknownTypes: number;
  /** From a change reaching the server to the response carrying it being written. */
  pushLatency: LatencyStat;
  /** From a change reaching the server to the client's ACK of the response carrying it. */
  changeToAckLatency: LatencyStat;
}
