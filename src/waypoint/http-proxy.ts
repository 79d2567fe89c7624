// One HTTP request through the waypoint: authenticate (JWT), authorize (L7 policy), route
// (HTTPRoute / VirtualService), inject faults, pick an endpoint, forward over HBONE with
// retries and timeouts, mirror, and record it (one telemetry record per request).
//
// Invariants:
// - Decisions come from pure functions (authenticateRequest, authorizeRequest, decideRoute,
//   EndpointPicker); this file does only the I/O around them.
// - A request body of at most MAX_REPLAY_BYTES is buffered so a retry or a mirror can send it
//   again, while the process's ReplayBudget has room; a larger one (or one that does not fit
//   the budget) is streamed once (no retry, no mirror) and that is logged. The bytes taken
//   from the budget are given back when the request ends.
// - The upstream speaks what the client spoke: HTTP/1.1 in, HTTP/1.1 out; HTTP/2 (h2c, gRPC)
//   in, HTTP/2 out. Hop-by-hop headers never cross, except that an HTTP/1.1 protocol upgrade
//   (WebSocket) is asked of the upstream with its own `upgrade` / `connection: upgrade`.
// - A timed-out attempt is abandoned (its unanswered upstream connection or stream closed); a
//   client that leaves stops the upstream answer from being read.
// - Every request ends in exactly one telemetry record, whatever happens to it.
import { delay, type Clock, type TimerHandle } from '../core/clock.js';
import http from 'node:http';
import type http2 from 'node:http2';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { relay } from '../hbone/index.js';
import type { Logger } from '../core/logger.js';
import { describeError } from '../core/errors.js';
import { identityOf, normalizeIp, targetPortOf, type MeshView } from '../dataplane/mesh-view.js';
import { peerInfo, serviceInfo } from '../dataplane/peer-info.js';
import type { RequestRecord, RequestTelemetry } from '../telemetry/request-record.js';
import type { ResponseFlag } from '../telemetry/istio-labels.js';
import type { Service, Workload } from '../xds/workload-api.js';
import { stripSpiffe } from '../rbac/index.js';
import type { RequestAttributes } from '../rbac/attributes.js';
import { decideRoute, noEdits, type BackendTarget, type HeaderEdits, type RouteDecision } from './routing.js';
import { authenticateRequest, type AuthnResult } from './request-authn.js';
import { authorizeRequest } from './l7-authz.js';
import type { EndpointPicker } from './endpoint-picker.js';
import type { UpstreamTarget, Upstreams } from './upstream.js';
import type { RequestBinding, WaypointConfig, WaypointIdentity } from './waypoint-config.js';
import { RandomIds } from '../core/random-ids.js';
import { applyEdits, childTraceparent, first, HOP_BY_HOP, hostOnly, upstreamHeaders } from './http-headers.js';
import { sendHttp1, sendHttp2, type UpstreamResponse } from './upstream-exchange.js';
import { Http1Request, Http1Response } from './http1/server.js';
import { shouldLog } from './access-log-config.js';
import type { ReplayBudget } from './replay-budget.js';
import { isNormalMethod, normalizeRequestTarget } from '../core/http-request-target.js';
import type { EgressEntry } from './egress-config.js';
import type { UpstreamClusters } from './traffic/clusters.js';
import type { EffectivePolicy } from './traffic/policy.js';
import { hashKeyOf } from './traffic/lb-pick.js';
import { serviceHostname } from '../core/mesh-constants.js';

/** A request through a target without RequestAuthentication: no promise to wait for. */
const ANONYMOUS: AuthnResult = { kind: 'anonymous', tokenPresent: false };

export const MAX_REPLAY_BYTES = 1024 * 1024;

/** What the waypoint knows about the tunnel a request arrived on. */
export interface TunnelContext {
  /** spiffe://... of the peer; '' for plaintext (a sidecar's 15006): no principal, security policy unknown. */
  peerIdentity: string;
  peerAddress: { ip: string; port: number };
  /** The original destination from `:authority`. */
  target: { ip: string; port: number };
  service?: Service;
  workload?: Workload;
}

