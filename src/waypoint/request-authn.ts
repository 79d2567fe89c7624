// RequestAuthentication at the waypoint: which JWT providers apply to a request, where its
// token is, and whether it authenticates. Pure apart from the injected `readFile`.
//
// Invariants (Istio's RequestAuthentication semantics, enforced as Envoy's jwt_authn does):
// - A request without any token is ANONYMOUS and passes authentication; only an
//   AuthorizationPolicy can require a token (requestPrincipals / request.auth.*).
// - A request whose token is invalid for every provider that reads its location is REJECTED
//   with 401, even if no AuthorizationPolicy asks for a token.
// - Every token found must be valid (a valid token does not excuse a second, invalid one);
//   the first valid one, in provider order, gives the request's identity. Istio leaves
//   requests with several tokens undefined; Ambit picks the fail-closed reading.
// - Default location when a rule sets none of fromHeaders/fromParams/fromCookies: the
//   `Authorization: Bearer <token>` header, then the `access_token` query parameter (Envoy).
// - principal = `<iss>/<sub>`, set only when both are non-empty strings (so
//   `requestPrincipals: ["*"]` never matches a token without `sub`); audiences = `aud`;
//   presenter = `azp`; claims = the whole payload.
// - forwardOriginalToken false (Istio's default): the headers that carried verified tokens are
//   listed in `stripHeaders` for the proxy to remove before forwarding (as Envoy does).
// - A token is verified only by the providers that read its location and name its issuer (as
//   Envoy picks a provider by `iss`); none -> "Jwt issuer ... is not configured".
// - Output headers of a verified token (in `outputHeaders`, for the proxy to set, replacing any
//   value the client sent): `outputPayloadToHeader` gets the token's payload segment
//   (base64url, as received); each `outputClaimToHeaders` entry gets its claim (a nested one
//   by `a.b`), formatted as Envoy does: a string as is, a bool as true/false, a whole number
//   from 0 to 2^64 as an integer, any other number with six decimals (`1.500000`), an object or
//   array as base64 of its JSON; a claim that is absent or an empty string sets no header.
// - Binding at a waypoint is by `targetRefs` only (Gateway = the waypoint, Service,
//   ServiceEntry, and root-namespace GatewayClass `istio-waypoint`); a selector-based or
//   namespace-wide RequestAuthentication is enforced by sidecars/gateways, never by a
//   waypoint, so it is reported as a warning and ignored here.
// - JWKS come inline (`jwks`) or from `jwksUri: file:///path`; Ambit fetches nothing over the
//   network, so an http(s) jwksUri is an error and the rule is left out (a request whose token
//   only that rule could verify is then rejected: fail closed).

import type { JwtRule, RequestAuthenticationResource } from '../config/resources.js';
import type { PolicyTarget, RequestAuthAttributes } from '../rbac/index.js';
import { policiesForTarget, policiesForWorkload } from '../rbac/index.js';
import { audiencesOf, decodeJwt, verifyJwt, type Jwks, type JsonWebKey } from './jwt.js';
import { policyTargetsOf, WAYPOINT_GATEWAY_CLASS, type WaypointTarget } from './waypoint-target.js';

export interface JwtProvider {
  issuer: string;
  audiences?: string[];
  jwks: Jwks;
  fromHeaders: { name: string; prefix?: string }[];
  fromParams: string[];
  fromCookies: string[];
  /** Istio's forwardOriginalToken (default false: the token header is removed before forwarding). */
  forwardOriginalToken: boolean;
  /** Istio's outputPayloadToHeader: this header gets the token's payload (base64url). */
  outputPayloadToHeader?: string;
  /** Istio's outputClaimToHeaders: header (lower-case) <- claim (`a.b` for a nested one). */
  outputClaimToHeaders?: { header: string; claim: string }[];
  /** `ns/name rule i` */
  source: string;
}

