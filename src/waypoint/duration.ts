// Durations as the two route APIs write them, in milliseconds (undefined when malformed).
// Gateway API (GEP-2257): 1-4 groups of up to 5 digits with h/m/s/ms ("10s", "1m30s",
// "500ms"); Istio: Go/protobuf style, decimals allowed ("1.5s", "100ms"). The parsers live in
// the config room (the validator uses them too); this file is the waypoint's door to them.
export { parseGatewayDuration } from '../config/validate-resource.js';
export { parseIstioDuration } from '../config/validate-virtual-service.js';
