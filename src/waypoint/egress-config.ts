// What an egress waypoint knows about the ServiceEntry hosts it serves (pure, compiled once
// per config): which Services of the workload API are ServiceEntries (for policy binding by
// `targetRefs: [{kind: ServiceEntry, group: networking.istio.io}]` and for telemetry), how
// their endpoints are reached (resolution), and the TLS the waypoint originates to them
// (DestinationRule trafficPolicy.tls, with certificates from Secrets).
//
// Invariants:
// - The DestinationRule of a host is the oldest whose host covers it, looked for in the
//   ServiceEntry's namespace, then the waypoint's, then the root namespace; portLevelSettings
//   of the service port override the rule's tls.
// - `credentialName` names a Secret in the waypoint's own namespace (Istio: "the namespace of
//   the proxy using the certificates"): tls.crt + tls.key (the client certificate, MUTUAL) and
//   ca.crt (to verify the server; else `<name>-cacert`'s ca.crt; else the system roots). A
//   missing or unusable Secret makes the origination an error: requests get 503, never a
//   connection without the TLS the operator asked for.
// - Key material lives only in the compiled TlsOrigination objects; `describe` (config_dump)
//   shows the Secret's name and which keys were found, never their content.
import { createHash } from 'node:crypto';
import type { ClientTlsSettings, DestinationRuleResource, SecretResource, ServiceEntryResource } from '../config/egress-resources.js';
import { creationAge } from '../config/resources.js';
import { CA_CERT_KEY, checkSecretMaterial, secretValue, TLS_CERT_KEY, TLS_KEY_KEY } from '../config/secret-data.js';
import { hostCovers } from '../config/validate-egress-set.js';
import { byCodeUnits } from '../core/compare.js';
import type { Service } from '../xds/workload-api.js';

export interface TlsOrigination {
  mode: 'SIMPLE' | 'MUTUAL';
  sni?: string;
  subjectAltNames: string[];
  insecureSkipVerify: boolean;
  /** PEM; absent: the system roots. */
  ca?: string;
  cert?: string;
  key?: string;
  /** `ns/name` of the Secret, for logs. */
  credential?: string;
  /** Why the origination cannot be done (a request then gets 503). */
  error?: string;
  /** Identifies the settings and material, so connection pools never mix two of them. */
  id: string;
  /** `ns/name` of the DestinationRule. */
  rule: string;
}

export interface EgressEntry {
  kind: 'ServiceEntry';
  namespace: string;
  name: string;
  host: string;
  resolution: string;
  location: string;
  ports: { number: number; name: string; protocol: string; targetPort?: number }[];
  /** The TLS to originate towards the endpoint for a service port, if any. */
  tls(servicePort: number): TlsOrigination | undefined;
}

export interface EgressTable {
  /** The ServiceEntry host behind a workload-API Service, if it is one. */
  entryOf(service: Service): EgressEntry | undefined;
  /** For /config_dump: entries and their TLS, without key material. */
  describe(): Record<string, unknown>[];
}

