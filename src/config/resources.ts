// The user-facing resources Ambit reads, typed as they appear in Kubernetes/Istio YAML.
// These types describe *validated* resources: the validator (validate.ts) guarantees that
// a resource handed out with one of these types has this shape.

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  /** RFC 3339; orders routes of equal precedence (oldest first), as Gateway API and Istio do. */
  creationTimestamp?: string;
}

export interface SourceLocation {
  file: string;
  /** 1-based line of the document's first line. */
  line: number;
  /** The line of a JSON path inside the resource, when the source text is known. */
  lineOf?: (path: readonly (string | number)[]) => number;
}

export interface Base<K extends string, S> {
  apiVersion: string;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
}

export type NamespaceResource = Base<'Namespace', Record<string, never>>;
/** A ConfigMap; Ambit reads only Istio's mesh config (`istio` in the root namespace, key `mesh`). */
export interface ConfigMapResource extends Base<'ConfigMap', Record<string, never>> {
  data?: Record<string, string>;
}
export type ServiceAccountResource = Base<'ServiceAccount', Record<string, never>>;

export interface EnvVar {
  name: string;
  value?: string;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}

/** The part of a Kubernetes securityContext the local cluster applies (the rest is accepted). */
export interface SecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
}

export interface Container {
  name: string;
  securityContext?: SecurityContext;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: ContainerPort[];
  workingDir?: string;
}

export interface PodSpec {
  securityContext?: SecurityContext;
  nodeName?: string;
  serviceAccountName?: string;
  serviceAccount?: string;
  containers: Container[];
  initContainers?: Container[];
}

export interface PodStatus {
  podIP?: string;
  podIPs?: { ip: string }[];
  hostIP?: string;
  phase?: string;
  /** Kubernetes' pod conditions; only `Ready` is read. */
  conditions?: { type: string; status: string }[];
}

export interface PodResource extends Base<'Pod', PodSpec> {
  status?: PodStatus;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

export interface DeploymentSpec {
  replicas?: number;
  selector: LabelSelector;
  template: { metadata?: Omit<ObjectMeta, 'name'> & { name?: string }; spec: PodSpec };
}
export type DeploymentResource = Base<'Deployment', DeploymentSpec>;

export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
  appProtocol?: string;
}

export interface ServiceSpec {
  selector?: Record<string, string>;
  ports: ServicePort[];
  clusterIP?: string;
  clusterIPs?: string[];
  type?: string;
}
export type ServiceResource = Base<'Service', ServiceSpec>;

// ---- security.istio.io ----

export interface WorkloadSelector {
  matchLabels?: Record<string, string>;
}

