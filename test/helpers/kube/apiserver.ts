// A Kubernetes API server stand-in on loopback (HTTPS, bearer token) that speaks the real
// wire shapes, for the Kubernetes source, the status writer, the waypoint reconciler, the
// CA's TokenReviews and `ambit install`. No API server can run on these machines; this one
// keeps the protocol facts the client library depends on:
// - discovery: /api, /apis (APIGroupList), /api/v1 and /apis/<g>/<v> (APIResourceList);
// - List with metadata.resourceVersion (a built-in type's items carry no kind/apiVersion);
// - field selectors (metadata.name, metadata.namespace; a Pod's spec.nodeName, status.phase,
//   status.podIP, spec.serviceAccountName; `=`, `==`, `!=`; an absent field is ""; any other
//   field is a 400 "field label not supported"), on lists and watches alike;
// - ?watch=1|true streams of {"type","object"} lines from a resourceVersion: ADDED, MODIFIED,
//   DELETED, BOOKMARK (with allowWatchBookmarks, object = kind/apiVersion/metadata.
//   resourceVersion only), ERROR with a 410 Status ("too old resource version") when the
//   asked-for version was compacted away, after which the stream ends; timeoutSeconds;
// - answers as Status objects (404, 409, 410, 422, 429 with Retry-After, 500);
// - PATCH as merge-patch+json, json-patch+json (an array, else 400), strategic-merge (treated
//   as a merge patch: a simplification), apply-patch+yaml (server-side apply: creates, or
//   merges the applied fields into the object; lists replaced; a simplification of field
//   ownership); the status subresource changes only status, the main resource never does;
// - metadata.generation moves when anything but metadata and status changes;
// - defaults on create: a Service gets a clusterIP (10.96.100.0/22), a Deployment replicas 1;
// - deleting an object deletes its dependents (ownerReferences uid), as the garbage
//   collector's background propagation does;
// - TokenReview create answers from a token table (audiences, expiry, pod binding in extra).
// Faults on demand: failNext (429/500), dropWatches, expireWatches (ERROR 410 + compaction,
// which forces a relist), bookmarks, stop/restart (the API going away).
import https from 'node:https';
import type http from 'node:http';
import type net from 'node:net';
import { randomUUID } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { servingCertificate } from './serving-cert.js';
import { DEFAULT_RESOURCES, apiVersionOf, type ResourceType } from './resources.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  body: unknown;
  status: number;
  atMs: number;
}

export interface TokenInfo {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
  audiences: string[];
  expiresAtMs?: number;
}

interface Watcher {
  type: ResourceType;
  version: string;
  namespace: string | undefined;
  fields: string | undefined;
  labels: string | undefined;
  bookmarks: boolean;
  res: http.ServerResponse;
  timer: NodeJS.Timeout | undefined;
}

interface Change {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  rt: ResourceType;
  obj: Obj;
  /** The object before a MODIFIED (for label-selected watches). */
  prev?: Obj;
}

const HISTORY_LIMIT = 10_000;

export class KubeApiServer {
  readonly token = `standin-${randomUUID()}`;
  readonly requests: RecordedRequest[] = [];
  readonly tokens = new Map<string, TokenInfo>();
  private readonly types: ResourceType[];
  private readonly objects = new Map<string, { rt: ResourceType; obj: Obj }>();
  private history: Change[] = [];
  private compactedRv = 0;
  private rv = 100;
  private nextServiceIp = 0;
  private watchers = new Set<Watcher>();
  private faults: { code: number; retryAfterS?: number; match: (m: string, p: string, watch: boolean) => boolean; left: number }[] = [];
  private server: https.Server | undefined;
  private sockets = new Set<{ destroy(): void }>();
  private cert: { certPem: string; keyPem: string } | undefined;
  port = 0;

  constructor(types: ResourceType[] = DEFAULT_RESOURCES) {
    this.types = [...types];
  }

  /** Starts serving more kinds, as installing their CRDs does (discovery lists them from now on). */
  installTypes(...types: ResourceType[]): void {
    this.types.push(...types);
  }