export function compileEgress(input: {
  objects: readonly { kind: string }[];
  waypointNamespace: string;
  rootNamespace: string;
}): { table: EgressTable; warnings: string[] } {
  const warnings: string[] = [];
  const of = <T>(kind: string): T[] => input.objects.filter((o) => o.kind === kind) as unknown as T[];
  const entries = of<ServiceEntryResource>('ServiceEntry');
  const rules = of<DestinationRuleResource>('DestinationRule').sort((a, b) => creationAge(a) - creationAge(b) || byCodeUnits(`${a.metadata.namespace}/${a.metadata.name}`, `${b.metadata.namespace}/${b.metadata.name}`));
  const secrets = new Map(of<SecretResource>('Secret').map((s) => [`${s.metadata.namespace ?? 'default'}/${s.metadata.name}`, s]));
  const byKey = new Map<string, EgressEntry>();
  for (const se of entries) {
    const ns = se.metadata.namespace ?? 'default';
    for (const host of se.spec.hosts) {
      const key = `${ns}/${host}`;
      if (byKey.has(key)) continue;
      const rule = [ns, input.waypointNamespace, input.rootNamespace]
        .map((n) => rules.find((r) => (r.metadata.namespace ?? 'default') === n && hostCovers(r.spec.host, host)))
        .find((r) => r !== undefined);
      const cache = new Map<number, TlsOrigination | undefined>();
      byKey.set(key, {
        kind: 'ServiceEntry', namespace: ns, name: se.metadata.name, host,
        resolution: se.spec.resolution ?? 'NONE', location: se.spec.location ?? 'MESH_EXTERNAL',
        ports: (se.spec.ports ?? []).map((p) => ({ number: p.number, name: p.name, protocol: (p.protocol ?? 'TCP').toUpperCase(), targetPort: p.targetPort })),
        tls: (port) => {
          if (!cache.has(port)) cache.set(port, rule ? origination(rule, port, host, input.waypointNamespace, secrets, warnings) : undefined);
          return cache.get(port);
        },
      });
    }
  }
  // Compile every TLS setting now, so problems show up as config warnings, not per request.
  for (const e of byKey.values()) for (const p of e.ports) e.tls(p.number);
  return {
    warnings,
    table: {
      entryOf: (s) => byKey.get(`${s.namespace}/${s.hostname}`),
      describe: () => [...byKey.values()].map((e) => ({
        serviceEntry: `${e.namespace}/${e.name}`, host: e.host, resolution: e.resolution, location: e.location,
        ports: e.ports.map((p) => {
          const t = e.tls(p.number);
          return { port: p.number, protocol: p.protocol, targetPort: p.targetPort ?? p.number, tls: t ? {
            mode: t.mode, rule: t.rule, sni: t.sni ?? null, subjectAltNames: t.subjectAltNames, credential: t.credential ?? null,
            material: { ca: t.ca ? 'present' : 'system roots', clientCertificate: t.cert ? 'present' : 'none' }, error: t.error ?? null,
          } : null };
        }),
      })),
    },
  };
}

function origination(rule: DestinationRuleResource, port: number, host: string, waypointNs: string, secrets: ReadonlyMap<string, SecretResource>, warnings: string[]): TlsOrigination | undefined {
  const ref = `${rule.metadata.namespace ?? 'default'}/${rule.metadata.name}`;
  const tp = rule.spec.trafficPolicy;
  const t: ClientTlsSettings | undefined = tp?.portLevelSettings?.find((p) => p.port?.number === port)?.tls ?? tp?.tls;
  if (!t || (t.mode !== 'SIMPLE' && t.mode !== 'MUTUAL')) return undefined;
  const o: TlsOrigination = {
    mode: t.mode, sni: t.sni, subjectAltNames: t.subjectAltNames ?? [], insecureSkipVerify: t.insecureSkipVerify === true, rule: ref, id: '',
  };
  if (t.credentialName) {
    const key = `${waypointNs}/${t.credentialName}`;
    o.credential = key;
    const secret = secrets.get(key);
    if (!secret) {
      o.error = `Secret ${key} (credentialName of DestinationRule ${ref}) is not available to this waypoint`;
    } else {
      const problems = checkSecretMaterial(secret, Date.now()).filter((p) => p.severity === 'error');
      if (problems.length) o.error = `Secret ${key}: ${problems.map((p) => p.message).join('; ')}`;
      o.cert = secretValue(secret, TLS_CERT_KEY)?.toString('utf8');
      o.key = secretValue(secret, TLS_KEY_KEY)?.toString('utf8');
      o.ca = secretValue(secret, CA_CERT_KEY)?.toString('utf8') ?? (secrets.get(`${key}-cacert`) && secretValue(secrets.get(`${key}-cacert`)!, CA_CERT_KEY)?.toString('utf8'));
      if (t.mode === 'MUTUAL' && (!o.cert || !o.key)) o.error ??= `Secret ${key} has no ${TLS_CERT_KEY} and ${TLS_KEY_KEY} for mutual TLS`;
    }
  } else if (t.mode === 'MUTUAL') {
    o.error = `DestinationRule ${ref}: mode MUTUAL needs credentialName`;
  }
  if (o.error) warnings.push(`egress ${host}:${port}: ${o.error}; requests get 503`);
  o.id = createHash('sha256').update(JSON.stringify([o.mode, o.sni, o.subjectAltNames, o.insecureSkipVerify, o.ca, o.cert, o.key, o.error])).digest('hex').slice(0, 16);
  return o;
}
