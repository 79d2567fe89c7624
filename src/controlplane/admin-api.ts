// The control plane's admin API (port 15014), used by the CLI: apply/delete/label/get,
// mesh status, and /debug/syncz (which proxy has ACKed which version). Bodies of apply and
// delete are YAML; answers are JSON. An invalid change is answered 422 with every diagnostic.
import { redactSecret } from './secret-scope.js';
import type http from 'node:http';
import type { Logger } from '../core/logger.js';
import type { AdminHandler, AdminResponse } from '../telemetry/admin-server.js';
import type { AdsServer } from '../xds/ads-server.js';
import type { AdsServerStatus } from '../xds/ads-types.js';
import type { ChangeResult, ConfigStore } from './config-store.js';

const MAX_BODY_BYTES = 8 * 1024 * 1024;

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED';

export interface ProxySync {
  proxy: string;
  connectedSince: string;
  types: { type: string; state: SyncState; sent: string; acked: string; served: string; nack?: string }[];
  state: SyncState;
}

/** Per proxy and type: NACKED if the last answer was a NACK, STALE if behind, else SYNCED. Pure. */
export function syncStates(status: AdsServerStatus): ProxySync[] {
  const served = new Map(status.types.map((t) => [t.typeUrl, t.version]));
  return status.clients.map((c) => {
    const types = c.types.map((t) => {
      const current = served.get(t.typeUrl) ?? '';
      const nacked = !!t.lastNack && t.lastNack.nonce === t.lastNonce;
      const state: SyncState = nacked ? 'NACKED' : t.versionAcked === current && t.pending.length === 0 ? 'SYNCED' : 'STALE';
      return { type: t.typeUrl.split('.').pop() ?? t.typeUrl, state, sent: t.versionSent, acked: t.versionAcked, served: current, nack: t.lastNack?.message };
    });
    const state: SyncState = types.some((t) => t.state === 'NACKED') ? 'NACKED' : types.some((t) => t.state === 'STALE') ? 'STALE' : 'SYNCED';
    return { proxy: c.nodeId, connectedSince: c.connectedSince, types, state };
  });
}

export function adminRoutes(deps: { store: ConfigStore; ads: AdsServer; logger: Logger; onChange?: (r: ChangeResult) => void }): Record<string, AdminHandler> {
  const { store, ads } = deps;
  const change = (r: ChangeResult): AdminResponse => {
    deps.onChange?.(r);
    return { status: r.ok ? 200 : 422, json: r };
  };
  return {
    '/debug/syncz': () => ({ json: { configVersion: store.current().version, proxies: syncStates(ads.status()), raw: ads.status() } }),
    '/api/apply': async (req) => {
      if (req.method !== 'POST') return methodNotAllowed();
      const body = await readBody(req);
      return change(store.apply([{ file: String(req.headers['x-ambit-file'] ?? 'request'), text: body }]));
    },
    '/api/delete': async (req) => {
      if (req.method !== 'POST') return methodNotAllowed();
      const body = await readBody(req);
      return change(store.delete([{ file: String(req.headers['x-ambit-file'] ?? 'request'), text: body }]));
    },
    '/api/label': async (req) => {
      if (req.method !== 'POST') return methodNotAllowed();
      const b = JSON.parse(await readBody(req)) as { kind: string; namespace?: string; name: string; labels: Record<string, string | null> };
      return change(store.label(b.kind, b.namespace, b.name, b.labels));
    },
    '/api/resources': (_req, url) => {
      const kind = url.searchParams.get('kind');
      const ns = url.searchParams.get('namespace');
      const items = store.effective().all()
        .filter((l) => !kind || l.resource.kind.toLowerCase() === kind.toLowerCase())
        .filter((l) => !ns || l.resource.metadata.namespace === ns)
        .map((l) => ({ ...redactSecret(l.resource), source: `${l.source.file}:${l.source.line}` }));
      return { json: { version: store.current().version, items } };
    },
    '/api/status': () => {
      const { model, version } = store.current();
      return {
        json: {
          version,
          nodes: model.nodes,
          workloads: [...model.workloads.values()].map((w) => ({
            uid: w.uid, namespace: w.namespace, name: w.name, node: w.node, ip: w.ip, mode: w.mode,
            identity: w.identity, serviceAccount: w.serviceAccount, waypoint: w.waypoint ?? null, waypointOf: w.waypointOf ?? null, gatewayOf: w.gatewayOf ?? null,
            containers: w.containers, securityContext: w.securityContext ?? null, labels: w.labels, annotations: w.annotations, servicePorts: w.servicePorts,
          })),
          // For the node agents' enrolment decision (model/enrolment.ts reads namespace labels).
          namespaces: [...model.namespaces.values()].map((n) => ({ name: n.name, labels: n.labels })),
          services: [...model.services.values()].map((s) => ({ namespace: s.namespace, name: s.name, hostname: s.hostname, vip: s.vip, ports: s.ports, endpoints: s.endpoints, waypoint: s.waypoint ?? null })),
          serviceEntries: model.serviceEntries.map((e) => ({ namespace: e.namespace, name: e.name, host: e.host, vip: e.vip ?? null, autoAllocated: e.autoAllocated, resolution: e.resolution, location: e.location, ports: e.ports, waypoint: e.waypoint ?? null, exportTo: e.exportTo })),
          meshConfig: model.meshConfig,
          waypoints: [...model.waypoints.values()],
        },
      };
    },
  };
}

function methodNotAllowed(): AdminResponse {
  return { status: 405, text: 'use POST\n' };
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error(`request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