  async start(port = 0): Promise<void> {
    this.cert ??= await servingCertificate();
    const server = https.createServer({ cert: this.cert.certPem, key: this.cert.keyPem }, (req, res) => void this.handle(req, res));
    server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
  }

  /** The API going away: every connection is cut, nothing answers until restart(). */
  async stop(): Promise<void> {
    for (const w of this.watchers) clearTimeout(w.timer);
    this.watchers.clear();
    const s = this.server;
    this.server = undefined;
    for (const sock of this.sockets) sock.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  async restart(): Promise<void> {
    await this.start(this.port);
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** A kubeconfig (YAML) for the client library: the server's CA and the bearer token. */
  kubeconfig(token = this.token): string {
    return [
      'apiVersion: v1', 'kind: Config', 'current-context: standin',
      'clusters:', `- name: standin`, `  cluster: {server: "${this.url}", certificate-authority-data: ${Buffer.from(this.cert!.certPem).toString('base64')}}`,
      'users:', `- name: standin`, `  user: {token: "${token}"}`,
      'contexts:', '- name: standin', '  context: {cluster: standin, user: standin, namespace: default}', '',
    ].join('\n');
  }

  currentResourceVersion(): string {
    return String(this.rv);
  }

  // ---- test controls ----

  /** The next `count` requests matching answer `code` (a Status; 429 carries Retry-After). */
  failNext(code: number, count = 1, opts: { retryAfterS?: number; method?: string; path?: RegExp; watch?: boolean } = {}): void {
    this.faults.push({ code, retryAfterS: opts.retryAfterS, left: count, match: (m, p, w) => (!opts.method || opts.method === m) && (!opts.path || opts.path.test(p)) && (opts.watch === undefined || opts.watch === w) });
  }

  /** End every watch stream cleanly (as a server-side timeout does). */
  dropWatches(): void {
    for (const w of [...this.watchers]) this.endWatch(w);
  }

  /** Forget history (compaction): a watch from any older resourceVersion gets 410 Gone. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history = [];
  }

  /** Send ERROR 410 to every watcher and end it; with compaction, the next watch must relist. */
  expireWatches(): void {
    this.compact();
    for (const w of [...this.watchers]) {
      this.write(w, { type: 'ERROR', object: goneStatus(this.rv - 1, this.rv) });
      this.endWatch(w);
    }
  }

  bookmarkAll(): void {
    for (const w of this.watchers) if (w.bookmarks) this.sendBookmark(w);
  }

  watcherCount(path?: RegExp): number {
    return [...this.watchers].filter((w) => !path || path.test(`${w.type.group}/${w.type.plural}`)).length;
  }

  get(kind: string, namespace: string | undefined, name: string): Obj | undefined {
    const rt = this.typeOfKind(kind);
    const o = rt && this.objects.get(this.key(rt, namespace, name));
    return o ? structuredClone(o.obj) : undefined;
  }

  list(kind: string): Obj[] {
    return [...this.objects.values()].filter((o) => o.rt.kind === kind).map((o) => structuredClone(o.obj));
  }

  /** Create or replace objects as a client would (kind/apiVersion as given). */
  put(...objs: Obj[]): Obj[] {
    return objs.map((o) => {
      const rt = this.typeOfKind(o.kind);
      if (!rt) throw new Error(`stand-in does not serve kind ${o.kind}`);
      const ns = rt.namespaced ? (o.metadata?.namespace ?? 'default') : undefined;
      return this.upsert(rt, ns, structuredClone(o));
    });
  }

  /** Change an object in place (as another client's write), returning the stored result. */
  modify(kind: string, namespace: string | undefined, name: string, edit: (o: Obj) => void): Obj {
    const rt = this.typeOfKind(kind)!;
    const cur = this.objects.get(this.key(rt, namespace, name));
    if (!cur) throw new Error(`${kind} ${namespace}/${name} not found`);
    const next = structuredClone(cur.obj);
    edit(next);
    return this.upsert(rt, namespace, next);
  }

  remove(kind: string, namespace: string | undefined, name: string): boolean {
    const rt = this.typeOfKind(kind)!;
    return this.deleteObject(rt, namespace, name);
  }

  // ---- storage ----

  private typeOfKind(kind: string): ResourceType | undefined {
    return this.types.find((t) => t.kind === kind);
  }

  private key(rt: ResourceType, ns: string | undefined, name: string): string {
    return `${rt.group}/${rt.plural}/${rt.namespaced ? ns ?? '' : ''}/${name}`;
  }

  private nextRv(): number {
    return ++this.rv;
  }

  private upsert(rt: ResourceType, ns: string | undefined, obj: Obj): Obj {
    const key = this.key(rt, ns, obj.metadata.name);
    const cur = this.objects.get(key);
    obj.metadata ??= {};
    if (rt.namespaced) obj.metadata.namespace = ns;
    else delete obj.metadata.namespace;
    const rv = this.nextRv();
    if (cur) {
      obj.metadata.uid = cur.obj.metadata.uid;
      obj.metadata.creationTimestamp = cur.obj.metadata.creationTimestamp;
      const specChanged = JSON.stringify(withoutMetaStatus(cur.obj)) !== JSON.stringify(withoutMetaStatus(obj));
      obj.metadata.generation = (cur.obj.metadata.generation ?? 1) + (specChanged ? 1 : 0);
    } else {
      this.defaults(rt, obj);
      obj.metadata.uid ??= randomUUID();
      obj.metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
      obj.metadata.generation = 1;
    }
    obj.metadata.resourceVersion = String(rv);
    delete obj.apiVersion;
    delete obj.kind;
    this.objects.set(key, { rt, obj });
    this.record({ rv, type: cur ? 'MODIFIED' : 'ADDED', rt, obj, prev: cur?.obj });
    return structuredClone(obj);
  }

  /** A few of the API server's defaults on create: a Service's clusterIP, a Deployment's replicas. */
  private defaults(rt: ResourceType, obj: Obj): void {
    if (rt.kind === 'Service' && obj.spec && !obj.spec.clusterIP && obj.spec.type !== 'ExternalName') {
      const ip = `10.96.${100 + Math.floor(this.nextServiceIp / 250)}.${(this.nextServiceIp++ % 250) + 1}`;
      obj.spec.clusterIP = ip;
      obj.spec.clusterIPs = [ip];
    }
    if (rt.kind === 'Deployment' && obj.spec && obj.spec.replicas === undefined) obj.spec.replicas = 1;
  }

  private deleteObject(rt: ResourceType, ns: string | undefined, name: string): boolean {
    const key = this.key(rt, ns, name);
    const cur = this.objects.get(key);
    if (!cur) return false;
    this.objects.delete(key);
    const rv = this.nextRv();
    const obj = structuredClone(cur.obj);
    obj.metadata.resourceVersion = String(rv);
    this.record({ rv, type: 'DELETED', rt, obj });
    // The garbage collector: dependents go with their owner.
    const uid = cur.obj.metadata.uid;
    for (const o of [...this.objects.values()]) {
      if ((o.obj.metadata.ownerReferences ?? []).some((r: Obj) => r.uid === uid)) this.deleteObject(o.rt, o.obj.metadata.namespace, o.obj.metadata.name);
    }
    return true;
  }

  private record(c: Change): void {
    this.history.push({ ...c, obj: structuredClone(c.obj), prev: c.prev && structuredClone(c.prev) });
    if (this.history.length > HISTORY_LIMIT) {
      const dropped = this.history.splice(0, this.history.length - HISTORY_LIMIT);
      this.compactedRv = dropped[dropped.length - 1]!.rv;
    }
    for (const w of this.watchers) {
      const e = this.eventFor(w, c);
      if (e) this.write(w, e);
    }
  }

  /** The event a watcher sees for a change, if any (a label- or field-selected watch sees objects enter and leave). */
  private eventFor(w: Watcher, c: Change): Obj | undefined {
    if (w.type !== c.rt || (w.namespace && c.obj.metadata.namespace !== w.namespace)) return undefined;
    const now = matchesLabels(c.obj, w.labels) && matchesFields(c.obj, w.fields);
    const before = c.prev ? matchesLabels(c.prev, w.labels) && matchesFields(c.prev, w.fields) : false;
    let type: string = c.type;
    if (c.type === 'MODIFIED') {
      if (now && !before) type = 'ADDED';
      else if (!now && before) type = 'DELETED';
      else if (!now) return undefined;
    } else if (!now) {
      return undefined;
    }
    return { type, object: this.typed(c.rt, w.version, c.obj) };
  }

  private typed(rt: ResourceType, version: string, obj: Obj): Obj {
    return { apiVersion: apiVersionOf(rt.group, version), kind: rt.kind, ...structuredClone(obj) };
  }

  // ---- HTTP ----

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://x');
    const query = Object.fromEntries(url.searchParams);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const contentType = req.headers['content-type']?.split(';')[0]?.trim();
    let body: unknown;
    try {
      body = text ? (contentType === 'application/apply-patch+yaml' ? parseYaml(text) : JSON.parse(text)) : undefined;
    } catch {
      body = Symbol.for('unparsable');
    }
    const rec: RecordedRequest = { method: req.method ?? 'GET', path: url.pathname, query, contentType, body: typeof body === 'object' ? structuredClone(body) : body, status: 0, atMs: Date.now() };
    this.requests.push(rec);
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      rec.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(payload));
    };
    if (req.headers.authorization !== `Bearer ${this.token}`) return send(401, status(401, 'Unauthorized', 'Unauthorized'));
    const isWatch = query.watch === 'true' || query.watch === '1';
    const fault = this.faults.find((f) => f.left > 0 && f.match(rec.method, url.pathname, isWatch));
    if (fault) {
      fault.left--;
      this.faults = this.faults.filter((f) => f.left > 0);
      const reason = fault.code === 429 ? 'TooManyRequests' : fault.code === 410 ? 'Expired' : 'InternalError';
      return send(fault.code, status(fault.code, reason, fault.code === 429 ? 'the server has received too many requests and has asked us to try again later' : 'an error on the server has prevented the request from succeeding'),
        fault.code === 429 ? { 'retry-after': String(fault.retryAfterS ?? 1) } : {});
    }
    if (body === Symbol.for('unparsable')) return send(400, status(400, 'BadRequest', 'the body could not be decoded'));
    try {
      this.route(rec, url, body, send, res);
    } catch (e: unknown) {
      send(500, status(500, 'InternalError', e instanceof Error ? e.message : String(e)));
    }
  }

  private route(rec: RecordedRequest, url: URL, body: unknown, send: (s: number, p: unknown, h?: Record<string, string>) => void, res: http.ServerResponse): void {
    const parts = url.pathname.split('/').filter(Boolean);
    if (url.pathname === '/api') return send(200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
    if (url.pathname === '/apis') return send(200, this.groupList());
    if (url.pathname === '/version') return send(200, { major: '1', minor: '33', gitVersion: 'v1.33.0-standin' });
    let group: string;
    let version: string;
    let rest: string[];
    if (parts[0] === 'api' && parts[1]) [group, version, rest] = ['', parts[1], parts.slice(2)];
    else if (parts[0] === 'apis' && parts[1] && parts[2]) [group, version, rest] = [parts[1], parts[2], parts.slice(3)];
    else if (parts[0] === 'apis' && parts[1]) return this.groupOf(parts[1], send);
    else return send(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    if (rest.length === 0) return this.resourceList(group, version, send);
    let ns: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      ns = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, sub] = rest as [string, string | undefined, string | undefined];
    const rt = this.types.find((t) => t.group === group && t.plural === plural && t.versions.includes(version));
    if (!rt || (rest.length > 3)) return send(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    if (ns && !rt.namespaced && plural !== 'namespaces') return send(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    if (sub && sub !== 'status') return send(404, status(404, 'NotFound', `subresource ${sub} not served`));
    if (sub === 'status' && !rt.statusSubresource) return send(404, status(404, 'NotFound', 'no status subresource'));
    const m = rec.method;
    if (plural === 'tokenreviews' && m === 'POST') return send(201, this.tokenReview(body as Obj));
    const badField = unsupportedField(rt, url.searchParams.get('fieldSelector'));
    if (!name && m === 'GET' && badField) return send(400, status(400, 'BadRequest', `field label not supported: ${badField}`));
    if (!name) {
      if (m === 'GET') return url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1' ? this.watch(rt, version, ns, url, res, rec) : send(200, this.listOf(rt, version, ns, url));
      if (m === 'POST') return this.create(rt, version, ns, body as Obj, send);
      return send(405, status(405, 'MethodNotAllowed', `${m} not allowed on a collection`));
    }
    const key = this.key(rt, ns, name);
    const cur = this.objects.get(key);
    if (rt.namespaced && !ns) return send(404, status(404, 'NotFound', 'a namespaced resource needs a namespace'));
    switch (m) {
      case 'GET':
        return cur ? send(200, this.typed(rt, version, cur.obj)) : send(404, notFound(rt, name));
      case 'DELETE':
        return this.deleteObject(rt, ns, name) ? send(200, status(200, '', '', 'Success')) : send(404, notFound(rt, name));
      case 'PUT': {
        if (!cur) return send(404, notFound(rt, name));
        const b = body as Obj;
        if (b.metadata?.resourceVersion && b.metadata.resourceVersion !== cur.obj.metadata.resourceVersion) {
          return send(409, status(409, 'Conflict', `Operation cannot be fulfilled on ${rt.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`));
        }
        return send(200, this.typed(rt, version, this.upsert(rt, ns, this.subresourceView(rt, cur.obj, b, sub))));
      }
      case 'PATCH':
        return this.patch(rt, version, ns, name, sub, rec, body, send);
      default:
        return send(405, status(405, 'MethodNotAllowed', `${m} not allowed`));
    }
  }

  /** What a write may change: the status subresource only status, the main resource never status. */
  private subresourceView(rt: ResourceType, cur: Obj, next: Obj, sub: string | undefined): Obj {
    if (sub === 'status') return { ...structuredClone(cur), status: next.status };
    if (rt.statusSubresource) {
      const out = structuredClone(next);
      if (cur.status !== undefined) out.status = structuredClone(cur.status);
      else delete out.status;
      return out;
    }
    return next;
  }

  private patch(rt: ResourceType, version: string, ns: string | undefined, name: string, sub: string | undefined, rec: RecordedRequest, body: unknown, send: (s: number, p: unknown) => void): void {
    const cur = this.objects.get(this.key(rt, ns, name));
    const ct = rec.contentType;
    if (ct === 'application/apply-patch+yaml') {
      if (!rec.query.fieldManager) return send(422, status(422, 'Invalid', 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'));
      const b = body as Obj;
      if (!b?.metadata?.name || b.metadata.name !== name) return send(400, status(400, 'BadRequest', 'the name of the object does not match the name on the URL'));
      if (!cur) {
        if (sub === 'status') return send(404, notFound(rt, name));
        return send(201, this.typed(rt, version, this.upsert(rt, ns, stripTypeMeta(b))));
      }
      const merged = mergePatch(structuredClone(cur.obj), stripNulls(stripTypeMeta(b)));
      return send(200, this.typed(rt, version, this.upsert(rt, ns, this.subresourceView(rt, cur.obj, merged, sub))));
    }
    if (!cur) return send(404, notFound(rt, name));
    let next: Obj;
    if (ct === 'application/json-patch+json') {
      if (!Array.isArray(body)) return send(400, status(400, 'BadRequest', 'json: cannot unmarshal object into Go value of type jsonpatch.Patch'));
      const r = applyJsonPatch(structuredClone(cur.obj), body as Obj[]);
      if (!r.ok) return send(422, status(422, 'Invalid', r.error));
      next = r.value;
    } else if (ct === 'application/merge-patch+json' || ct === 'application/strategic-merge-patch+json') {
      if (typeof body !== 'object' || body === null || Array.isArray(body)) return send(400, status(400, 'BadRequest', 'a merge patch must be a JSON object'));
      next = mergePatch(structuredClone(cur.obj), stripTypeMeta(body as Obj));
    } else {
      return send(415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`));
    }
    return send(200, this.typed(rt, version, this.upsert(rt, ns, this.subresourceView(rt, cur.obj, next, sub))));
  }

  private create(rt: ResourceType, version: string, ns: string | undefined, body: Obj, send: (s: number, p: unknown) => void): void {
    if (!body?.metadata) return send(400, status(400, 'BadRequest', 'metadata is required'));
    if (!body.metadata.name && body.metadata.generateName) body.metadata.name = `${body.metadata.generateName}${randomUUID().slice(0, 5)}`;
    const name = body.metadata.name;
    if (!name) return send(422, status(422, 'Invalid', 'metadata.name: Required value: name or generateName is required'));
    if (rt.namespaced && ns && !this.objects.has(this.key(this.typeOfKind('Namespace')!, undefined, ns))) return send(404, status(404, 'NotFound', `namespaces "${ns}" not found`));
    if (this.objects.has(this.key(rt, ns, name))) return send(409, status(409, 'AlreadyExists', `${rt.plural} "${name}" already exists`));
    send(201, this.typed(rt, version, this.upsert(rt, ns, stripTypeMeta(body))));
  }

  private listOf(rt: ResourceType, version: string, ns: string | undefined, url: URL): Obj {
    const fields = url.searchParams.get('fieldSelector') ?? undefined;
    const items = [...this.objects.values()]
      .filter((o) => o.rt === rt && (!ns || o.obj.metadata.namespace === ns) && matchesFields(o.obj, fields) && matchesLabels(o.obj, url.searchParams.get('labelSelector') ?? undefined))
      .sort((a, b) => `${a.obj.metadata.namespace}/${a.obj.metadata.name}`.localeCompare(`${b.obj.metadata.namespace}/${b.obj.metadata.name}`))
      .map((o) => (rt.builtin ? structuredClone(o.obj) : this.typed(rt, version, o.obj)));
    return { kind: `${rt.kind}List`, apiVersion: apiVersionOf(rt.group, version), metadata: { resourceVersion: String(this.rv) }, items };
  }

  private watch(rt: ResourceType, version: string, ns: string | undefined, url: URL, res: http.ServerResponse, rec: RecordedRequest): void {
    rec.status = 200;
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // The API server sends the headers at once (Go flushes after WriteHeader); Node would
    // hold them until the first event, and a quiet watch would look unanswered.
    res.flushHeaders();
    const w: Watcher = { type: rt, version, namespace: ns, fields: url.searchParams.get('fieldSelector') ?? undefined, labels: url.searchParams.get('labelSelector') ?? undefined, bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true', res, timer: undefined };
    const from = url.searchParams.get('resourceVersion') ?? '';
    const timeoutS = Number(url.searchParams.get('timeoutSeconds') ?? '0');
    res.on('close', () => {
      clearTimeout(w.timer);
      this.watchers.delete(w);
    });
    if (from === '' || from === '0') {
      // "Any version": the current objects as ADDED, then changes.
      for (const o of this.objects.values()) if (o.rt === rt && (!ns || o.obj.metadata.namespace === ns) && matchesLabels(o.obj, w.labels) && matchesFields(o.obj, w.fields)) this.write(w, { type: 'ADDED', object: this.typed(rt, version, o.obj) });
    } else {
      const n = Number(from);
      if (!Number.isFinite(n) || n < this.compactedRv) {
        this.write(w, { type: 'ERROR', object: goneStatus(n, this.compactedRv) });
        res.end();
        return;
      }
      for (const c of this.history) {
        if (c.rv <= n) continue;
        const e = this.eventFor(w, c);
        if (e) this.write(w, e);
      }
    }
    this.watchers.add(w);
    if (timeoutS > 0) {
      w.timer = setTimeout(() => {
        if (w.bookmarks) this.sendBookmark(w);
        this.endWatch(w);
      }, timeoutS * 1000);
      w.timer.unref();
    }
  }

  private sendBookmark(w: Watcher): void {
    this.write(w, { type: 'BOOKMARK', object: { kind: w.type.kind, apiVersion: apiVersionOf(w.type.group, w.version), metadata: { resourceVersion: String(this.rv) } } });
  }

  private write(w: Watcher, event: Obj): void {
    if (!w.res.writableEnded) w.res.write(JSON.stringify(event) + '\n');
  }

  private endWatch(w: Watcher): void {
    clearTimeout(w.timer);
    this.watchers.delete(w);
    if (!w.res.writableEnded) w.res.end();
  }

  private groupList(): Obj {
    const groups = new Map<string, string[]>();
    for (const t of this.types) if (t.group) groups.set(t.group, [...new Set([...(groups.get(t.group) ?? []), ...t.versions])]);
    return {
      kind: 'APIGroupList', apiVersion: 'v1',
      groups: [...groups].map(([name, versions]) => ({ name, versions: versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v })), preferredVersion: { groupVersion: `${name}/${versions[0]}`, version: versions[0] } })),
    };
  }

  private groupOf(name: string, send: (s: number, p: unknown) => void): void {
    const g = (this.groupList().groups as Obj[]).find((x) => x.name === name);
    return g ? send(200, { kind: 'APIGroup', apiVersion: 'v1', ...g }) : send(404, status(404, 'NotFound', 'the server could not find the requested resource'));
  }

  private resourceList(group: string, version: string, send: (s: number, p: unknown) => void): void {
    const types = this.types.filter((t) => t.group === group && t.versions.includes(version));
    if (types.length === 0) return send(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const verbs = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
    const resources = types.flatMap((t) => [
      { name: t.plural, singularName: t.kind.toLowerCase(), namespaced: t.namespaced, kind: t.kind, verbs },
      ...(t.statusSubresource ? [{ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] }] : []),
    ]);
    send(200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf(group, version), resources });
  }

  private tokenReview(body: Obj): Obj {
    const token = String(body?.spec?.token ?? '');
    const wanted: string[] = body?.spec?.audiences ?? [];
    const info = this.tokens.get(token);
    const out: Obj = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', metadata: { creationTimestamp: null }, spec: body?.spec ?? {} };
    if (!info) return { ...out, status: { authenticated: false, error: '[invalid bearer token, square/go-jose: error in cryptographic primitive]', user: {} } };
    if (info.expiresAtMs !== undefined && Date.now() >= info.expiresAtMs) return { ...out, status: { authenticated: false, error: '[invalid bearer token, service account token has expired]', user: {} } };
    const audiences = wanted.length ? wanted.filter((a) => info.audiences.includes(a)) : info.audiences;
    if (audiences.length === 0) return { ...out, status: { authenticated: false, error: `[invalid bearer token, token audiences ${JSON.stringify(info.audiences)} is invalid for the target audiences ${JSON.stringify(wanted)}]`, user: {} } };
    return { ...out, status: { authenticated: true, audiences, user: { username: info.username, uid: info.uid ?? randomUUID(), groups: info.groups ?? [], extra: info.extra ?? {} } } };
  }
}

function status(code: number, reason: string, message: string, st = 'Failure'): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: st, message, reason, code };
}

function goneStatus(asked: number, oldest: number): Obj {
  return status(410, 'Expired', `too old resource version: ${asked} (${oldest})`);
}

function notFound(rt: ResourceType, name: string): Obj {
  return { ...status(404, 'NotFound', `${rt.plural}${rt.group ? `.${rt.group}` : ''} "${name}" not found`), details: { name, group: rt.group, kind: rt.plural } };
}

/** Equality-based selectors: `key`, `!key`, `key=value`, `key!=value`, comma-separated (AND). */
function matchesLabels(o: Obj, selector: string | undefined): boolean {
  if (!selector) return true;
  const labels: Record<string, string> = o.metadata?.labels ?? {};
  return selector.split(',').map((t) => t.trim()).filter(Boolean).every((term) => {
    const m = /^(!?)([^=!]+)(?:(!=|==|=)(.*))?$/.exec(term);
    if (!m) return false;
    const [, not, key, op, value] = m as unknown as [string, string, string, string | undefined, string | undefined];
    if (!op) return not ? !(key in labels) : key in labels;
    return op === '!=' ? labels[key] !== value : labels[key] === value;
  });
}

const SELECTABLE_FIELDS: Record<string, string[]> = {
  '*': ['metadata.name', 'metadata.namespace'],
  Pod: ['spec.nodeName', 'status.phase', 'status.podIP', 'spec.serviceAccountName'],
};

function selectorTerms(sel: string | null | undefined): { field: string; not: boolean; value: string }[] {
  if (!sel) return [];
  return sel.split(',').map((t) => t.trim()).filter(Boolean).map((term) => {
    const m = /^([^=!]+)(!=|==|=)(.*)$/.exec(term);
    return m ? { field: m[1]!.trim(), not: m[2] === '!=', value: m[3]! } : { field: term, not: false, value: '\u0000' };
  });
}

/** The first field of a selector the API server would refuse for this kind. */
function unsupportedField(rt: ResourceType, sel: string | null): string | undefined {
  const ok = [...SELECTABLE_FIELDS['*']!, ...(SELECTABLE_FIELDS[rt.kind] ?? [])];
  return selectorTerms(sel).find((t) => !ok.includes(t.field))?.field;
}

/** Field selectors: every term holds; an absent field's value is "". */
function matchesFields(o: Obj, sel: string | undefined): boolean {
  return selectorTerms(sel).every(({ field, not, value }) => {
    let v: unknown = o;
    for (const part of field.split('.')) v = (v as Obj | undefined)?.[part];
    return (String(v ?? '') === value) !== not;
  });
}

function stripTypeMeta(o: Obj): Obj {
  const { apiVersion: _a, kind: _k, ...rest } = o;
  void _a;
  void _k;
  return rest;
}

function stripNulls(o: unknown): Obj {
  return JSON.parse(JSON.stringify(o, (_k, v: unknown) => (v === null ? undefined : v))) as Obj;
}

function withoutMetaStatus(o: Obj): Obj {
  const { metadata: _m, status: _s, ...rest } = o;
  void _m;
  void _s;
  return rest;
}

/** RFC 7386. */
export function mergePatch(target: unknown, patch: unknown): Obj {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch as Obj;
  const out: Obj = typeof target === 'object' && target !== null && !Array.isArray(target) ? target as Obj : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function applyJsonPatch(doc: Obj, ops: Obj[]): { ok: true; value: Obj } | { ok: false; error: string } {
  for (const op of ops) {
    const path = String(op.path ?? '').split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = path.pop();
    let parent: Obj = doc as Obj;
    for (const p of path) {
      if (parent[p] === undefined) return { ok: false, error: `path ${op.path} does not exist` };
      parent = parent[p];
    }
    if (last === undefined) return { ok: false, error: 'empty path' };
    if (op.op === 'add' || op.op === 'replace') {
      if (Array.isArray(parent) && last === '-') (parent as unknown[]).push(op.value);
      else (parent as Obj)[last] = op.value;
    } else if (op.op === 'remove') {
      if (Array.isArray(parent)) (parent as unknown[]).splice(Number(last), 1);
      else delete parent[last];
    } else if (op.op === 'test') {
      if (JSON.stringify(parent[last]) !== JSON.stringify(op.value)) return { ok: false, error: `test failed at ${op.path}` };
    } else {
      return { ok: false, error: `unsupported op ${op.op}` };
    }
  }
  return { ok: true, value: doc };
}