export interface HttpProxyDeps {
  waypoint: WaypointIdentity;
  config(): WaypointConfig;
  state(): MeshView;
  upstreams: Upstreams;
  picker: EndpointPicker;
  telemetry: RequestTelemetry;
  logger: Logger;
  clock: Clock;
  random(): number;
  nextId(): string;
  /** Telemetry reporter (default 'waypoint'); a sidecar reports 'source' outbound, 'destination' inbound. */
  reporter?: 'source' | 'destination' | 'waypoint';
  /** Bytes of request bodies kept for retries and mirrors, for the whole process. */
  replayBudget: ReplayBudget;
  /** A request's JWT providers, policies and access-log decision (default: the waypoint's selection by target). A sidecar passes its own. */
  bind?(cfg: WaypointConfig, ctx: TunnelContext): RequestBinding;
  /** DestinationRule state (pools, outlier detection, load balancers); without it only the default picker. */
  clusters?: UpstreamClusters;
  /**
   * The route table entry a request is routed by (default: the tunnel's service and port). An
   * ingress gateway picks a virtual host by listener and Host; undefined: no route (404 NR).
   */
  routeTarget?(ctx: TunnelContext, authority: string): { hostname: string; port: number } | undefined;
  /** Sends a request for a Service through its waypoint instead of to its endpoints (an ingress gateway's `ingress-use-waypoint`). */
  viaWaypoint?(service: Service): { workloads: Workload[]; identity: string } | undefined;
}

type DownReq = Http1Request | http2.Http2ServerRequest;
type DownRes = Http1Response | http2.Http2ServerResponse;
/** What both response kinds offer for a body (their signatures differ in overloads only). */
type BodyWriter = { write(c: Buffer): boolean; addTrailers(t: Record<string, string>): void };


type Attempt =
  | { kind: 'response'; res: UpstreamResponse; endpoint: Workload; up: UpstreamTarget }
  | { kind: 'connect-failed' | 'reset' | 'timeout'; message: string; endpoint?: Workload };

class RequestFailure {
  constructor(readonly status: number, readonly flag: ResponseFlag, readonly code: string, readonly message: string) {}
}

export class HttpProxy {
  private readonly ids = new RandomIds();

  constructor(private readonly d: HttpProxyDeps) {}

  handle(req: DownReq, res: DownRes, ctx: TunnelContext): void {
    void this.serve(req, res, ctx);
  }

