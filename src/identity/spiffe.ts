// SPIFFE identities of the form Istio uses: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
// This file is the one place that parses, prints and compares them.
//
// Invariants:
// - An Identity always has a non-empty trust domain of [a-z0-9._-] (SPIFFE: lowercase) and a
//   namespace and service account made of SPIFFE path characters [A-Za-z0-9._-], never `.` or `..`.
// - formatSpiffe(parseSpiffe(u)) === u for every accepted u: there is exactly one spelling, so
//   the string form can be used as a map key and compared with ===.
// - A principal (as in AuthorizationPolicy `principals`) is the SPIFFE URI without `spiffe://`.
import { AmbitError, err, ok, type Result } from '../core/errors.js';

export interface Identity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

export const SPIFFE_PREFIX = 'spiffe://';
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

const TRUST_DOMAIN_RE = /^[a-z0-9._-]+$/;
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;
const MAX_URI_LENGTH = 2048;
const MAX_TRUST_DOMAIN_LENGTH = 255;

const EXAMPLE = 'spiffe://cluster.local/ns/default/sa/default';

function invalid(input: string, why: string, hint?: string, kind = 'SPIFFE identity'): Result<never, AmbitError> {
  return err(
    new AmbitError('AMBIT_ERR_IDENTITY', `invalid ${kind} '${input}': ${why}`, {
      hint: hint ?? `expected the form ${EXAMPLE}`,
      details: { input },
    }),
  );
}

/** Parses `spiffe://<td>/ns/<ns>/sa/<sa>`; anything else is an AMBIT_ERR_IDENTITY with the reason. */
export function parseSpiffe(uri: string): Result<Identity, AmbitError> {
  if (typeof uri !== 'string' || uri.length === 0) return invalid(String(uri), 'it is empty');
  if (uri.length > MAX_URI_LENGTH) return invalid(uri.slice(0, 64) + '...', `it is longer than ${MAX_URI_LENGTH} characters`);
  if (!uri.startsWith(SPIFFE_PREFIX)) {
    if (uri.toLowerCase().startsWith(SPIFFE_PREFIX)) return invalid(uri, "the scheme must be written 'spiffe://' in lowercase");
    if (/^[^/:]+\/ns\//.test(uri)) return invalid(uri, "it has no 'spiffe://' scheme", `this looks like a principal; write spiffe://${uri}`);
    return invalid(uri, "it does not start with 'spiffe://'");
  }
  const rest = uri.slice(SPIFFE_PREFIX.length);
  if (/[?#]/.test(rest)) return invalid(uri, 'SPIFFE IDs may not have a query or fragment');
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const tdCheck = checkTrustDomain(trustDomain);
  if (tdCheck) return invalid(uri, tdCheck);
  if (slash === -1) return invalid(uri, 'it names only a trust domain, not a workload');
  return parsePath(uri, trustDomain, rest.slice(slash + 1));
}

/** Returns why a trust domain is invalid, or undefined when it is fine. */
export function checkTrustDomain(trustDomain: string): string | undefined {
  if (trustDomain.length === 0) return 'the trust domain is empty';
  if (trustDomain.length > MAX_TRUST_DOMAIN_LENGTH) return `the trust domain is longer than ${MAX_TRUST_DOMAIN_LENGTH} characters`;
  if (trustDomain.includes('@')) return 'the trust domain may not contain user info (@)';
  if (trustDomain.includes(':')) return 'the trust domain may not contain a port';
  if (!TRUST_DOMAIN_RE.test(trustDomain)) {
    return /[A-Z]/.test(trustDomain)
      ? `the trust domain '${trustDomain}' has uppercase letters; trust domains are lowercase`
      : `the trust domain '${trustDomain}' may contain only a-z, 0-9, '.', '-' and '_'`;
  }
  return undefined;
}

function parsePath(input: string, trustDomain: string, path: string): Result<Identity, AmbitError> {
  const parts = path.split('/');
  if (parts.length !== 4 || parts[0] !== 'ns' || parts[2] !== 'sa') {
    return invalid(input, `the path '/${path}' is not /ns/<namespace>/sa/<service-account>`);
  }
  const [, namespace, , serviceAccount] = parts as [string, string, string, string];
  for (const [what, value] of [['namespace', namespace], ['service account', serviceAccount]] as const) {
    if (value.length === 0) return invalid(input, `the ${what} is empty`);
    if (value === '.' || value === '..') return invalid(input, `the ${what} may not be '${value}'`);
    if (!SEGMENT_RE.test(value)) return invalid(input, `the ${what} '${value}' may contain only letters, digits, '.', '-' and '_'`);
  }
  return ok({ trustDomain, namespace, serviceAccount });
}

export function formatSpiffe(id: Identity): string {
  return `${SPIFFE_PREFIX}${principalOf(id)}`;
}

/** The identity as AuthorizationPolicy principals write it: `cluster.local/ns/a/sa/b`. */
export function principalOf(id: Identity): string {
  return `${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** Parses a principal (`cluster.local/ns/a/sa/b`, no scheme). */
export function parsePrincipal(principal: string): Result<Identity, AmbitError> {
  const example = principalOf({ trustDomain: DEFAULT_TRUST_DOMAIN, namespace: 'default', serviceAccount: 'default' });
  if (typeof principal !== 'string' || principal.length === 0) return invalid(String(principal), 'it is empty', undefined, 'principal');
  if (principal.includes('://')) {
    return invalid(principal, 'a principal has no scheme', `write it without 'spiffe://', e.g. ${example}`, 'principal');
  }
  const r = parseSpiffe(SPIFFE_PREFIX + principal);
  if (r.ok) return r;
  // Re-word the error so it shows what the user wrote, not our prefixed form.
  const why = r.error.message.replace(/^invalid SPIFFE identity '[^']*': /, '');
  return invalid(principal, why, `expected a principal of the form ${example}`, 'principal');
}

export function identityEquals(a: Identity, b: Identity): boolean {
  return a.trustDomain === b.trustDomain && a.namespace === b.namespace && a.serviceAccount === b.serviceAccount;
}

/** Like parseSpiffe but throws the AmbitError; for constants and tests. */
export function mustParseSpiffe(uri: string): Identity {
  const r = parseSpiffe(uri);
  if (!r.ok) throw r.error;
  return r.value;
}
