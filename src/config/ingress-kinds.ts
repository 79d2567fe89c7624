// Shapes of the ingress kinds in the schema language of schema.ts: the listener of a Gateway
// (TLS, allowedRoutes), ReferenceGrant, GRPCRoute and TCPRoute. kinds.ts wraps them with
// apiVersion/kind/metadata; semantics are checked in validate-ingress.ts.
import { any, arr, int, labels, obj, str, strList, type Schema } from './schema.js';

const secretRef = obj({ group: str(), kind: str(), name: str({ nonEmpty: true }), namespace: str() }, ['name']);

export const listenerTls: Schema = obj({
  mode: str({ enum: ['Terminate', 'Passthrough'] }),
  certificateRefs: arr(secretRef),
  frontendValidation: any,
  options: any,
});

export const allowedRoutes: Schema = obj({
  namespaces: obj({ from: str({ enum: ['All', 'Same', 'Selector'] }), selector: obj({ matchLabels: labels, matchExpressions: any }) }),
  kinds: arr(obj({ group: str(), kind: str({ nonEmpty: true }) }, ['kind'])),
});

const parentRef = obj({
  group: str(), kind: str(), name: str({ nonEmpty: true }), namespace: str(), port: int(1, 65535), sectionName: str(),
}, ['name']);

const backendRef = { group: str(), kind: str(), name: str({ nonEmpty: true }), namespace: str(), port: int(1, 65535), weight: int(0, 1000000) };

export const referenceGrantSpec: Schema = obj({
  from: arr(obj({ group: str(), kind: str({ nonEmpty: true }), namespace: str({ nonEmpty: true }) }, ['group', 'kind', 'namespace']), 1),
  to: arr(obj({ group: str(), kind: str({ nonEmpty: true }), name: str() }, ['group', 'kind']), 1),
}, ['from', 'to']);

const headerMatch = obj({ type: str({ enum: ['Exact', 'RegularExpression'] }), name: str({ nonEmpty: true }), value: str() }, ['name', 'value']);
const headerList = arr(obj({ name: str({ nonEmpty: true }), value: str() }, ['name', 'value']));
const headerFilter = obj({ set: headerList, add: headerList, remove: strList });
const grpcFilter = obj({
  type: str({ enum: ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'ExtensionRef'] }),
  requestHeaderModifier: headerFilter, responseHeaderModifier: headerFilter, requestMirror: any, extensionRef: any,
}, ['type']);

export const grpcRouteSpec: Schema = obj({
  parentRefs: arr(parentRef),
  hostnames: strList,
  rules: arr(obj({
    name: str(),
    matches: arr(obj({
      method: obj({ type: str({ enum: ['Exact', 'RegularExpression'] }), service: str(), method: str() }),
      headers: arr(headerMatch),
    })),
    filters: arr(grpcFilter),
    backendRefs: arr(obj({ ...backendRef, filters: arr(grpcFilter) }, ['name'])),
    sessionPersistence: any,
  })),
});

export const tcpRouteSpec: Schema = obj({
  parentRefs: arr(parentRef),
  rules: arr(obj({ name: str(), backendRefs: arr(obj(backendRef, ['name']), 1) }, ['backendRefs']), 1),
}, ['rules']);
