// `ambit control-plane`: serves the mesh config to proxies and runs the mesh CA.
// - Config: watched files/directories plus what operators apply through the admin API
//   (ConfigStore). Changes are debounced, validated as a whole, and pushed incrementally.
// - xDS: delta ADS with the workload API type URLs (XdsPusher + AdsServer).
// - CA: IstioCertificateService/CreateCertificate; a node may obtain only the identities
//   of workloads scheduled on it (ca-authorizer.ts).
// - Admin and monitoring (15014): /ready, /metrics (Istio's pilot_/citadel_ names),
//   /debug/syncz, and the /api/* endpoints the CLI uses.
import * as grpc from '@grpc/grpc-js';
import { readSources } from '../config/source.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { MeshCA } from '../identity/ca.js';
import { parseSpiffe } from '../identity/spiffe.js';
import type { BuildOptions } from '../model/build-model.js';
import { AdminServer } from '../telemetry/admin-server.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import type { MeshModel } from '../model/mesh-model.js';
import { AdsServer } from '../xds/ads-server.js';
import { CONFIG_RESOURCE_TYPE_URL } from '../xds/config-resource.js';
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL } from '../xds/workload-api.js';
import { registerCaService } from '../xds/ca-service.js';
import { bearerToken, GrpcStatusError, type Authenticator, type Caller } from '../xds/call-auth.js';
import { bindServer, serverCredentials } from '../xds/credentials.js';
import { adminRoutes } from './admin-api.js';
import { authorizeCertificate, type CaVerdict } from './ca-authorizer.js';
import { ConfigStore } from './config-store.js';
import { nodeForToken, type NodeTokens } from './node-credentials.js';
import { proxyForToken } from './proxy-credentials.js';
import { ServingCertificate } from './serving-certificate.js';
import { DEFAULT_WORKLOAD_TTL_SECONDS } from '../identity/ca.js';

/** What the admin API serves without its token: what Prometheus and probes read. */
const OPEN_ADMIN_PATHS: ReadonlySet<string> = new Set(['/metrics', '/stats/prometheus', '/ready', '/healthz/ready']);
import { watchPaths } from './watch.js';
import { waypointConfigObjects, XdsPusher } from './xds-push.js';
import { meshSettingsOf } from './mesh-settings.js';
import { secretConsumers, secretVisible } from './secret-scope.js';
import { proxyHintObjects } from './proxy-hints.js';
import { MESH_SETTINGS_TYPE_URL } from '../xds/mesh-settings.js';

/** Who may connect, and which certificates a caller may get (default: the local cluster's node tokens). */
export interface CallerPolicy {
  authenticate: Authenticator;
  authorizeCertificate(model: MeshModel, caller: Caller, requested: string | undefined): CaVerdict | Promise<CaVerdict>;
}

export interface ControlPlaneOptions {
  logger: Logger;
  metrics: MetricsRegistry;
  clock: Clock;
  ca: MeshCA;
  nodeTokens: NodeTokens;
  build: BuildOptions;
  /** Files or directories to watch. */
  configPaths: string[];
  xdsAddress: string;
  adminAddress: string;
  debounceMs?: number;
  /** Lifetime of issued certificates; a request for longer gets this (default 24 h). */
  certificateTtlSeconds?: number;
  /** Key of the per-proxy credentials (waypoint replicas, sidecars); without it only node credentials exist. */
  proxyKey?: Buffer;
  /** Bearer token the admin API requires for everything but metrics and readiness. */
  adminToken: string;
  /** The control plane's identity in its serving certificate (proxies check it). */
  identity: string;
  /** Serve xDS and the CA over TLS with that certificate (default true); false only for tests of plaintext peers. */
  tls?: boolean;
  callers?: CallerPolicy;
  /** Push nothing before the first config change (a source that loads in the background). */
  holdPushUntilLoaded?: boolean;
}

