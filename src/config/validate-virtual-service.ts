// Semantic checks of an Istio VirtualService (networking.istio.io), and the Istio duration
// syntax. Shapes are checked by the schema in kinds.ts; here: what a shape cannot say
// (one of exact/prefix/regex, valid regexes and durations, percentages in 0..100, fields
// Ambit's waypoint does not implement). Every problem is reported; nothing stops early.
//
// Facts followed (Istio's VirtualService reference):
// - durations are Go-style ("1h", "1m", "1s", "1ms", "1.5s"), at least 1ms;
// - header names in a match must be lower-case;
// - query parameters match only by exact or regex;
// - a rule routes, redirects or answers directly (not two of them);
// - redirectCode is 301 (default), 302, 303, 307 or 308;
// - fault delay/abort without `percentage` applies to no request ("If left unspecified,
//   no request will be delayed"), so Ambit warns.
import type { PathSegment } from './diagnostics.js';
import type { IstioDestination, IstioPercent, IstioStringMatch, VirtualServiceResource } from './resources.js';
import type { Reporter } from './validate-resource.js';
import { regexProblem } from './re2.js';

const GO_DURATION = /^(?:[0-9]+(?:\.[0-9]+)?(?:h|m|s|ms|us|µs|ns))+$/;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, 'µs': 0.001, ns: 0.000001 };

/** Istio (protobuf/Go) duration -> milliseconds; undefined when malformed. */
export function parseIstioDuration(s: string): number | undefined {
  if (!GO_DURATION.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/([0-9]+(?:\.[0-9]+)?)(h|ms|m|s|us|µs|ns)/g)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return total;
}

export function checkVirtualService(vs: VirtualServiceResource, rep: Reporter): void {
  const spec = vs.spec;
  if (spec.gateways?.length && !spec.gateways.includes('mesh')) {
    rep.warn(['spec', 'gateways'], 'not-for-mesh', 'this VirtualService is bound to gateways only (no "mesh"); waypoints ignore it');
  }
  if ((spec.tcp as unknown[] | undefined)?.length) rep.warn(['spec', 'tcp'], 'unsupported', 'tcp routes are ignored; Ambit routes only HTTP in waypoints');
  if ((spec.tls as unknown[] | undefined)?.length) rep.warn(['spec', 'tls'], 'unsupported', 'tls routes are ignored; Ambit routes only HTTP in waypoints');
  spec.hosts.forEach((h, i) => {
    if (h.includes('*') && h !== '*' && !(h.startsWith('*.') && !h.slice(2).includes('*'))) {
      rep.error(['spec', 'hosts', i], 'bad-host', `"${h}": a wildcard may only be a leading "*."`);
    }
  });
  (spec.http ?? []).forEach((rule, ri) => {
    const at: PathSegment[] = ['spec', 'http', ri];
    if (rule.delegate !== undefined) rep.error([...at, 'delegate'], 'unsupported', 'delegate is not supported by Ambit');
    if (rule.directResponse !== undefined) rep.error([...at, 'directResponse'], 'unsupported', 'directResponse is not supported by Ambit; route to a Service instead');
    if (rule.route?.length && rule.redirect) rep.error([...at, 'redirect'], 'conflict', 'a rule either routes or redirects; remove route or redirect');
    if (!rule.route?.length && !rule.redirect && rule.directResponse === undefined && rule.delegate === undefined) {
      rep.error(at, 'missing-field', 'a rule needs route (or redirect)');
    }
    (rule.match ?? []).forEach((m, mi) => {
      const mat: PathSegment[] = [...at, 'match', mi];
      if (m.uri) checkStringMatch(m.uri, [...mat, 'uri'], rep, false);
      if (m.method) checkStringMatch(m.method, [...mat, 'method'], rep, false);
      if (m.authority) checkStringMatch(m.authority, [...mat, 'authority'], rep, false);
      if (m.scheme) checkStringMatch(m.scheme, [...mat, 'scheme'], rep, false);
      for (const k of ['headers', 'withoutHeaders'] as const) {
        for (const [name, sm] of Object.entries(m[k] ?? {})) {
          if (name !== name.toLowerCase()) rep.error([...mat, k, name], 'bad-header', `header names must be lower-case: write "${name.toLowerCase()}"`);
          checkStringMatch(sm, [...mat, k, name], rep, true);
        }
      }
      for (const [name, sm] of Object.entries(m.queryParams ?? {})) {
        if (sm.prefix !== undefined) rep.error([...mat, 'queryParams', name, 'prefix'], 'unsupported', 'query parameters match only by exact or regex');
        checkStringMatch(sm, [...mat, 'queryParams', name], rep, true);
      }
      for (const k of ['sourceLabels', 'sourceNamespace', 'gateways'] as const) {
        if (m[k] !== undefined) rep.warn([...mat, k], 'unsupported', `${k} is not evaluated by Ambit's waypoint; this condition is ignored`);
      }
    });
    const dests = rule.route ?? [];
    dests.forEach((d, di) => checkDestination(d.destination, [...at, 'route', di, 'destination'], rep));
    if (dests.length > 1 && dests.every((d) => (d.weight ?? 0) === 0)) {
      rep.warn([...at, 'route'], 'zero-weights', 'every destination has weight 0: requests get 500');
    }
    if (rule.redirect?.redirectCode !== undefined && ![301, 302, 303, 307, 308].includes(rule.redirect.redirectCode)) {
      rep.error([...at, 'redirect', 'redirectCode'], 'bad-value', `${rule.redirect.redirectCode} is not a redirect status (301, 302, 303, 307, 308)`);
    }
    if (rule.redirect?.scheme !== undefined && !['http', 'https'].includes(rule.redirect.scheme)) {
      rep.error([...at, 'redirect', 'scheme'], 'bad-value', `"${rule.redirect.scheme}" is not http or https`);
    }
    if (rule.rewrite?.uri !== undefined && rule.rewrite.uriRegexRewrite) rep.error([...at, 'rewrite'], 'conflict', 'set rewrite.uri or rewrite.uriRegexRewrite, not both');
    if (rule.rewrite?.uriRegexRewrite) checkRegex(rule.rewrite.uriRegexRewrite.match, [...at, 'rewrite', 'uriRegexRewrite', 'match'], rep);
    checkDuration(rule.timeout, [...at, 'timeout'], rep);
    checkDuration(rule.retries?.perTryTimeout, [...at, 'retries', 'perTryTimeout'], rep);
    checkDuration(rule.retries?.backoff, [...at, 'retries', 'backoff'], rep);
    const delay = rule.fault?.delay;
    if (delay) {
      if (delay.exponentialDelay !== undefined) rep.error([...at, 'fault', 'delay', 'exponentialDelay'], 'unsupported', 'exponentialDelay is not supported; use fixedDelay');
      if (delay.fixedDelay === undefined && delay.exponentialDelay === undefined) rep.error([...at, 'fault', 'delay'], 'missing-field', 'a delay needs fixedDelay');
      checkDuration(delay.fixedDelay, [...at, 'fault', 'delay', 'fixedDelay'], rep);
      checkPercent(delay.percentage, [...at, 'fault', 'delay', 'percentage'], rep);
      if (delay.percentage?.value === undefined && delay.percent === undefined) {
        rep.warn([...at, 'fault', 'delay'], 'no-percentage', 'without percentage no request is delayed (Istio semantics); add percentage: {value: 100}');
      }
    }
    const abort = rule.fault?.abort;
    if (abort) {
      if (abort.grpcStatus !== undefined || abort.http2Error !== undefined) rep.error([...at, 'fault', 'abort'], 'unsupported', 'only httpStatus aborts are supported');
      else if (abort.httpStatus === undefined) rep.error([...at, 'fault', 'abort'], 'missing-field', 'an abort needs httpStatus');
      checkPercent(abort.percentage, [...at, 'fault', 'abort', 'percentage'], rep);
      if (abort.percentage?.value === undefined) {
        rep.warn([...at, 'fault', 'abort'], 'no-percentage', 'without percentage no request is aborted (Istio semantics); add percentage: {value: 100}');
      }
    }
    if (rule.mirror) checkDestination(rule.mirror, [...at, 'mirror'], rep);
    checkPercent(rule.mirrorPercentage, [...at, 'mirrorPercentage'], rep);
    (rule.mirrors ?? []).forEach((m, i) => {
      checkDestination(m.destination, [...at, 'mirrors', i, 'destination'], rep);
      checkPercent(m.percentage, [...at, 'mirrors', i, 'percentage'], rep);
    });
    if (rule.mirror && rule.mirrors?.length) rep.error([...at, 'mirrors'], 'conflict', 'set mirror or mirrors, not both');
    if (rule.corsPolicy !== undefined) rep.warn([...at, 'corsPolicy'], 'unsupported', 'corsPolicy is ignored by Ambit');
  });
}