export interface PolicyTargetReference {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface RuleSource {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
}

export interface RuleOperation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface RuleCondition {
  key: string;
  values?: string[];
  notValues?: string[];
}

export interface AuthorizationRule {
  from?: { source: RuleSource }[];
  to?: { operation: RuleOperation }[];
  when?: RuleCondition[];
}

export type AuthorizationAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface AuthorizationPolicySpec {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  action?: AuthorizationAction;
  provider?: { name: string };
  rules?: AuthorizationRule[];
}
export type AuthorizationPolicyResource = Base<'AuthorizationPolicy', AuthorizationPolicySpec>;

export type MtlsMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface PeerAuthenticationSpec {
  selector?: WorkloadSelector;
  mtls?: { mode?: MtlsMode };
  portLevelMtls?: Record<string, { mode?: MtlsMode }>;
}
export type PeerAuthenticationResource = Base<'PeerAuthentication', PeerAuthenticationSpec>;

export interface JwtRule {
  issuer: string;
  audiences?: string[];
  jwks?: string;
  jwksUri?: string;
  fromHeaders?: { name: string; prefix?: string }[];
  fromParams?: string[];
  fromCookies?: string[];
  outputPayloadToHeader?: string;
  forwardOriginalToken?: boolean;
  outputClaimToHeaders?: { header: string; claim: string }[];
}

export interface RequestAuthenticationSpec {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  jwtRules?: JwtRule[];
}
export type RequestAuthenticationResource = Base<'RequestAuthentication', RequestAuthenticationSpec>;

// ---- telemetry.istio.io ----

export type AccessLogMode = 'CLIENT_AND_SERVER' | 'CLIENT' | 'SERVER';

export interface AccessLogging {
  match?: { mode?: AccessLogMode };
  providers?: { name: string }[];
  disabled?: boolean;
  filter?: { expression?: string };
}

export interface TelemetrySpec {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  accessLogging?: AccessLogging[];
  metrics?: unknown[];
  tracing?: unknown[];
}
export type TelemetryResource = Base<'Telemetry', TelemetrySpec>;

// ---- gateway.networking.k8s.io ----

export interface GatewayListener {
  name: string;
  port: number;
  protocol: string;
  hostname?: string;
  /** Listeners of an ingress Gateway (class istio); see ingress-resources.ts. */
  tls?: import('./ingress-resources.js').GatewayTlsConfig;
  allowedRoutes?: import('./ingress-resources.js').AllowedRoutes;
}

export interface GatewaySpec {
  gatewayClassName: string;
  listeners: GatewayListener[];
  infrastructure?: { labels?: Record<string, string>; annotations?: Record<string, string> };
}
export type GatewayResource = Base<'Gateway', GatewaySpec>;

export interface ParentReference {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  sectionName?: string;
}

export interface HTTPPathMatch {
  type?: 'Exact' | 'PathPrefix' | 'RegularExpression';
  value?: string;
}

export interface HTTPHeaderMatch {
  type?: 'Exact' | 'RegularExpression';
  name: string;
  value: string;
}

export interface HTTPRouteMatch {
  path?: HTTPPathMatch;
  headers?: HTTPHeaderMatch[];
  queryParams?: HTTPHeaderMatch[];
  method?: string;
}

export interface HTTPHeader {
  name: string;
  value: string;
}

export interface HTTPHeaderFilter {
  set?: HTTPHeader[];
  add?: HTTPHeader[];
  remove?: string[];
}

export interface HTTPPathModifier {
  type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}

export interface HTTPRouteFilter {
  type: 'RequestHeaderModifier' | 'ResponseHeaderModifier' | 'RequestRedirect' | 'URLRewrite' | 'RequestMirror' | 'ExtensionRef';
  requestHeaderModifier?: HTTPHeaderFilter;
  responseHeaderModifier?: HTTPHeaderFilter;
  requestRedirect?: {
    scheme?: string;
    hostname?: string;
    path?: HTTPPathModifier;
    port?: number;
    statusCode?: number;
  };
  urlRewrite?: { hostname?: string; path?: HTTPPathModifier };
  requestMirror?: { backendRef: BackendObjectReference; percent?: number; fraction?: { numerator: number; denominator?: number } };
}

export interface BackendObjectReference {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
}

export interface HTTPBackendRef extends BackendObjectReference {
  weight?: number;
  filters?: HTTPRouteFilter[];
}

export interface HTTPRouteRule {
  name?: string;
  matches?: HTTPRouteMatch[];
  filters?: HTTPRouteFilter[];
  backendRefs?: HTTPBackendRef[];
  timeouts?: { request?: string; backendRequest?: string };
  retry?: { codes?: number[]; attempts?: number; backoff?: string };
}

export interface HTTPRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: HTTPRouteRule[];
}
export type HTTPRouteResource = Base<'HTTPRoute', HTTPRouteSpec>;

// ---- networking.istio.io ----

/** Istio StringMatch: exactly one of exact / prefix / regex (an empty one means "present" in header matches). */
export interface IstioStringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface VirtualServiceMatch {
  name?: string;
  uri?: IstioStringMatch;
  scheme?: IstioStringMatch;
  method?: IstioStringMatch;
  authority?: IstioStringMatch;
  headers?: Record<string, IstioStringMatch>;
  withoutHeaders?: Record<string, IstioStringMatch>;
  queryParams?: Record<string, IstioStringMatch>;
  port?: number;
  ignoreUriCase?: boolean;
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  gateways?: string[];
  statPrefix?: string;
}