  private async serve(req: DownReq, res: DownRes, ctx: TunnelContext): Promise<void> {
    const { d } = this;
    const h2 = req.httpVersionMajor === 2;
    const headers = req.headers as Record<string, string | string[] | undefined>;
    // A request keeps the config it started with, its access-log decision included.
    const cfg = d.config();
    const method = req.method ?? 'GET';
    // Normalized before anything reads it: what the policies see is what the application gets.
    const target = normalizeRequestTarget(req.url ?? '/', cfg.mesh.pathNormalization);
    const authority = (target.ok ? target.authority : undefined) ?? String((h2 ? headers[':authority'] : headers.host) ?? `${ctx.target.ip}:${ctx.target.port}`);
    const path = target.ok ? target.path + target.query : (req.url ?? '/');
    const state = d.state();
    const traceparent = childTraceparent(first(headers.traceparent), this.ids);
    const record: RequestRecord = {
      id: d.nextId(), reporter: d.reporter ?? 'waypoint', startMs: d.clock.now(), durationMs: 0,
      source: { ip: normalizeIp(ctx.peerAddress.ip), port: ctx.peerAddress.port, workload: peerInfo(state.workloadByIp(ctx.peerAddress.ip)), identity: ctx.peerIdentity },
      service: serviceInfo(ctx.service),
      protocol: /^application\/grpc/.test(first(headers['content-type']) ?? '') ? 'grpc' : 'http',
      httpVersion: h2 ? 'HTTP/2' : `HTTP/${req.httpVersion}`,
      method, path, authority, responseCode: 0, requestBytes: 0, responseBytes: 0,
      responseFlags: '-', securityPolicy: ctx.peerIdentity ? 'mutual_tls' : 'unknown', traceparent,
      requestId: first(headers['x-request-id']) ?? this.ids.hex(16),
      userAgent: first(headers['user-agent']),
    };
    const bound = d.bind ? d.bind(cfg, ctx) : cfg.forRequest({ waypoint: d.waypoint, service: ctx.service ? { namespace: ctx.service.namespace, name: ctx.service.name, ...(cfg.egress.entryOf(ctx.service) ? { kind: 'ServiceEntry' as const } : {}) } : undefined });
    let finished = false;
    const held = { bytes: 0 };
    const finish = (): void => {
      if (finished) return;
      finished = true;
      d.replayBudget.give(held.bytes);
      record.durationMs = d.clock.now() - record.startMs;
      d.telemetry.completed(record, shouldLog(bound.accessLog, record, headers));
    };
    res.once('close', finish);
    try {
      if (!target.ok || !isNormalMethod(method)) {
        record.reason = { kind: 'local', code: 'BAD_REQUEST', message: target.ok ? `method "${method.slice(0, 32)}" is not an upper-case token` : target.reason };
        return this.local(res, record, 400, 'Bad Request');
      }
      // 1. Authentication and authorization.
      const authn = bound.providers.length === 0 ? ANONYMOUS : await authenticateRequest(bound.providers, { headers, path }, Math.floor(d.clock.now() / 1000));
      if (authn.kind === 'rejected') {
        record.reason = { kind: 'denied', policy: null, rule: null, message: `JWT rejected: ${authn.reason}` };
        return this.local(res, record, 401, 'Jwt verification fails', { 'www-authenticate': authn.wwwAuthenticate });
      }
      // A token the provider does not forward is removed before the request goes upstream.
      // Claims and payload the provider outputs replace whatever the client sent in those headers.
      if (authn.kind === 'authenticated') {
        for (const h of authn.stripHeaders) delete headers[h.toLowerCase()];
        for (const [name, value] of authn.outputHeaders) headers[name] = value;
      }
      const attrs: RequestAttributes = {
        sourceIp: normalizeIp(ctx.peerAddress.ip), sourcePrincipal: ctx.peerIdentity ? stripSpiffe(ctx.peerIdentity) : undefined,
        destinationIp: ctx.target.ip, destinationPort: ctx.target.port,
        http: { method, path, host: authority, headers: headers as Record<string, string | string[]>, auth: authn.kind === 'authenticated' ? authn.auth : undefined },
      };
      const verdict = authorizeRequest(bound.policies, attrs, authn);
      if (!verdict.allow) {
        record.reason = { kind: 'denied', policy: verdict.decision.policy, rule: verdict.decision.ruleIndex, message: verdict.decision.reason };
        record.responseFlags = 'DENY';
        return this.local(res, record, verdict.status, verdict.body, verdict.wwwAuthenticate ? { 'www-authenticate': verdict.wwwAuthenticate } : {});
      }
      // 2. Route.
      const routeTarget = d.routeTarget ? d.routeTarget(ctx, authority) : ctx.service ? { hostname: ctx.service.hostname, port: ctx.target.port } : undefined;
      const decision: RouteDecision = routeTarget
        ? decideRoute(cfg.routes, routeTarget, { method, path, host: authority, headers }, d.random)
        : d.routeTarget ? { kind: 'not-found', route: '-', status: 404, reason: 'no-match' }
          : { kind: 'forward', route: 'workload', backend: { namespace: '', name: '', port: ctx.target.port }, requestHeaders: noEdits(), responseHeaders: noEdits(), mirrors: [], timeouts: {} };
      record.route = decision.route;
      if (decision.kind === 'redirect') return this.local(res, record, decision.status, '', { location: decision.location });
      if (decision.kind === 'not-found') {
        record.responseFlags = 'NR';
        return this.local(res, record, decision.status, decision.reason === 'no-backends' ? 'no backend for the matched route' : 'no matching route');
      }
      // 3. Faults.
      if (decision.fault?.delayMs) {
        record.responseFlags = 'DI';
        await delay(d.clock, decision.fault.delayMs);
      }
      if (decision.fault?.abortStatus) {
        record.responseFlags = 'FI';
        return this.local(res, record, decision.fault.abortStatus, 'fault filter abort');
      }
      // 4. Forward.
      await this.forward(req, res, ctx, decision, record, authority, path, traceparent, held);
    } catch (e: unknown) {
      if (e instanceof RequestFailure) {
        record.responseFlags = e.flag;
        record.reason = { kind: 'upstream', code: e.code, message: e.message };
        this.local(res, record, e.status, e.message);
      } else {
        record.reason = { kind: 'local', code: describeError(e).code, message: describeError(e).message };
        d.logger.error('request failed', { id: record.id, error: describeError(e) });
        this.local(res, record, 500, 'internal error');
      }
    } finally {
      if (res.writableEnded || res.destroyed) finish();
    }
  }

