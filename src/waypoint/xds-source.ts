// The waypoint (or sidecar) as an xDS client: the ztunnel's xDS source with Ambit's
// ConfigResource type added — a wildcard delta subscription to the workload API (services and
// endpoints) and to the L7 config objects. Each update becomes a new (state, objects) pair;
// while the control plane is away the last good config keeps serving.
import type { Logger } from '../core/logger.js';
import type { ConfigObject } from '../xds/config-resource.js';
import type { ClientTlsOptions, TokenSource } from '../xds/credentials.js';
import type { MeshView } from '../dataplane/mesh-view.js';
import { XdsSource } from '../dataplane/xds-source.js';

export interface WaypointXdsOptions {
  address: string;
  /** `<node>~<pod>.<namespace>`: the proxy of that pod, authenticated with its own credential. */
  nodeId: string;
  token?: TokenSource;
  tls?: ClientTlsOptions;
  logger: Logger;
  /** Also subscribe to istio.security.Authorization (a sidecar needs PeerAuthentication's converted policies). */
  authorizations?: boolean;
  /** ADS user agent (default ambit-waypoint). */
  userAgent?: string;
  onConfig(state: MeshView, objects: ConfigObject[], version: string): void;
}

export class WaypointXdsSource extends XdsSource {
  constructor(opts: WaypointXdsOptions) {
    super({
      address: opts.address, node: opts.nodeId, token: opts.token, tls: opts.tls, logger: opts.logger,
      userAgent: opts.userAgent ?? 'ambit-waypoint', authorizations: opts.authorizations ?? false, configObjects: true,
      onState: (state, objects) => opts.onConfig(state, objects, state.version),
    });
  }
}
