// The ztunnel as an xDS client of the control plane: a wildcard delta subscription to the
// workload API; each update becomes a new MeshView. Waypoints and sidecars use the same
// source with Ambit's ConfigResource type added (their L7 config objects). A resource the ztunnel cannot
// decode is NACKed by the ADS client with its reason while the rest applies; while the
// control plane is away the last good state keeps serving.
//
// Fail closed on partial config: a state is made only from one whole push of every type
// (push-version.ts). Until the first one, the proxy has no state and serves no workload; a
// push half received (its Address but not yet its Authorization, or one chunk of several)
// keeps the previous state serving.
//
// The state is one MeshView updated in place: each response's upserts and removals are
// held until their push is whole, then applied as one delta (work proportional to the change,
// not to the mesh).
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { AdsClient, type AdsStateEvent, type AdsUpdate } from '../xds/ads-client.js';
import { addressResourceType, authorizationResourceType } from '../xds/codec.js';
import { configResourceType, type ConfigObject } from '../xds/config-resource.js';
import type { ClientTlsOptions, TokenSource } from '../xds/credentials.js';
import type { Address, Authorization, Service, Workload } from '../xds/workload-api.js';
import { MESH_SETTINGS_NAME, meshSettingsType, type MeshSettings } from '../xds/mesh-settings.js';
import { MeshView, type WorkloadApiDelta } from './mesh-view.js';

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
  /**
   * Subscribe to Ambit's MeshSettings (outbound policy, ServiceEntry visibility). Off by
   * default: a client waits for every type it subscribes to, and a control plane that does not
   * serve this one would never let it apply a push. Ambit's ztunnel command turns it on.
   */
  meshSettings?: boolean;
  onState(state: MeshView, configObjects: ConfigObject[]): void;
  onConnection?(e: AdsStateEvent): void;
}

export class XdsSource {
  private readonly client: AdsClient;
  private version = 0;
  /** Updates held back because they were part of a push not yet whole. */
  private partial = 0;
  private readonly state = new MeshView();
  /** Received and not yet applied, per type: name -> value, or null for a removal. */
  private readonly pending = new Map<string, Map<string, unknown>>();
  private started = false;

  constructor(private readonly opts: XdsSourceOptions) {
    this.client = new AdsClient({
      address: opts.address,
      node: { id: opts.node, userAgentName: opts.userAgent ?? 'ambit-ztunnel' },
      types: [
        addressResourceType,
        ...(opts.authorizations ?? true ? [authorizationResourceType] : []),
        ...(opts.configObjects ? [configResourceType] : []),
        ...(opts.meshSettings ? [meshSettingsType] : []),
      ],
      token: opts.token,
      tls: opts.tls,
      logger: opts.logger.child({ scope: 'xds' }),
      clock: opts.clock,
    });
    this.client.on('update', (u) => {
      this.hold(u);
      this.rebuild();
    });
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

  private hold(u: AdsUpdate): void {
    let m = this.pending.get(u.typeUrl);
    if (!m) this.pending.set(u.typeUrl, (m = new Map()));
    for (const name of u.removed) m.set(name, null);
    for (const r of u.upserted) m.set(r.name, r.value);
  }

  private rebuild(): void {
    if (!this.client.holdsWholePush()) {
      this.partial++;
      return;
    }
    const delta: Required<WorkloadApiDelta> = {
      workloads: { upsert: [], remove: [] }, services: { upsert: [], remove: [] }, authorizations: { upsert: [], remove: [] },
    };
    for (const [name, v] of this.pending.get(addressResourceType.typeUrl) ?? []) {
      const a = v as Address | null;
      if (!a || !a.workload) (delta.workloads.remove as string[]).push(name);
      if (!a || !a.service) (delta.services.remove as string[]).push(name);
      if (a?.workload) (delta.workloads.upsert as Workload[]).push(a.workload);
      if (a?.service) (delta.services.upsert as Service[]).push(a.service);
    }
    for (const [name, v] of this.pending.get(authorizationResourceType.typeUrl) ?? []) {
      if (v === null) (delta.authorizations.remove as string[]).push(name);
      else (delta.authorizations.upsert as Authorization[]).push(v as Authorization);
    }
    const configChanged = this.pending.has(configResourceType.typeUrl);
    this.pending.clear();
    this.version++;
    if (this.opts.meshSettings) this.state.mesh = this.client.resources(meshSettingsType).get(MESH_SETTINGS_NAME)?.value as MeshSettings | undefined ?? this.state.mesh;
    this.state.apply(delta, `xds-${this.version}`);
    if (configChanged || !this.started) this.objects = this.opts.configObjects ? [...this.client.resources(configResourceType).values()].map((r) => r.value as ConfigObject) : [];
    this.started = true;
    this.opts.onState(this.state, this.objects);
  }

  private objects: ConfigObject[] = [];
}
