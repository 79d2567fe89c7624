// The authorization engine: one pure engine with Istio's semantics, used by
// the ztunnel (L4, over the workload API's Authorization) and the waypoint (L7, over compiled
// AuthorizationPolicy resources). No I/O anywhere in this room.

export type {
  ConnectionAttributes,
  HttpAttributes,
  RequestAttributes,
  RequestAuthAttributes,
  SpiffeParts,
} from './attributes.js';
export { parsePrincipal, stripSpiffe } from './attributes.js';

export type {
  ClaimMatch,
  CompiledAction,
  CompiledClause,
  CompiledMatch,
  CompiledPolicy,
  CompiledRule,
  HeaderMatch,
  L7Match,
  PolicyScope,
  PolicyWarning,
  PolicyWarningCode,
  UnknownCondition,
} from './compiled-policy.js';
export { emptyCompiledMatch, l7Attributes, ruleL7Attributes } from './compiled-policy.js';

export type { CompileOptions } from './compile.js';
export { compilePolicy, DRY_RUN_ANNOTATION, policyScopeOf } from './compile.js';

export type { PolicyPlacement, PolicyTarget, WorkloadLabels } from './applicable.js';
export { policiesForTarget, policiesForWorkload, policiesForZtunnel } from './applicable.js';

export type { Decision, DecisionCode, DryRunResult, Enforcer, EvaluateOptions } from './evaluate.js';
export { byPolicyKey, evaluate, matchPolicy } from './evaluate.js';

export type { ZtunnelView } from './ztunnel-view.js';
export {
  fromAuthorization,
  STATIC_STRICT_POLICY_NAME,
  staticStrictAuthorization,
  toZtunnelAuthorization,
  toZtunnelView,
} from './ztunnel-view.js';

export { cidrContains, parseCidr, parseIp } from './ip-match.js';
export { formatStringMatch, matchString, toStringMatch } from './string-match.js';
