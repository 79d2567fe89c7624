// HBONE (design section 5): HTTP/2 CONNECT over mutual TLS. The server terminates tunnels and
// hands each request to its owner; the pool opens tunnels over shared connections; relay()
// copies bytes between a tunnel and a TCP socket with TCP's half-close and reset semantics.

export type { HboneRefusal, HboneRefusalKind, HboneRequest, HboneServerOptions, HboneServerStats } from './server.js';
export type { AdmissionRefusal, HboneLimits } from './admission.js';
export { DEFAULT_HBONE_LIMITS, HboneAdmission } from './admission.js';
export { HboneServer } from './server.js';
export type { CancelSignal, CreateSocket, HboneConnectOptions, HbonePoolOptions, HbonePoolStats } from './pool.js';
export { HbonePool, closeSignal } from './pool.js';
export type { Relay, RelayOptions, RelayResult } from './relay.js';
export { RELAY_HIGH_WATER_MARK_BYTES, relay, resetDuplex } from './relay.js';
export type { ConnectRequestVerdict, TunnelHeaders } from './connect-request.js';
export { parseConnectRequest } from './connect-request.js';
export type { ClientHandshakeFacts, PeerVerdict } from './peer-check.js';
export { checkClientPeer, checkServerSan } from './peer-check.js';
export type { PoolKeyInput } from './pool-key.js';
export { poolKey } from './pool-key.js';
export * from './wire.js';
