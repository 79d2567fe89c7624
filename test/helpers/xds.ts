// Helpers for the xds direct tests: an ADS server on loopback, a client with fast backoff, a
// raw stream that speaks the protocol by hand, and polling.
import * as grpc from '@grpc/grpc-js';
import { memoryLogger, type Logger } from '../../src/core/logger.js';
import { AdsClient, type AdsClientOptions, type AdsUpdate } from '../../src/xds/ads-client.js';
import { AdsServer, type AdsServerOptions } from '../../src/xds/ads-server.js';
import type { DeltaRequestOut, DeltaResponse } from '../../src/xds/ads-types.js';
import { addressResourceType, authorizationResourceType } from '../../src/xds/codec.js';
import { bindServer, serverCredentials, type ServerTlsOptions } from '../../src/xds/credentials.js';
import { ADS_DELTA_PATH, ADS_SERVICE, grpcDefinitions } from '../../src/xds/protos.js';
import { waitFor } from './wait.js';

/** Lets pending I/O and setImmediate flushes run (for "nothing else happened" checks). */
export async function settle(ms = 50): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

export interface RunningAds {
  grpcServer: grpc.Server;
  ads: AdsServer;
  port: number;
  address: string;
  logs: Record<string, unknown>[];
  stop(): void;
}

export async function startAds(
  options: Partial<AdsServerOptions> = {},
  listen = '127.0.0.1:0',
  tls?: ServerTlsOptions,
): Promise<RunningAds> {
  const { logger, lines } = memoryLogger({ level: 'debug' });
  const ads = new AdsServer({ logger, ...options });
  const grpcServer = new grpc.Server();
  ads.register(grpcServer);
  const port = await bindServer(grpcServer, listen, serverCredentials(tls));
  return {
    grpcServer, ads, port, address: `127.0.0.1:${port}`, logs: lines,
    stop: () => {
      ads.close();
      grpcServer.forceShutdown();
    },
  };
}

export interface TestClient {
  client: AdsClient;
  updates: AdsUpdate[];
  states: string[];
  logger: Logger;
  logs: Record<string, unknown>[];
}

export function startClient(address: string, options: Partial<AdsClientOptions> = {}): TestClient {
  const { logger, lines } = memoryLogger({ level: 'debug' });
  const client = new AdsClient({
    address,
    node: { id: 'ztunnel~node-a' },
    types: [addressResourceType, authorizationResourceType],
    logger,
    backoff: { initialMs: 20, maxMs: 100 },
    ...options,
  });
  const updates: AdsUpdate[] = [];
  const states: string[] = [];
  client.on('update', (u) => updates.push(u));
  client.on('state', (s) => states.push(s.state));
  client.start();
  return { client, updates, states, logger, logs: lines };
}

/** A hand-driven ADS stream: sends what the test says, records every response, never ACKs by itself. */
export class RawStream {
  readonly responses: DeltaResponse[] = [];
  status: grpc.StatusObject | undefined;
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<DeltaRequestOut, DeltaResponse>;

  constructor(address: string, metadata = new grpc.Metadata()) {
    const method = (grpcDefinitions()[ADS_SERVICE] as unknown as grpc.ServiceDefinition)
      .DeltaAggregatedResources as grpc.MethodDefinition<DeltaRequestOut, DeltaResponse>;
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
    this.call = this.client.makeBidiStreamRequest(ADS_DELTA_PATH, method.requestSerialize, method.responseDeserialize, metadata);
    this.call.on('data', (r: DeltaResponse) => this.responses.push(r));
    this.call.on('error', () => undefined);
    this.call.on('status', (s: grpc.StatusObject) => { this.status = s; });
  }

  send(req: DeltaRequestOut): void {
    this.call.write(req);
  }

  async next(count: number, what = `${count} responses`): Promise<DeltaResponse> {
    await waitFor(what, () => this.responses.length >= count);
    return this.responses[count - 1] as DeltaResponse;
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}