export interface RequestAuthnSet {
  /** Providers of the resources bound to one target (a Gateway is taken as an istio-waypoint one). */
  providersFor(target: PolicyTarget): JwtProvider[];
  /** Providers for a request through a waypoint: the waypoint's, then its service's (no duplicates). */
  providersForRequest(target: WaypointTarget): JwtProvider[];
  /**
   * Providers a sidecar applies to requests to its own pod: resources without targetRefs — in
   * the root namespace without selector (mesh-wide), in the pod's namespace without selector,
   * or with a selector matching the pod's labels — as Istio applies them to sidecars.
   */
  providersForWorkload(workload: { namespace: string; labels: Record<string, string> }): JwtProvider[];
  /** Rules left out (bad JWKS, network jwksUri...), each `ns/name rule i: message (hint)`. */
  errors: string[];
  /** Resources that apply to sidecars only, not at a waypoint (selector-based / no targetRefs). */
  warnings: string[];
}

export interface CompileRequestAuthnOptions {
  /** Root namespace for GatewayClass-bound resources (default `istio-system`). */
  rootNamespace?: string;
}

export const DEFAULT_JWT_HEADER = { name: 'Authorization', prefix: 'Bearer ' } as const;
export const DEFAULT_JWT_PARAM = 'access_token';

interface Bound {
  key: string;
  namespace: string;
  scope:
    | { kind: 'TARGET_REFS'; targetRefs: { group?: string; kind: string; name: string; namespace: string }[] }
    | { kind: 'GLOBAL' } | { kind: 'NAMESPACE' } | { kind: 'WORKLOAD_SELECTOR'; matchLabels: Record<string, string> };
  providers: JwtProvider[];
}

function parseJwks(text: string): Jwks | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e: unknown) {
    return `is not valid JSON (${e instanceof Error ? e.message : String(e)})`;
  }
  if (v === null || typeof v !== 'object' || !Array.isArray((v as { keys?: unknown }).keys)) {
    return 'is not a JSON Web Key Set ({"keys": [...]})';
  }
  const keys = (v as { keys: unknown[] }).keys.filter((k): k is JsonWebKey => k !== null && typeof k === 'object' && !Array.isArray(k));
  if (keys.length === 0) return 'has no keys';
  return { keys };
}

function jwksOf(rule: JwtRule, readFile: (path: string) => string): Jwks | string {
  const uri = rule.jwksUri ?? (rule as { jwks_uri?: string }).jwks_uri;
  if (rule.jwks !== undefined && rule.jwks !== '') {
    const r = parseJwks(rule.jwks);
    return typeof r === 'string' ? `jwks ${r}` : r;
  }
  if (uri === undefined || uri === '') return 'has neither jwks nor jwksUri (hint: inline the key set as jwks, or use jwksUri: file:///path)';
  if (!uri.startsWith('file://')) {
    return `jwksUri "${uri}" cannot be fetched: Ambit has no network fetch of keys (hint: inline the JWKS in jwks, or save it to a file and use jwksUri: file:///path/to/jwks.json)`;
  }
  let path: string;
  try {
    path = decodeURIComponent(new URL(uri).pathname);
  } catch {
    return `jwksUri "${uri}" is not a valid file:// URL (hint: file:///absolute/path.json)`;
  }
  let text: string;
  try {
    text = readFile(path);
  } catch (e: unknown) {
    return `jwksUri "${uri}": cannot read ${path} (${e instanceof Error ? e.message : String(e)}) (hint: check the file exists and is readable by the waypoint)`;
  }
  const r = parseJwks(text);
  return typeof r === 'string' ? `jwksUri "${uri}": the file ${r}` : r;
}