export interface IstioDestination {
  host: string;
  subset?: string;
  port?: { number?: number };
}

export interface IstioHeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface IstioHeaders {
  request?: IstioHeaderOperations;
  response?: IstioHeaderOperations;
}

export interface IstioPercent {
  value?: number;
}

export interface VirtualServiceRouteDestination {
  destination: IstioDestination;
  weight?: number;
  headers?: IstioHeaders;
}

export interface VirtualServiceHTTPRoute {
  name?: string;
  match?: VirtualServiceMatch[];
  route?: VirtualServiceRouteDestination[];
  redirect?: {
    uri?: string;
    authority?: string;
    port?: number;
    derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
    scheme?: string;
    redirectCode?: number;
  };
  directResponse?: unknown;
  delegate?: unknown;
  rewrite?: { uri?: string; authority?: string; uriRegexRewrite?: { match: string; rewrite: string } };
  timeout?: string;
  retries?: { attempts?: number; perTryTimeout?: string; retryOn?: string; retryRemoteLocalities?: boolean; backoff?: string };
  fault?: {
    delay?: { fixedDelay?: string; exponentialDelay?: string; percentage?: IstioPercent; percent?: number };
    abort?: { httpStatus?: number; grpcStatus?: string; http2Error?: string; percentage?: IstioPercent };
  };
  mirror?: IstioDestination;
  mirrorPercentage?: IstioPercent;
  mirrorPercent?: number;
  mirrors?: { destination: IstioDestination; percentage?: IstioPercent }[];
  corsPolicy?: unknown;
  headers?: IstioHeaders;
}

export interface VirtualServiceSpec {
  hosts: string[];
  gateways?: string[];
  http?: VirtualServiceHTTPRoute[];
  tcp?: unknown[];
  tls?: unknown[];
  exportTo?: string[];
}
export type VirtualServiceResource = Base<'VirtualService', VirtualServiceSpec>;

export type { ServiceEntryResource, DestinationRuleResource, SecretResource } from './egress-resources.js';
import type { ServiceEntryResource, DestinationRuleResource, SecretResource } from './egress-resources.js';

export type Resource =
  | NamespaceResource
  | ConfigMapResource
  | ServiceAccountResource
  | PodResource
  | DeploymentResource
  | ServiceResource
  | AuthorizationPolicyResource
  | PeerAuthenticationResource
  | RequestAuthenticationResource
  | GatewayResource
  | HTTPRouteResource
  | VirtualServiceResource
  | TelemetryResource
  | ServiceEntryResource
  | DestinationRuleResource
  | SecretResource
  | import('./ingress-resources.js').ReferenceGrantResource
  | import('./ingress-resources.js').GRPCRouteResource
  | import('./ingress-resources.js').TCPRouteResource;

export type ResourceKind = Resource['kind'];

/** A resource with where it came from. */
export interface Located<R extends Resource = Resource> {
  resource: R;
  source: SourceLocation;
}

/** creationTimestamp in ms for "the oldest wins" rules; a resource without one counts as newest. */
export function creationAge(r: { metadata: { creationTimestamp?: unknown } }): number {
  const t = r.metadata.creationTimestamp ? Date.parse(String(r.metadata.creationTimestamp)) : NaN;
  return Number.isNaN(t) ? Number.MAX_SAFE_INTEGER : t;
}

/** `Kind ns/name` (or `Kind name` for cluster-scoped kinds): how diagnostics name a resource. */
export function resourceRef(r: { kind: string; metadata: { name?: string; namespace?: string } }): string {
  const name = r.metadata.name ?? '<unnamed>';
  return r.kind === 'Namespace' ? `${r.kind} ${name}` : `${r.kind} ${r.metadata.namespace ?? 'default'}/${name}`;
}
