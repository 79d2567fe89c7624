// AuthorizationPolicy resource -> CompiledPolicy (see compiled-policy.ts for the shape and its
// invariants). Pure: never throws on a validated resource, and on an unvalidated one turns every
// problem into a PolicyWarning and the narrowest reading that stays on the safe side:
// - an invalid value (a bad CIDR, a port that is not a number) can match nothing: dropped from a
//   positive list (a list left with no valid value makes its entry match nothing), ignored in a
//   not-list (not(nothing) always holds);
// - an unknown `when` key can never be proven: ALLOW rules using it never match, other actions
//   treat it as "may match" (evaluate.ts);
// - an entry with no attribute at all (`source: {}`) matches anything, as Envoy reads it.

import type {
  AuthorizationPolicyResource,
  AuthorizationPolicySpec,
  AuthorizationRule,
  RuleCondition,
  RuleOperation,
  RuleSource,
} from '../config/resources.js';
import type { AddressMatch, ServiceAccountMatch, StringMatch } from '../xds/workload-api.js';
import { stripSpiffe } from './attributes.js';
import {
  emptyCompiledMatch,
  isEmptyCompiledMatch,
  type CompiledAction,
  type CompiledClause,
  type CompiledMatch,
  type CompiledPolicy,
  type CompiledRule,
  type PolicyScope,
  type PolicyWarning,
} from './compiled-policy.js';
import { parseCidr } from './ip-match.js';
import { lowerStringMatch, toStringMatch } from './string-match.js';

export interface CompileOptions {
  /** The mesh's root namespace (Istio's default: `istio-system`). */
  rootNamespace: string;
  /**
   * The mesh's trust domain. When it is not `cluster.local`, principals written with the trust
   * domain `cluster.local` also match this trust domain (Istio reads `cluster.local` in a policy
   * as "the local trust domain").
   */
  trustDomain?: string;
}

export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';
const DEFAULT_TRUST_DOMAIN = 'cluster.local';

/** Go's strconv.ParseBool truths, as Istio reads the dry-run annotation. */
function parseBool(v: string | undefined): boolean {
  return v !== undefined && ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v);
}

export function compilePolicy(resource: AuthorizationPolicyResource, opts: CompileOptions): CompiledPolicy {
  const name = resource.metadata.name;
  const namespace = resource.metadata.namespace ?? 'default';
  const key = `${namespace}/${name}`;
  const spec = resource.spec ?? {};
  const action: CompiledAction = spec.action ?? 'ALLOW';
  const warnings: PolicyWarning[] = [];
  const ctx: Ctx = { key, namespace, trustDomain: opts.trustDomain, warnings, ruleIndex: 0 };

  const rules: CompiledRule[] = [];
  (spec.rules ?? []).forEach((rule, i) => {
    ctx.ruleIndex = i;
    const compiled = compileRule(rule ?? {}, i, ctx);
    if (compiled) rules.push(compiled);
  });

  const policy: CompiledPolicy = {
    name,
    namespace,
    key,
    action,
    scope: policyScopeOf(resource, namespace, opts.rootNamespace),
    dryRun: parseBool(resource.metadata.annotations?.[DRY_RUN_ANNOTATION]),
    rules,
    warnings,
  };
  if (action === 'CUSTOM' && spec.provider?.name) policy.provider = spec.provider.name;
  return policy;
}

/** Where a policy-like resource (AuthorizationPolicy, Telemetry) applies: targetRefs, selector, namespace or mesh. */
export function policyScopeOf(resource: { spec?: Pick<AuthorizationPolicySpec, 'selector' | 'targetRef' | 'targetRefs'> }, namespace: string, rootNamespace: string): PolicyScope {
  const spec = resource.spec ?? {};
  const refs = spec.targetRefs?.length ? spec.targetRefs : spec.targetRef ? [spec.targetRef] : [];
  if (refs.length > 0) {
    return { kind: 'TARGET_REFS', targetRefs: refs.map((r) => ({ ...r, namespace: r.namespace ?? namespace })) };
  }
  if (spec.selector) return { kind: 'WORKLOAD_SELECTOR', matchLabels: { ...(spec.selector.matchLabels ?? {}) } };
  return namespace === rootNamespace ? { kind: 'GLOBAL' } : { kind: 'NAMESPACE' };
}

interface Ctx {
  key: string;
  namespace: string;
  trustDomain: string | undefined;
  warnings: PolicyWarning[];
  ruleIndex: number;
}

/** What one from/to entry or when condition became. */
type Entry = { kind: 'match'; match: CompiledMatch } | { kind: 'always' } | { kind: 'never' };