function checkStringMatch(sm: IstioStringMatch, at: PathSegment[], rep: Reporter, emptyMeansPresent: boolean): void {
  const set = (['exact', 'prefix', 'regex'] as const).filter((k) => sm[k] !== undefined);
  if (set.length > 1) rep.error(at, 'conflict', `set one of exact, prefix or regex, not ${set.join(' and ')}`);
  if (set.length === 0 && !emptyMeansPresent) rep.error(at, 'missing-field', 'a string match needs exact, prefix or regex');
  if (sm.regex !== undefined) checkRegex(sm.regex, [...at, 'regex'], rep);
}

/** A subset is checked against the DestinationRules of the set (validate-ingress-set.ts). */
function checkDestination(d: IstioDestination, at: PathSegment[], rep: Reporter): void {
  if (d.subset !== undefined && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(d.subset)) rep.error([...at, 'subset'], 'bad-value', `"${d.subset}" is not a valid subset name (lowercase letters, digits and "-")`);
}

function checkPercent(p: IstioPercent | undefined, at: PathSegment[], rep: Reporter): void {
  if (p?.value === undefined) return;
  if (typeof p.value !== 'number' || !Number.isFinite(p.value) || p.value < 0 || p.value > 100) {
    rep.error([...at, 'value'], 'out-of-range', `${JSON.stringify(p.value)} is not a percentage (a number 0..100)`);
  }
}

function checkDuration(s: string | undefined, at: PathSegment[], rep: Reporter): void {
  if (s === undefined) return;
  const ms = parseIstioDuration(s);
  if (ms === undefined) rep.error(at, 'bad-duration', `"${s}" is not a duration (e.g. 500ms, 10s, 1m, 1.5s)`);
  else if (ms < 1) rep.error(at, 'bad-duration', `"${s}" is shorter than 1ms`);
}

function checkRegex(src: string, at: PathSegment[], rep: Reporter): void {
  const problem = regexProblem(src);
  if (problem !== undefined) rep.error(at, 'bad-regex', `not a valid RE2 regular expression (the proxies run RE2, as Envoy does): ${problem}`);
}
