// The ztunnel as an xDS client (design section 5): a wildcard delta subscription to the
// workload API; each update becomes a new ZtunnelState. Waypoints and sidecars use the same
// source with Ambit's ConfigResource type added (their L7 config objects). A resource the ztunnel cannot
// decode is NACKed by the ADS client with its reason while the rest applies; while the
// control plane is away the last good state keeps serving.
//
// Fail closed on partial config: a state is made only from one whole push of every type
// (push-version.ts). Until the first one, the proxy has no state and serves no workload; a
// push half received (its Address but not yet its Authorization, or one chunk of several)
// keeps the previous state serving.
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { AdsClient, type AdsStateEvent } from '../xds/ads-client.js';
import { addressResourceType, authorizationResourceType } from '../xds/codec.js';
import { configResourceType, type ConfigObject } from '../xds/config-resource.js';
import type { ClientTlsOptions, TokenSource } from '../xds/credentials.js';
import type { Address, Authorization } from '../xds/workload-api.js';
import { ZtunnelState } from './state.js';

export interface XdsSourceOptions {
  address: string;
  node: string;
  token?: TokenSource;
  tls?: ClientTlsOptions;
  logger: Logger;
  clock?: Clock;
  /** ADS user agent (default ambit-ztunnel). */
  userAgent?: string;
  /** Subscribe to istio.security.Authorization (default true). */
  authorizations?: boolean;
  /** Also subscribe to Ambit's ConfigResource type (waypoints, sidecars). */
  configObjects?: boolean;
  onState(state: ZtunnelState, configObjects: ConfigObject[]): void;
  onConnection?(e: AdsStateEvent): void;
}

export class XdsSource {
  private readonly client: AdsClient;
  private version = 0;
  /** Updates held back because they were part of a push not yet whole. */
  private partial = 0;

  constructor(private readonly opts: XdsSourceOptions) {
    this.client = new AdsClient({
      address: opts.address,
      node: { id: opts.node, userAgentName: opts.userAgent ?? 'ambit-ztunnel' },
      types: [
        addressResourceType,
        ...(opts.authorizations ?? true ? [authorizationResourceType] : []),
        ...(opts.configObjects ? [configResourceType] : []),
      ],
      token: opts.token,
      tls: opts.tls,
      logger: opts.logger.child({ scope: 'xds' }),
      clock: opts.clock,
    });
    this.client.on('update', () => this.rebuild());
    this.client.on('state', (e) => {
      if (e.state === 'disconnected') opts.logger.warn('control plane unreachable; serving the last good config', { attempt: e.attempt, retryInMs: e.retryInMs, error: e.error?.message });
      if (e.state === 'connected') opts.logger.info('connected to the control plane', { address: opts.address });
      opts.onConnection?.(e);
    });
  }

  start(): void {
    this.client.start();
  }

  waitForSync(): Promise<void> {
    return this.client.waitForSync();
  }

  status() {
    return { ...this.client.status(), heldBackPartialPushes: this.partial };
  }

  close(): void {
    this.client.close();
  }

  private rebuild(): void {
    if (!this.client.holdsWholePush()) {
      this.partial++;
      return;
    }
    const addresses = [...this.client.resources(addressResourceType).values()].map((r) => r.value as Address);
    const authorizations = this.opts.authorizations ?? true ? [...this.client.resources(authorizationResourceType).values()].map((r) => r.value as Authorization) : [];
    const objects = this.opts.configObjects ? [...this.client.resources(configResourceType).values()].map((r) => r.value as ConfigObject) : [];
    this.version++;
    this.opts.onState(new ZtunnelState({
      workloads: addresses.flatMap((a) => (a.workload ? [a.workload] : [])),
      services: addresses.flatMap((a) => (a.service ? [a.service] : [])),
      authorizations,
    }, `xds-${this.version}`), objects);
  }
}