function compileRule(rule: AuthorizationRule, index: number, ctx: Ctx): CompiledRule | null {
  const clauses: CompiledClause[] = [];
  const add = (entries: Entry[], origin: 'from' | 'to' | 'when', key?: string): boolean => {
    // One `always` entry makes the OR of the clause always true: the clause adds nothing.
    if (entries.some((e) => e.kind === 'always')) return true;
    const matches = entries.flatMap((e) => (e.kind === 'match' ? [e.match] : []));
    if (matches.length === 0) return false; // every entry matches nothing: so does the rule
    clauses.push(key === undefined ? { origin, matches } : { origin, key, matches });
    return true;
  };
  if (rule.from?.length) {
    const entries = rule.from.map((f, j) => sourceEntry(f?.source ?? {}, `from[${j}].source`, ctx));
    if (!add(entries, 'from')) return null;
  }
  if (rule.to?.length) {
    const entries = rule.to.map((t, j) => operationEntry(t?.operation ?? {}, `to[${j}].operation`, ctx));
    if (!add(entries, 'to')) return null;
  }
  for (const [j, cond] of (rule.when ?? []).entries()) {
    if (!add([conditionEntry(cond, `when[${j}]`, ctx)], 'when', cond.key)) return null;
  }
  return { index, clauses };
}

// ---- value parsers: each returns the parsed values, or null when the value is invalid ----

type Parser<T> = (v: string) => T[] | null;

const strings: Parser<StringMatch> = (v) => [toStringMatch(v)];
const hosts: Parser<StringMatch> = (v) => [lowerStringMatch(toStringMatch(v))];
const exact: Parser<string> = (v) => [v];
const cidrs: Parser<AddressMatch> = (v) => {
  const c = parseCidr(v);
  return c ? [c] : null;
};
const ports: Parser<number> = (v) => {
  const t = v.trim();
  if (!/^[0-9]{1,5}$/.test(t)) return null;
  const n = Number(t);
  return n <= 65535 ? [n] : null;
};

function principals(ctx: Ctx): Parser<StringMatch> {
  return (v) => {
    const stripped = stripSpiffe(v.trim());
    const out = [toStringMatch(stripped)];
    const td = ctx.trustDomain;
    const local = `${DEFAULT_TRUST_DOMAIN}/`;
    if (td && td !== DEFAULT_TRUST_DOMAIN && stripped.startsWith(local)) {
      out.push(toStringMatch(`${td}/${stripped.slice(local.length)}`));
    }
    return out;
  };
}

function serviceAccounts(ctx: Ctx): Parser<ServiceAccountMatch> {
  return (v) => {
    const parts = v.trim().split('/');
    if (parts.length === 1 && parts[0]) return [{ namespace: ctx.namespace, serviceAccount: parts[0] }];
    if (parts.length === 2 && parts[0] && parts[1]) return [{ namespace: parts[0], serviceAccount: parts[1] }];
    return null;
  };
}

const INVALID_HINT: Record<string, string> = {
  cidr: 'is not an IP address or CIDR',
  port: 'is not a port number (0-65535)',
  sa: 'is not a service account (`ns/sa` or `sa`)',
};

/** Collects the fields of one entry, noting invalid values and impossible positive lists. */
class EntryBuilder {
  readonly match = emptyCompiledMatch();
  private never = false;
  private given = false;

  constructor(
    private readonly ctx: Ctx,
    private readonly where: string,
  ) {}

  add<T>(target: T[], values: string[] | undefined, parse: Parser<T>, attr: string, positive: boolean, kind = ''): void {
    if (!values || values.length === 0) return;
    this.given = true;
    let valid = 0;
    for (const v of values) {
      // YAML may hand a number (`ports: [8080]`); anything else that is not a string is invalid.
      const text: unknown = v;
      const parsed = typeof text === 'string' ? parse(text) : typeof text === 'number' ? parse(String(text)) : null;
      if (parsed === null) {
        this.ctx.warnings.push({
          policy: this.ctx.key,
          ruleIndex: this.ctx.ruleIndex,
          attributes: [attr],
          code: 'AMBIT_WARN_AUTHZ_INVALID_VALUE',
          message:
            `${this.where}: ${attr} value ${JSON.stringify(v)} ${INVALID_HINT[kind] ?? 'is invalid'}; ` +
            (positive ? 'it can match nothing and is ignored.' : 'a negation of it always holds, so it is ignored.'),
        });
        continue;
      }
      valid++;
      target.push(...parsed);
    }
    if (positive && valid === 0) this.never = true;
  }

  /** Both the positive and the negated list of one attribute. */
  pair<T>(pos: T[], neg: T[], values: string[] | undefined, notValues: string[] | undefined, parse: Parser<T>, attr: string, notAttr: string, kind = ''): void {
    this.add(pos, values, parse, attr, true, kind);
    this.add(neg, notValues, parse, notAttr, false, kind);
  }

  markGiven(): void {
    this.given = true;
  }

  done(): Entry {
    if (this.never) return { kind: 'never' };
    if (isEmptyCompiledMatch(this.match)) {
      if (!this.given) {
        this.ctx.warnings.push({
          policy: this.ctx.key,
          ruleIndex: this.ctx.ruleIndex,
          attributes: [],
          code: 'AMBIT_WARN_AUTHZ_EMPTY_ENTRY',
          message: `${this.where} sets no attribute, so it matches anything.`,
        });
      }
      return { kind: 'always' };
    }
    return { kind: 'match', match: this.match };
  }
}