function providerOf(rule: JwtRule, jwks: Jwks, source: string): JwtProvider {
  const explicit = (rule.fromHeaders?.length ?? 0) + (rule.fromParams?.length ?? 0) + (rule.fromCookies?.length ?? 0) > 0;
  const p: JwtProvider = {
    issuer: rule.issuer,
    jwks,
    fromHeaders: explicit ? (rule.fromHeaders ?? []).map((h) => (h.prefix !== undefined ? { name: h.name, prefix: h.prefix } : { name: h.name })) : [{ ...DEFAULT_JWT_HEADER }],
    fromParams: explicit ? [...(rule.fromParams ?? [])] : [DEFAULT_JWT_PARAM],
    fromCookies: explicit ? [...(rule.fromCookies ?? [])] : [],
    forwardOriginalToken: rule.forwardOriginalToken === true,
    source,
  };
  if (rule.audiences?.length) p.audiences = [...rule.audiences];
  if (rule.outputPayloadToHeader) p.outputPayloadToHeader = rule.outputPayloadToHeader.toLowerCase();
  if (rule.outputClaimToHeaders?.length) p.outputClaimToHeaders = rule.outputClaimToHeaders.map((o) => ({ header: o.header.toLowerCase(), claim: o.claim }));
  return p;
}

export function compileRequestAuthn(
  resources: readonly RequestAuthenticationResource[],
  readFile: (path: string) => string,
  opts: CompileRequestAuthnOptions = {},
): RequestAuthnSet {
  const rootNamespace = opts.rootNamespace ?? 'istio-system';
  const errors: string[] = [];
  const warnings: string[] = [];
  const bound: Bound[] = [];
  const sorted = [...resources].sort((a, b) => {
    const ka = `${a.metadata.namespace ?? 'default'}/${a.metadata.name}`;
    const kb = `${b.metadata.namespace ?? 'default'}/${b.metadata.name}`;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  for (const r of sorted) {
    const namespace = r.metadata.namespace ?? 'default';
    const key = `${namespace}/${r.metadata.name}`;
    const spec = r.spec ?? {};
    const refs = spec.targetRefs?.length ? spec.targetRefs : spec.targetRef ? [spec.targetRef] : [];
    if (refs.length === 0) {
      warnings.push(
        `${key}: RequestAuthentication ${spec.selector ? 'with a selector' : 'without targetRefs'} applies to sidecars only, not at a waypoint ` +
          '(hint: add targetRefs to the waypoint Gateway or to a Service to have the waypoint validate JWTs)',
      );
    }
    const providers: JwtProvider[] = [];
    (spec.jwtRules ?? []).forEach((rule, i) => {
      const source = `${key} rule ${i}`;
      if (!rule || typeof rule.issuer !== 'string' || rule.issuer === '') {
        errors.push(`${source}: a JWT rule needs an issuer`);
        return;
      }
      const jwks = jwksOf(rule, readFile);
      if (typeof jwks === 'string') {
        errors.push(`${source}: ${jwks}`);
        return;
      }
      providers.push(providerOf(rule, jwks, source));
    });
    const scope: Bound['scope'] = refs.length > 0
      ? { kind: 'TARGET_REFS', targetRefs: refs.map((t) => ({ ...t, namespace: t.namespace ?? namespace })) }
      : spec.selector?.matchLabels ? { kind: 'WORKLOAD_SELECTOR', matchLabels: spec.selector.matchLabels }
        : namespace === rootNamespace ? { kind: 'GLOBAL' } : { kind: 'NAMESPACE' };
    bound.push({ key, namespace, scope, providers });
  }
  const providersFor = (target: PolicyTarget): JwtProvider[] => {
    const t: PolicyTarget = target.kind === 'Gateway' && target.gatewayClassName === undefined ? { ...target, gatewayClassName: WAYPOINT_GATEWAY_CLASS } : target;
    return policiesForTarget(bound, t, { rootNamespace }).flatMap((b) => b.providers);
  };
  return {
    errors,
    warnings,
    providersFor,
    providersForRequest(target: WaypointTarget): JwtProvider[] {
      return [...new Set(policyTargetsOf(target).flatMap(providersFor))];
    },
    providersForWorkload(workload): JwtProvider[] {
      return policiesForWorkload(bound, workload, rootNamespace).flatMap((b) => b.providers);
    },
  };
}

// ---- authentication of one request ----

export type AuthnResult =
  | {
      kind: 'authenticated';
      auth: RequestAuthAttributes;
      tokenPresent: true;
      provider: string;
      /** Headers (lower-case) carrying a verified token to remove before forwarding (forwardOriginalToken false). */
      stripHeaders: string[];
      /** Headers (lower-case name, value) to set before forwarding: outputPayloadToHeader, outputClaimToHeaders. */
      outputHeaders: [string, string][];
    }
  | { kind: 'anonymous'; tokenPresent: false }
  | { kind: 'rejected'; status: 401; reason: string; wwwAuthenticate: string };

export interface AuthnRequest {
  headers: Record<string, string | string[] | undefined>;
  /** Request target (path and query). */
  path: string;
}

/** Where a token was found; providers reading that location may verify it. */
interface FoundToken {
  token: string;
  where: string;
  /** Lower-case header name when the token came from a header. */
  header?: string;
  providers: JwtProvider[];
}

function headerValues(headers: AuthnRequest['headers'], name: string): string[] {
  const lower = name.toLowerCase();
  const out: string[] = [];
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== lower || v === undefined) continue;
    out.push(...(Array.isArray(v) ? v : [v]));
  }
  return out;
}