  private async forward(req: DownReq, res: DownRes, ctx: TunnelContext, decision: Extract<RouteDecision, { kind: 'forward' }>, record: RequestRecord, authority: string, path: string, traceparent: string, held: { bytes: number }): Promise<void> {
    const { d } = this;
    const h2 = req.httpVersionMajor === 2;
    const state = d.state();
    const backend = ctx.service && !decision.backendMissing ? resolveBackend(state, decision.backend, d.config().egress.entryOf.bind(undefined), ctx.target) : undefined;
    if (ctx.service && !backend) throw new RequestFailure(500, 'NR', 'BACKEND_NOT_FOUND', `backend ${decision.backend.name}.${decision.backend.namespace}:${decision.backend.port} does not exist`);
    if (backend) record.service = serviceInfo(backend.service);
    // DestinationRule: the subset's endpoints, the cluster's load balancer, pool and outlier detection.
    // Without a DestinationRule (or subset) for the host: the default path, no cluster state at all.
    const found = backend?.service && d.clusters ? d.config().traffic.policyFor(backend.service.hostname, backend.service.namespace, decision.backend.port, decision.backend.subset) : undefined;
    const policy = found && (found.rule !== '' || found.subset !== undefined) ? found : undefined;
    if (backend && policy?.subsetUids) backend.workloads = backend.workloads.filter((w) => policy.subsetUids!.has(w.uid));
    const via = backend?.service && !backend.egress ? d.viaWaypoint?.(backend.service) : undefined;
    if (backend && via) backend.via = via;
    const hashKey = policy ? hashKeyOf(policy.lb, { headers: req.headers as Record<string, string | string[] | undefined>, path, sourceIp: normalizeIp(ctx.peerAddress.ip) }) : undefined;
    const upstreamPath = decision.path ?? path;
    const upstreamHost = decision.host ?? authority;
    const headers = upstreamHeaders(req.headers as Record<string, string | string[] | undefined>, decision.requestHeaders, traceparent, record.requestId!);
    // A protocol switch (WebSocket) asked for over HTTP/1.1 is asked of the upstream too.
    const upgrade = req instanceof Http1Request && req.upgrade ? first(req.headers.upgrade) : undefined;
    if (upgrade) {
      headers.connection = 'upgrade';
      headers.upgrade = upgrade;
    }
    const declared = Number(first(req.headers['content-length']) ?? NaN);
    const hasBody = !['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(req.method ?? 'GET') || declared > 0 || req.headers['transfer-encoding'] !== undefined;
    let body: Buffer | Readable | undefined;
    if (hasBody) {
      body = declared > MAX_REPLAY_BYTES ? req : await bufferOrStream(req, MAX_REPLAY_BYTES, d.replayBudget, held);
      if (Buffer.isBuffer(body)) record.requestBytes = body.length;
      else d.logger.debug('request body streamed once: too large to buffer for retries and mirrors', { id: record.id });
    }
    const replayable = body === undefined || Buffer.isBuffer(body);
    // Mirrors: a copy, fire and forget; the answer is dropped.
    if (replayable && backend) {
      for (const m of decision.mirrors) {
        if (d.random() * 100 >= m.percent) continue;
        const mb = resolveBackend(state, m.backend);
        if (mb) void this.attempt(mb, h2, req.method ?? 'GET', upstreamPath, `${hostOnly(upstreamHost)}-shadow`, headers, body as Buffer | undefined, new Set(), decision.timeouts.backendRequestMs ?? 10_000)
          .then((a) => { if (a.kind === 'response') a.res.body.resume(); }, () => {});
      }
    }
    const retry = replayable ? decision.retry : undefined;
    const attempts = 1 + (retry?.attempts ?? 0);
    const deadline = decision.timeouts.requestMs ? d.clock.now() + decision.timeouts.requestMs : Infinity;
    const tried = new Set<string>();
    let last: Attempt | undefined;
    let retryOverflow = false;
    // Circuit breakers: a request over the cluster's limits is refused here (503 UO).
    const acquired = policy?.limited ? await d.clusters!.acquire(policy, !h2) : undefined;
    if (acquired?.kind === 'overflow') throw new RequestFailure(503, 'UO', 'UPSTREAM_OVERFLOW', `upstream connect error or disconnect/reset before headers. reset reason: overflow (${acquired.reason})`);
    let retrying = false;
    try {
    for (let i = 0; i < attempts; i++) {
      if (retrying) { d.clusters!.retryDone(policy!); retrying = false; }
      if (i > 0 && policy?.limited) {
        if (!d.clusters!.retryStart(policy)) { retryOverflow = true; break; }
        retrying = true;
      }
      if (i > 0) await delay(d.clock, Math.min(retry!.backoffMs * 2 ** (i - 1), 1000));
      const left = deadline - d.clock.now();
      if (left <= 0) break;
      const perTry = Math.min(left, decision.timeouts.backendRequestMs ?? retry?.perTryTimeoutMs ?? Infinity);
      const target = backend ?? { service: undefined, workloads: ctx.workload ? [ctx.workload] : [], port: ctx.target.port };
      const sentAt = d.clock.now();
      last = await this.attempt(target, h2, req.method ?? 'GET', upstreamPath, upstreamHost, headers, body, tried, perTry, policy, hashKey);
      record.upstreamServiceTimeMs = d.clock.now() - sentAt;
      const canRetry = i + 1 < attempts && retry !== undefined;
      if (last.kind === 'response') {
        if (canRetry && retry.codes.includes(last.res.status)) {
          last.res.body.resume();
          continue;
        }
        record.destination = last.up.external
          ? { ip: last.up.external.ip ?? last.up.external.hostname ?? '', port: last.up.port, workload: peerInfo(last.endpoint) }
          : { ip: last.endpoint.addresses[0]!, port: targetPortOf(last.endpoint, target.service, target.port), workload: peerInfo(last.endpoint), identity: identityOf(last.endpoint) };
        if (i > 0) record.route = `${record.route ?? ''} (attempt ${i + 1})`;
        if (last.res.status === 101 && upgrade && req instanceof Http1Request && res instanceof Http1Response) await this.switchProtocols(req, res, record, last.res, decision.responseHeaders);
        else await this.respond(res, record, last.res, decision.responseHeaders);
        return;
      }
      if (!canRetry || last.kind === 'reset') break;
      if (last.kind === 'connect-failed' && !retry.retryOnConnectFailure) break;
    }
    } finally {
      if (retrying) d.clusters!.retryDone(policy!);
      if (acquired?.kind === 'lease') acquired.lease.release();
    }
    if (retryOverflow && !last) throw new RequestFailure(503, 'URX', 'RETRIES_EXHAUSTED', 'retry overflow');
    if (!last || last.kind === 'timeout') throw new RequestFailure(504, 'UT', 'UPSTREAM_TIMEOUT', 'upstream request timeout');
    if (last.kind === 'connect-failed') throw new RequestFailure(503, last.endpoint ? 'UF' : 'UH', last.endpoint ? 'UPSTREAM_CONNECT' : 'NO_HEALTHY_UPSTREAM', last.message);
    if (last.kind === 'reset') throw new RequestFailure(503, 'UC', 'UPSTREAM_RESET', last.message);
    throw new RequestFailure(503, 'URX', 'RETRIES_EXHAUSTED', 'retries exhausted');
  }

  /** One try against one endpoint. */
  private async attempt(target: ResolvedBackend, h2: boolean, method: string, path: string, host: string, headers: Record<string, string | string[]>, body: Buffer | Readable | undefined, tried: Set<string>, timeoutMs: number, policy?: EffectivePolicy, hashKey?: string): Promise<Attempt> {
    const { d } = this;
    const key = target.service ? `${target.service.namespace}/${target.service.hostname}` : 'workload';
    const pool = target.via?.workloads ?? target.workloads;
    let candidates = pool.map((w) => ({ uid: w.uid, healthy: w.status !== 'UNHEALTHY', w }));
    const clusters = policy && !target.via ? d.clusters : undefined;
    if (clusters && policy!.outlier) candidates = clusters.usable(policy!, candidates.filter((c) => c.healthy));
    let pick: typeof candidates[number] | undefined;
    if (clusters && policy!.lb.kind !== 'LEAST_REQUEST') {
      const healthy = candidates.filter((c) => c.healthy);
      pick = clusters.pick(policy!, healthy.filter((c) => !tried.has(c.uid)), hashKey) ?? (tried.size > 0 ? clusters.pick(policy!, healthy, hashKey) : undefined);
    } else {
      pick = d.picker.pick(key, candidates, tried);
      if (!pick && tried.size > 0) pick = d.picker.pick(key, candidates);
    }
    if (!pick) return { kind: 'connect-failed', message: `no healthy upstream for ${target.service?.hostname ?? 'the workload'}` };
    const w = pick.w;
    tried.add(w.uid);
    const up: UpstreamTarget = target.via && target.service
      // Through the service's waypoint: HBONE to the replica, :authority the service VIP and port.
      ? { uid: w.uid, ip: target.service.addresses[0]?.address ?? '', port: target.port, identity: target.via.identity, hboneIp: w.addresses[0]! }
      : target.egress
        ? externalTarget(target.egress, w, targetPortOf(w, target.service, target.port), target.port, host, h2)
        : { uid: w.uid, ip: w.addresses[0]!, port: targetPortOf(w, target.service, target.port), identity: identityOf(w), ...(policy?.pool.connectTimeoutMs ? { connectTimeoutMs: policy.pool.connectTimeoutMs } : {}), ...(policy && (policy.pool.maxRequestsPerConnection || policy.pool.idleTimeoutMs) ? { http1: { maxRequestsPerConnection: policy.pool.maxRequestsPerConnection, idleTimeoutMs: policy.pool.idleTimeoutMs } } : {}) };
    d.picker.started(w.uid);
    try {
      const abort = Number.isFinite(timeoutMs) ? new AbortController() : undefined;
      const sent = (h2 ? sendHttp2 : sendHttp1)(d.upstreams, up, method, path, host, headers, body, abort?.signal);
      const r = await withTimeout(sent, timeoutMs, d.clock);
      if (r === 'timeout') {
        // The exchange is abandoned (an unanswered request's connection or stream closes); a
        // late answer, if any, is dropped and its stream closed.
        abort?.abort();
        void sent.then((late) => { if (late.kind === 'response') late.res.body.destroy(); });
        return { kind: 'timeout', message: `no response within ${timeoutMs} ms`, endpoint: w };
      }
      if (r.kind === 'connect-failed') d.picker.connectFailed(w.uid);
      else d.picker.connected(w.uid);
      if (clusters && policy!.outlier) clusters.record(policy!, w.uid, r.kind === 'response' ? { kind: 'response', status: r.res.status } : { kind: r.kind }, pool.length);
      return r.kind === 'response' ? { kind: 'response', res: r.res, endpoint: w, up } : { ...r, endpoint: w };
    } finally {
      d.picker.finished(w.uid);
    }
  }

  /**
   * The upstream agreed to switch protocols (101): both connections become one byte relay;
   * the request is recorded when it ends (as Envoy logs a WebSocket), with the bytes each way.
   */
  private async switchProtocols(req: Http1Request, res: Http1Response, record: RequestRecord, up: UpstreamResponse, edits: HeaderEdits): Promise<void> {
    record.responseCode = 101;
    const out = responseHeaders(up, edits);
    out.connection = 'upgrade';
    out.upgrade = first(up.headers.upgrade) ?? '';
    res.writeHead(101, out);
    const down = res.switchProtocols(req);
    const upstream = up.body as Duplex;
    const relayed = relay(down, upstream);
    down.resume(); // both were paused at the switch, the bytes after each head put back
    upstream.resume();
    const r = await relayed.done;
    record.requestBytes += r.bytesOutbound;
    record.responseBytes += r.bytesInbound;
    if (r.closedBy === 'error') record.responseFlags = 'UC';
  }

  private async respond(res: DownRes, record: RequestRecord, up: UpstreamResponse, edits: HeaderEdits): Promise<void> {
    record.responseCode = up.status;
    const out = responseHeaders(up, edits);
    if (record.protocol === 'grpc') {
      const g = first(up.headers['grpc-status']);
      if (g !== undefined) record.grpcStatus = Number(g);
    }
    res.writeHead(up.status, out as http.OutgoingHttpHeaders);
    const addTrailers = (t: Record<string, string | string[] | undefined> | undefined): void => {
      if (!t || Object.keys(t).length === 0) return;
      if (record.protocol === 'grpc' && t['grpc-status'] !== undefined) record.grpcStatus = Number(first(t['grpc-status']));
      (res as BodyWriter).addTrailers(Object.fromEntries(Object.entries(t).filter(([k]) => !k.startsWith(':'))) as Record<string, string>);
    };
    if (up.whole) {
      // The answer came whole: one write with the head, no stream to pump.
      record.responseBytes += up.whole.length;
      addTrailers(await up.trailers);
      res.end(up.whole);
      return;
    }
    if (up.body.destroyed && !up.body.readableEnded) {
      // Cut before we could read it (the connection died in the read that brought the head).
      record.responseFlags = 'UC';
      res.destroy();
      return;
    }
    await new Promise<void>((resolve) => {
      up.body.once('end', () => {
        void up.trailers.then((t) => {
          addTrailers(t);
          res.end();
          resolve();
        });
      });
      up.body.once('error', () => {
        record.responseFlags = 'UC';
        res.destroy();
        resolve();
      });
      // The client went away: stop reading the upstream's answer (its connection is not reused).
      res.once('close', () => { if (!up.body.readableEnded) up.body.destroy(); });
      up.body.on('data', (c: Buffer) => {
        record.responseBytes += c.length;
        if (!(res as BodyWriter).write(c)) { up.body.pause(); res.once('drain', () => up.body.resume()); }
      });
    });
  }

  private local(res: DownRes, record: RequestRecord, status: number, body: string, headers: Record<string, string> = {}): void {
    record.responseCode = status;
    if (res.headersSent) { res.destroy(); return; }
    const text = body ? Buffer.from(body) : Buffer.alloc(0);
    record.responseBytes = text.length;
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': String(text.length), ...headers });
    res.end(text);
  }
}

/** The upstream's response headers that cross to the client, with the route's edits. */
function responseHeaders(up: UpstreamResponse, edits: HeaderEdits): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(up.headers)) {
    if (v === undefined || k.startsWith(':') || HOP_BY_HOP.has(k)) continue;
    out[k] = v;
  }
  applyEdits(out, edits);
  return out;
}

