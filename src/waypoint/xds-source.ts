// The waypoint as an xDS client: a wildcard delta subscription to the workload API (services
// and endpoints) and to Ambit's ConfigResource type (its L7 config). Each update becomes a new
// (state, objects) pair; while the control plane is away the last good config keeps serving.
import type { Logger } from '../core/logger.js';
import { AdsClient } from '../xds/ads-client.js';
import { addressResourceType, authorizationResourceType } from '../xds/codec.js';
import { configResourceType, type ConfigObject } from '../xds/config-resource.js';
import type { TokenSource } from '../xds/credentials.js';
import type { Address, Authorization } from '../xds/workload-api.js';
import { ZtunnelState } from '../ztunnel/state.js';

export interface WaypointXdsOptions {
  address: string;
  /** `<node>~<pod>.<namespace>`: a proxy of that node, authenticated with the node's credential. */
  nodeId: string;
  token?: TokenSource;
  logger: Logger;
  /** Also subscribe to istio.security.Authorization (a sidecar needs PeerAuthentication's converted policies). */
  authorizations?: boolean;
  /** ADS user agent (default ambit-waypoint). */
  userAgent?: string;
  onConfig(state: ZtunnelState, objects: ConfigObject[], version: string): void;
}

export class WaypointXdsSource {
  private readonly client: AdsClient;
  private version = 0;

  constructor(private readonly opts: WaypointXdsOptions) {
    this.client = new AdsClient({
      address: opts.address,
      node: { id: opts.nodeId, userAgentName: opts.userAgent ?? 'ambit-waypoint' },
      types: opts.authorizations ? [addressResourceType, configResourceType, authorizationResourceType] : [addressResourceType, configResourceType],
      token: opts.token,
      logger: opts.logger.child({ scope: 'xds' }),
    });
    this.client.on('update', () => this.rebuild());
    this.client.on('state', (e) => {
      if (e.state === 'disconnected') opts.logger.warn('control plane unreachable; serving the last good config', { attempt: e.attempt, retryInMs: e.retryInMs, error: e.error?.message });
      if (e.state === 'connected') opts.logger.info('connected to the control plane', { address: opts.address });
    });
  }

  start(): void {
    this.client.start();
  }

  waitForSync(): Promise<void> {
    return this.client.waitForSync();
  }

  status() {
    return this.client.status();
  }

  close(): void {
    this.client.close();
  }

  private rebuild(): void {
    const addresses = [...this.client.resources(addressResourceType).values()].map((r) => r.value as Address);
    const objects = [...this.client.resources(configResourceType).values()].map((r) => r.value as ConfigObject);
    this.version++;
    const version = `xds-${this.version}`;
    this.opts.onConfig(new ZtunnelState({
      workloads: addresses.flatMap((a) => (a.workload ? [a.workload] : [])),
      services: addresses.flatMap((a) => (a.service ? [a.service] : [])),
      authorizations: this.opts.authorizations ? [...this.client.resources(authorizationResourceType).values()].map((r) => r.value as Authorization) : [],
    }, version), objects, version);
  }
}
