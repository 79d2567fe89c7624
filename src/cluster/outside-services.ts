// What runs on the outside host for the daemon: the cluster's upstream DNS resolver (in the
// daemon's own process, with sockets made inside the outside host's namespace) and, for the
// demo, the partner API. Closed with the daemon.
import type { Logger } from '../core/logger.js';
import { describeError } from '../core/errors.js';
import { ZoneServer } from '../dns/zone-server.js';
import type { NodeInfo } from '../model/types.js';
import { createOutsideHost, outsideSockets } from './outside-host.js';
import type { ClusterSpec } from './state-dir.js';

export interface OutsideServices {
  close(): void;
}

export async function startOutside(spec: ClusterSpec, nodes: readonly NodeInfo[], logger: Logger): Promise<OutsideServices> {
  const o = spec.outside!;
  const ns = await createOutsideHost(spec.prefix, nodes, o.ip);
  const zone = new ZoneServer({ records: Object.fromEntries(o.hosts.map((h) => [h, [o.ip]])) });
  const sockets = await outsideSockets(spec.prefix, o.ip, 53);
  zone.attach(sockets.udp, sockets.tcp);
  logger.info('outside host ready', { netns: ns, address: o.ip, dns: `${o.ip}:53`, names: o.hosts });
  let partner: { close(): void } | undefined;
  if (o.demoPartner) {
    try {
      const { startDemoPartner } = await import('./partner-demo.js');
      partner = await startDemoPartner(spec.stateDir, spec.prefix, o.ip);
      logger.info('demo partner API listening', { url: `https://${o.hosts[0] ?? o.ip}/`, address: `${o.ip}:443` });
    } catch (e: unknown) {
      logger.error('the demo partner API did not start', { error: describeError(e).message });
    }
  }
  return { close: () => { sockets.close(); partner?.close(); } };
}
