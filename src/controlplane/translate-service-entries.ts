// ServiceEntry hosts -> workload API Services and endpoint Workloads, as Istio's control plane
// builds them for ztunnels:
// - a Service per host: name/namespace of the ServiceEntry, hostname = the host, addresses = its
//   VIP (explicit or auto-allocated), ports (target port = targetPort or the port), waypoint,
//   subject_alt_names;
// - a Workload per inline endpoint, uid `<cluster>/networking.istio.io/ServiceEntry/<ns>/<name>/<address>`,
//   tunnel protocol NONE (it is not in the mesh), its `services` listing every host of the entry
//   with the endpoint's port for each service port (the endpoint's `ports` by port name, else the
//   target port); an endpoint that is a host name carries it in `hostname` and no address (the
//   proxy resolves it); resolution DNS without endpoints gives each host such a workload;
// - pods picked by workloadSelector list the hosts in their own `services` (build-model.ts).
import type { MeshModel } from '../model/mesh-model.js';
import type { ServiceEntryInfo, WaypointRef } from '../model/types.js';
import type { GatewayAddress, Service, Workload } from '../xds/workload-api.js';

export function serviceEntryApi(model: MeshModel, gatewayAddress: (ref: WaypointRef) => GatewayAddress | undefined): { services: Service[]; workloads: Workload[] } {
  const { settings } = model;
  const services: Service[] = [];
  const workloads = new Map<string, Workload>();
  for (const e of model.serviceEntries) {
    services.push({
      name: e.name,
      namespace: e.namespace,
      hostname: e.host,
      addresses: e.vip ? [{ network: settings.network, address: e.vip }] : [],
      ports: e.ports.map((p) => ({ servicePort: p.port, targetPort: typeof p.targetPort === 'number' ? p.targetPort : p.port })),
      subjectAltNames: [...e.subjectAltNames],
      waypoint: e.waypoint ? gatewayAddress(e.waypoint) : undefined,
    });
    for (const ep of e.endpoints) {
      const id = ep.address ?? ep.hostname!;
      // A host that resolves itself has its own workload; inline endpoints are shared by the hosts.
      const uid = `${settings.clusterId}/networking.istio.io/ServiceEntry/${e.namespace}/${e.name}/${id}`;
      let w = workloads.get(uid);
      if (!w) {
        w = {
          uid, name: e.name, namespace: e.namespace, addresses: ep.address ? [ep.address] : [], network: settings.network,
          tunnelProtocol: 'NONE', trustDomain: settings.trustDomain, serviceAccount: ep.serviceAccount ?? '', node: '',
          canonicalName: ep.labels.app ?? e.name, canonicalRevision: ep.labels.version ?? 'latest', workloadType: 'POD', workloadName: e.name,
          authorizationPolicies: [], status: 'HEALTHY', clusterId: settings.clusterId, services: {},
          ...(ep.hostname ? { hostname: ep.hostname } : {}),
        };
        workloads.set(uid, w);
      }
      w.services[`${e.namespace}/${e.host}`] = { ports: e.ports.map((p) => ({ servicePort: p.port, targetPort: endpointPort(e, ep.ports, p) })) };
    }
  }
  return { services, workloads: [...workloads.values()] };
}

function endpointPort(e: ServiceEntryInfo, ports: Record<string, number>, p: ServiceEntryInfo['ports'][number]): number {
  void e;
  return ports[p.name] ?? (typeof p.targetPort === 'number' ? p.targetPort : p.port);
}