function tokenFromHeader(value: string, name: string, prefix: string | undefined): string | null {
  let v = value.trim();
  if (prefix !== undefined && prefix !== '') {
    const isDefaultBearer = name.toLowerCase() === 'authorization' && prefix.toLowerCase() === 'bearer ';
    const starts = isDefaultBearer ? v.toLowerCase().startsWith('bearer ') : v.startsWith(prefix);
    if (!starts) return null;
    v = v.slice(prefix.length).trim();
  }
  return v === '' ? null : v;
}

function queryParams(path: string): URLSearchParams {
  const q = path.indexOf('?');
  if (q < 0) return new URLSearchParams();
  const h = path.indexOf('#', q);
  return new URLSearchParams(path.slice(q + 1, h < 0 ? undefined : h));
}

function cookies(headers: AuthnRequest['headers']): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of headerValues(headers, 'cookie')) {
    for (const part of line.split(';')) {
      const eq = part.indexOf('=');
      if (eq <= 0) continue;
      const k = part.slice(0, eq).trim();
      if (!out.has(k)) out.set(k, part.slice(eq + 1).trim());
    }
  }
  return out;
}

function findTokens(providers: readonly JwtProvider[], req: AuthnRequest): FoundToken[] {
  const found = new Map<string, FoundToken>(); // by location + token
  const add = (where: string, token: string, p: JwtProvider, header?: string): void => {
    const k = `${where}\u0000${token}`;
    const f = found.get(k);
    if (f) {
      if (!f.providers.includes(p)) f.providers.push(p);
    } else found.set(k, header === undefined ? { token, where, providers: [p] } : { token, where, header, providers: [p] });
  };
  const params = queryParams(req.path);
  const jar = cookies(req.headers);
  for (const p of providers) {
    for (const h of p.fromHeaders) {
      for (const v of headerValues(req.headers, h.name)) {
        const t = tokenFromHeader(v, h.name, h.prefix);
        if (t !== null) add(`header ${h.name.toLowerCase()}`, t, p, h.name.toLowerCase());
      }
    }
    for (const name of p.fromParams) for (const v of params.getAll(name)) if (v !== '') add(`query parameter ${name}`, v, p);
    for (const name of p.fromCookies) {
      const v = jar.get(name);
      if (v !== undefined && v !== '') add(`cookie ${name}`, v, p);
    }
  }
  return [...found.values()];
}

/** The request attributes of a verified token. */
export function authAttributesOf(claims: Record<string, unknown>): RequestAuthAttributes {
  const auth: RequestAuthAttributes = { claims, audiences: audiencesOf(claims) };
  const { iss, sub, azp } = claims;
  if (typeof iss === 'string' && iss !== '' && typeof sub === 'string' && sub !== '') auth.principal = `${iss}/${sub}`;
  if (typeof azp === 'string') auth.presenter = azp;
  return auth;
}