function sourceEntry(s: RuleSource, where: string, ctx: Ctx): Entry {
  const b = new EntryBuilder(ctx, where);
  const m = b.match;
  b.pair(m.principals, m.notPrincipals, s.principals, s.notPrincipals, principals(ctx), 'principals', 'notPrincipals');
  b.pair(m.requestPrincipals, m.notRequestPrincipals, s.requestPrincipals, s.notRequestPrincipals, strings, 'requestPrincipals', 'notRequestPrincipals');
  b.pair(m.namespaces, m.notNamespaces, s.namespaces, s.notNamespaces, strings, 'namespaces', 'notNamespaces');
  b.pair(m.serviceAccounts, m.notServiceAccounts, s.serviceAccounts, s.notServiceAccounts, serviceAccounts(ctx), 'serviceAccounts', 'notServiceAccounts', 'sa');
  b.pair(m.sourceIps, m.notSourceIps, s.ipBlocks, s.notIpBlocks, cidrs, 'ipBlocks', 'notIpBlocks', 'cidr');
  b.pair(m.remoteIps, m.notRemoteIps, s.remoteIpBlocks, s.notRemoteIpBlocks, cidrs, 'remoteIpBlocks', 'notRemoteIpBlocks', 'cidr');
  return b.done();
}

function operationEntry(o: RuleOperation, where: string, ctx: Ctx): Entry {
  const b = new EntryBuilder(ctx, where);
  const m = b.match;
  b.pair(m.hosts, m.notHosts, o.hosts, o.notHosts, hosts, 'hosts', 'notHosts');
  b.pair(m.destinationPorts, m.notDestinationPorts, o.ports, o.notPorts, ports, 'ports', 'notPorts', 'port');
  b.pair(m.methods, m.notMethods, o.methods, o.notMethods, exact, 'methods', 'notMethods');
  b.pair(m.paths, m.notPaths, o.paths, o.notPaths, strings, 'paths', 'notPaths');
  return b.done();
}

const HEADER_KEY = /^request\.headers\[([^\]]+)\]$/;
const CLAIMS_KEY = /^request\.auth\.claims((?:\[[^\]]+\])+)$/;

/** Parses `request.auth.claims[a][b]` into ['a', 'b']; null for another key. */
export function parseClaimsKey(key: string): string[] | null {
  const m = CLAIMS_KEY.exec(key);
  if (!m) return null;
  return [...(m[1] as string).matchAll(/\[([^\]]+)\]/g)].map((x) => x[1] as string);
}

function conditionEntry(c: RuleCondition, where: string, ctx: Ctx): Entry {
  const b = new EntryBuilder(ctx, `${where} (${c.key})`);
  const m = b.match;
  const { key, values, notValues } = c;
  const pair = <T>(pos: T[], neg: T[], parse: Parser<T>, kind = ''): void =>
    b.pair(pos, neg, values, notValues, parse, key, key, kind);
  switch (key) {
    case 'source.ip': pair(m.sourceIps, m.notSourceIps, cidrs, 'cidr'); break;
    case 'source.namespace': pair(m.namespaces, m.notNamespaces, strings); break;
    case 'source.principal': pair(m.principals, m.notPrincipals, principals(ctx)); break;
    case 'source.serviceAccount': pair(m.serviceAccounts, m.notServiceAccounts, serviceAccounts(ctx), 'sa'); break;
    case 'destination.ip': pair(m.destinationIps, m.notDestinationIps, cidrs, 'cidr'); break;
    case 'destination.port': pair(m.destinationPorts, m.notDestinationPorts, ports, 'port'); break;
    case 'remote.ip': pair(m.remoteIps, m.notRemoteIps, cidrs, 'cidr'); break;
    case 'request.auth.principal': pair(m.requestPrincipals, m.notRequestPrincipals, strings); break;
    case 'request.auth.audiences': pair(m.audiences, m.notAudiences, strings); break;
    case 'request.auth.presenter': pair(m.presenters, m.notPresenters, strings); break;
    case 'connection.sni': pair(m.sni, m.notSni, strings); break;
    default: {
      const header = HEADER_KEY.exec(key);
      const claimPath = parseClaimsKey(key);
      if (header || claimPath) {
        const keyed = { values: [] as StringMatch[], notValues: [] as StringMatch[] };
        b.pair(keyed.values, keyed.notValues, values, notValues, strings, key, key);
        if (keyed.values.length || keyed.notValues.length) {
          if (header) m.headers.push({ name: (header[1] as string).toLowerCase(), ...keyed });
          else m.claims.push({ path: claimPath as string[], ...keyed });
        }
      } else {
        ctx.warnings.push({
          policy: ctx.key,
          ruleIndex: ctx.ruleIndex,
          attributes: [key],
          code: 'AMBIT_WARN_AUTHZ_UNKNOWN_KEY',
          message:
            `${where}: Ambit does not know the condition key ${JSON.stringify(key)}; it can never be ` +
            'proven, so ALLOW rules using it match nothing and other actions treat it as matching.',
        });
        b.markGiven();
        m.unknown.push({ key, values: [...(values ?? [])], notValues: [...(notValues ?? [])] });
      }
    }
  }
  return b.done();
}