interface ResolvedBackend {
  service: Service | undefined;
  workloads: Workload[];
  port: number;
  /** Set when the backend is a ServiceEntry host: its endpoints are outside the mesh. */
  egress?: EgressEntry;
  /** Set when the request goes through the service's waypoint (its replicas and identity). */
  via?: { workloads: Workload[]; identity: string };
}

function resolveBackend(state: MeshView, b: BackendTarget, egressOf?: (s: Service) => EgressEntry | undefined, original?: { ip: string; port: number }): ResolvedBackend | undefined {
  const service = state.serviceByKey(`${b.namespace}/${b.hostname ?? serviceHostname(b.name, b.namespace)}`);
  if (!service) return undefined;
  const egress = egressOf?.(service);
  let workloads = state.endpointsOf(service);
  // Resolution NONE: the destination the client asked for is the endpoint (Envoy's ORIGINAL_DST).
  if (egress && workloads.length === 0 && egress.resolution === 'NONE' && original) {
    workloads = [originalDestination(service, original.ip)];
  }
  return { service, workloads, port: b.port, ...(egress ? { egress } : {}) };
}

/** The endpoint a ServiceEntry with resolution NONE has: the address the client connected to. */
function originalDestination(s: Service, ip: string): Workload {
  return {
    uid: `original-destination/${ip}`, name: s.name, namespace: s.namespace, addresses: [ip], network: '', tunnelProtocol: 'NONE',
    trustDomain: '', serviceAccount: '', node: '', canonicalName: s.name, canonicalRevision: 'latest', workloadType: 'POD', workloadName: s.name,
    authorizationPolicies: [], status: 'HEALTHY', clusterId: '', services: {},
  };
}