function realmOf(req: AuthnRequest): string {
  const host = headerValues(req.headers, 'host')[0] ?? headerValues(req.headers, ':authority')[0] ?? '';
  const q = req.path.search(/[?#]/);
  const path = q >= 0 ? req.path.slice(0, q) : req.path;
  return `http://${host}${path}`;
}

function reject(req: AuthnRequest, reason: string): AuthnResult {
  return { kind: 'rejected', status: 401, reason, wwwAuthenticate: `Bearer realm="${realmOf(req)}", error="invalid_token"` };
}

/** A claim as Envoy copies it into a header (see the invariants); undefined sets no header. */
export function claimHeaderValue(claims: Record<string, unknown>, path: string): string | undefined {
  let cur: unknown = claims;
  for (const p of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  switch (typeof cur) {
    case 'string': return cur === '' ? undefined : cur;
    case 'boolean': return cur ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(cur)) return undefined;
      return Number.isInteger(cur) && cur >= 0 && cur < 2 ** 64 ? BigInt(cur).toString() : cur.toFixed(6);
    case 'object': return cur === null ? undefined : Buffer.from(JSON.stringify(cur)).toString('base64');
    default: return undefined;
  }
}

function outputHeadersOf(p: JwtProvider, token: string, claims: Record<string, unknown>): [string, string][] {
  const out: [string, string][] = [];
  if (p.outputPayloadToHeader) out.push([p.outputPayloadToHeader, token.split('.')[1] ?? '']);
  for (const o of p.outputClaimToHeaders ?? []) {
    const v = claimHeaderValue(claims, o.claim);
    if (v !== undefined) out.push([o.header, v]);
  }
  return out;
}

interface Verified {
  auth: RequestAuthAttributes;
  provider: string;
}

/**
 * Authenticates one request against the providers bound to its waypoint/service (see
 * `providersFor`). No providers: every request is anonymous (tokens are not inspected).
 */
export async function authenticateRequest(providers: readonly JwtProvider[], req: AuthnRequest, nowSec: number): Promise<AuthnResult> {
  if (providers.length === 0) return { kind: 'anonymous', tokenPresent: false };
  const tokens = findTokens(providers, req);
  if (tokens.length === 0) return { kind: 'anonymous', tokenPresent: false };

  let first: Verified | null = null;
  const strip = new Set<string>();
  const outputHeaders: [string, string][] = [];
  for (const t of tokens) {
    const decoded = decodeJwt(t.token);
    if (!decoded) {
      // Malformed: any provider says why in the same words.
      const v = await verifyJwt(t.token, t.providers[0]!.jwks, { issuer: t.providers[0]!.issuer, nowSec });
      return reject(req, `${v.ok ? 'Jwt verification fails' : v.reason} (token in ${t.where})`);
    }
    const iss = decoded.claims.iss;
    const candidates = t.providers.filter((p) => p.issuer === iss);
    if (candidates.length === 0) {
      const reason = typeof iss === 'string' ? `Jwt issuer ${JSON.stringify(iss)} is not configured` : 'Jwt has no iss claim';
      return reject(req, `${reason} (token in ${t.where})`);
    }
    let reason: string | null = null;
    let ok: Verified | null = null;
    for (const p of candidates) {
      const v = await verifyJwt(t.token, p.jwks, { issuer: p.issuer, ...(p.audiences ? { audiences: p.audiences } : {}), nowSec });
      if (v.ok) {
        ok = { auth: authAttributesOf(v.claims), provider: p.source };
        if (t.header !== undefined && !p.forwardOriginalToken) strip.add(t.header);
        outputHeaders.push(...outputHeadersOf(p, t.token, v.claims));
        break;
      }
      reason ??= v.reason;
    }
    if (!ok) return reject(req, `${reason ?? 'Jwt verification fails'} (token in ${t.where})`);
    first ??= ok;
  }
  const f = first as Verified;
  return { kind: 'authenticated', auth: f.auth, tokenPresent: true, provider: f.provider, stripHeaders: [...strip], outputHeaders };
}