export class ControlPlane {
  readonly store: ConfigStore;
  readonly ads: AdsServer;
  private readonly pusher: XdsPusher;
  private readonly grpcServer = new grpc.Server({ 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  private readonly admin: AdminServer;
  private readonly serving: ServingCertificate;
  private stopWatch: (() => void) | undefined;
  private pushTimer: TimerHandle | undefined;
  private pushedVersion = -1;
  private xdsPort = 0;
  private secretUsers = new Map<string, Set<string>>();
  private readonly m;

  constructor(private readonly opts: ControlPlaneOptions) {
    this.store = new ConfigStore({ ...opts.build, logger: opts.logger.child({ scope: 'config' }) });
    const authenticate: Authenticator = opts.callers?.authenticate ?? ((ctx) => {
      const token = ctx.bearerToken ?? bearerTokenOf(ctx.metadata);
      const node = nodeForToken(opts.nodeTokens, token);
      if (node) return { ok: true, caller: { nodeId: node, identity: `node/${node}` } };
      const pod = opts.proxyKey ? proxyForToken(opts.proxyKey, token) : undefined;
      if (pod) {
        // A proxy acts for its pod only; the ADS node id it may claim is its pod's.
        const w = this.store.current().model.workloadByName(pod.namespace, pod.name);
        if (!w) return { ok: false, status: 'PERMISSION_DENIED', message: `the proxy credential of ${pod.namespace}/${pod.name} names no pod of this mesh` };
        return { ok: true, caller: { nodeId: `${w.node}~${pod.name}.${pod.namespace}`, identity: `proxy/${pod.namespace}/${pod.name}`, pod } };
      }
      return { ok: false, message: 'missing or unknown credential (Authorization: Bearer <node or proxy token>)' };
    });
    const authorize = opts.callers ? opts.callers.authorizeCertificate.bind(opts.callers) : authorizeCertificate;
    // Secrets go only to the waypoint replicas that originate TLS with them (secret-scope.ts).
    const secretFilter = (client: { nodeId: string }, typeUrl: string, name: string): boolean =>
      typeUrl !== CONFIG_RESOURCE_TYPE_URL || secretVisible(this.store.current().model, this.secretUsers, client.nodeId, name);
    this.ads = new AdsServer({ logger: opts.logger.child({ scope: 'xds' }), clock: opts.clock, authenticate, filter: secretFilter, types: [ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, CONFIG_RESOURCE_TYPE_URL, MESH_SETTINGS_TYPE_URL] });
    this.ads.register(this.grpcServer);
    this.pusher = new XdsPusher(this.ads);
    const m = opts.metrics;
    this.m = {
      pushes: m.counter({ name: 'pilot_xds_pushes', help: 'Pushes of config to proxies, by type.', labelNames: ['type'] }),
      connected: m.gauge({ name: 'pilot_xds', help: 'Connected proxies.' }),
      rejects: m.counter({ name: 'pilot_total_xds_rejects', help: 'Config NACKed by proxies.', labelNames: ['type'] }),
      convergence: m.histogram({ name: 'pilot_proxy_convergence_time', help: 'Seconds from a config change to a proxy ACKing it.', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] }),
      issued: m.counter({ name: 'citadel_server_success_cert_issuance_count', help: 'Certificates issued.' }),
      csr: m.counter({ name: 'citadel_server_csr_count', help: 'Certificate signing requests received.' }),
      refused: m.counter({ name: 'ambit_ca_certificates_refused_total', help: 'Certificate requests refused, by reason.', labelNames: ['reason'] }),
      changes: m.counter({ name: 'ambit_config_changes_total', help: 'Config changes, accepted or refused.', labelNames: ['result'] }),
      configVersion: m.gauge({ name: 'ambit_config_version', help: 'Version of the config being served.' }),
    };
    const changedAt = new Map<number, number>();
    this.ads.on('ack', () => {
      const at = changedAt.get(this.store.current().version);
      if (at !== undefined) this.m.convergence.labels({}).observe((opts.clock.now() - at) / 1000);
    });
    this.ads.on('nack', (e) => this.m.rejects.labels({ type: shortType(e.typeUrl) }).inc());
    m.addCollector(() => {
      this.m.connected.labels({}).set(this.ads.clients().length);
      this.m.configVersion.labels({}).set(this.store.current().version);
    });
    this.store.on('change', (snap) => {
      changedAt.set(snap.version, opts.clock.now());
      for (const k of changedAt.keys()) if (k < snap.version - 20) changedAt.delete(k);
      this.schedulePush();
    });
    registerCaService(this.grpcServer, {
      logger: opts.logger.child({ scope: 'ca' }),
      authenticate,
      handler: async (req) => {
        this.m.csr.labels({}).inc();
        const verdict = await authorize(this.store.current().model, req.caller, req.impersonatedIdentity);
        if (!verdict.ok) {
          this.m.refused.labels({ reason: verdict.status.toLowerCase() }).inc();
          opts.logger.warn('certificate refused', { caller: req.caller.nodeId, credential: req.caller.identity, peer: req.peer, requested: req.impersonatedIdentity, reason: verdict.reason });
          throw new GrpcStatusError(verdict.status, verdict.reason);
        }
        const id = parseSpiffe(verdict.identity);
        if (!id.ok) throw new GrpcStatusError('INVALID_ARGUMENT', id.error.message);
        // The operator's lifetime is a cap: a caller may ask for less, never for more.
        const cap = opts.certificateTtlSeconds ?? DEFAULT_WORKLOAD_TTL_SECONDS;
        const ttlSeconds = req.ttlSeconds && req.ttlSeconds > 0 ? Math.min(req.ttlSeconds, cap) : cap;
        const signed = await opts.ca.sign({ csrPem: req.csrPem, identity: id.value, ttlSeconds });
        if (!signed.ok) {
          this.m.refused.labels({ reason: 'bad_csr' }).inc();
          opts.logger.warn('certificate refused', { caller: req.caller.nodeId, requested: verdict.identity, reason: signed.error.message });
          throw new GrpcStatusError('PERMISSION_DENIED', signed.error.message);
        }
        this.m.issued.labels({}).inc();
        opts.logger.info('certificate issued', { caller: req.caller.nodeId, credential: req.caller.identity, identity: verdict.identity, notAfter: signed.value.notAfter.toISOString() });
        return signed.value.certChainPem;
      },
    });
    this.serving = new ServingCertificate({
      ca: opts.ca, identity: opts.identity, hosts: [splitHostPort(opts.xdsAddress)[0]], ttlSeconds: opts.certificateTtlSeconds ?? DEFAULT_WORKLOAD_TTL_SECONDS,
      clock: opts.clock, logger: opts.logger,
    });
    this.admin = new AdminServer({
      logger: opts.logger, metrics: opts.metrics, auth: { token: opts.adminToken, open: OPEN_ADMIN_PATHS },
      ready: () => (this.pushedVersion >= 0 ? { ready: true } : { ready: false, reason: 'config not loaded yet' }),
      routes: adminRoutes({ store: this.store, ads: this.ads, logger: opts.logger, onChange: (r) => this.recordChange(r.ok) }),
    });
  }

  async start(): Promise<{ xdsPort: number; adminPort: number }> {
    if (this.opts.configPaths.length) {
      const { sources, diagnostics } = await readSources(this.opts.configPaths);
      const r = this.store.setFiles(sources);
      if (!r.ok || diagnostics.length) {
        for (const d of [...diagnostics, ...r.diagnostics].filter((x) => x.severity === 'error')) this.opts.logger.error('invalid config file', { ...d });
      }
      this.stopWatch = watchPaths(this.opts.configPaths, this.opts.logger, async () => {
        const again = await readSources(this.opts.configPaths);
        const res = this.store.setFiles(again.sources);
        this.m.changes.labels({ result: res.ok ? 'accepted' : 'refused' }).inc();
      });
    }
    if (!this.opts.holdPushUntilLoaded) this.pushNow();
    const secure = this.opts.tls ?? true;
    if (secure) await this.serving.start();
    this.xdsPort = await bindServer(this.grpcServer, this.opts.xdsAddress, secure ? this.serving.credentials() : serverCredentials(undefined));
    const [host, port] = splitHostPort(this.opts.adminAddress);
    const admin = await this.admin.listen(host, port);
    this.opts.logger.info('control plane started', { xds: `${host}:${this.xdsPort}`, xdsTls: secure ? this.opts.identity : false, admin: `${host}:${admin.port}`, configVersion: this.store.current().version });
    return { xdsPort: this.xdsPort, adminPort: admin.port };
  }

  /** Count accepted/refused API changes (the admin API calls the store directly). */
  recordChange(ok: boolean): void {
    this.m.changes.labels({ result: ok ? 'accepted' : 'refused' }).inc();
  }

  private schedulePush(): void {
    if (this.pushTimer) return;
    this.pushTimer = this.opts.clock.setTimeout(() => {
      this.pushTimer = undefined;
      this.pushNow();
    }, this.opts.debounceMs ?? 50);
  }

  private pushNow(): void {
    const snap = this.store.current();
    if (snap.version === this.pushedVersion) return;
    try {
      this.secretUsers = secretConsumers(snap.set, snap.model);
      const r = this.pusher.push(snap.api, [...waypointConfigObjects(snap.set, this.secretUsers), ...proxyHintObjects(snap.set, snap.model)], snap.version, meshSettingsOf(snap.model));
      this.ads.refilter();
      this.pushedVersion = snap.version;
      if (r.addresses) this.m.pushes.labels({ type: 'address' }).inc();
      if (r.authorizations) this.m.pushes.labels({ type: 'authorization' }).inc();
      if (r.config) this.m.pushes.labels({ type: 'config' }).inc();
      this.opts.logger.info('pushed config', { version: snap.version, addresses: r.addresses, authorizations: r.authorizations, l7Config: r.config, proxies: this.ads.clients().length });
    } catch (e: unknown) {
      this.opts.logger.error('push failed', { error: describeError(e).message });
    }
  }

  async close(): Promise<void> {
    this.pushTimer?.cancel();
    this.stopWatch?.();
    this.ads.close();
    this.serving.close();
    await new Promise<void>((resolve) => this.grpcServer.tryShutdown(() => resolve()));
    await this.admin.close();
  }
}

function bearerTokenOf(md: grpc.Metadata): string | undefined {
  return bearerToken(md);
}

function shortType(typeUrl: string): string {
  return typeUrl.endsWith('Authorization') ? 'authorization' : typeUrl.endsWith('ConfigResource') ? 'config' : 'address';
}

export function splitHostPort(addr: string): [string, number] {
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i).replace(/^\[|\]$/g, ''), Number(addr.slice(i + 1))];
}