/** An upstream outside the mesh: plain TCP or originated TLS to the endpoint (egress-connect.ts). */
function externalTarget(e: EgressEntry, w: Workload, port: number, servicePort: number, host: string, h2: boolean): UpstreamTarget {
  const tls = e.tls(servicePort);
  const ip = w.addresses[0];
  return {
    uid: w.uid, ip: ip ?? '', port, identity: `external|${tls?.id ?? 'plain'}|${h2 ? 'h2' : 'h1'}`,
    external: { ...(ip ? { ip } : { hostname: w.hostname }), port, tls, host: hostOnly(host) || e.host, alpn: h2 ? ['h2'] : ['http/1.1'] },
  };
}


/**
 * The whole body as a Buffer when it is at most `limit` bytes and fits the budget (so a retry
 * or a mirror can send it again; the bytes stay counted in `held` until the request ends);
 * otherwise a stream of what was read so far followed by the rest, sent once.
 */
function bufferOrStream(req: Readable, limit: number, budget: ReplayBudget, held: { bytes: number }): Promise<Buffer | Readable> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const onData = (c: Buffer): void => {
      n += c.length;
      chunks.push(c);
      if (n <= limit && budget.tryTake(c.length)) {
        held.bytes += c.length;
        return;
      }
      // Over the per-request limit or the process's budget: stream what was read, then the rest.
      budget.give(held.bytes);
      held.bytes = 0;
      req.off('data', onData);
      req.off('end', onEnd);
      req.pause();
      const rest = new PassThrough();
      for (const b of chunks) rest.write(b);
      req.pipe(rest);
      req.resume();
      resolve(rest);
    };
    const onEnd = (): void => resolve(Buffer.concat(chunks));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', reject);
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, clock: Clock): Promise<T | 'timeout'> {
  if (!Number.isFinite(ms)) return p;
  let t: TimerHandle | undefined;
  return Promise.race([p, new Promise<'timeout'>((r) => { t = clock.setTimeout(() => r('timeout'), ms); })]).finally(() => t?.cancel());
}
