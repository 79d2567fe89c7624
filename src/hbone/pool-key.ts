// The HBONE pool key: connections are shared only between tunnels with the
// same source identity, the same set of acceptable server identities, the same destination
// ip:port and the same local source address. Pure.
import { formatAuthority } from '../core/ip.js';

export interface PoolKeyInput {
  sourceIdentity: string;
  expectedIdentities: readonly string[];
  destination: { ip: string; port: number };
  sourceIp?: string;
}

export function poolKey(k: PoolKeyInput): string {
  const expected = k.expectedIdentities.length === 1 ? k.expectedIdentities[0] : [...new Set(k.expectedIdentities)].sort().join(',');
  // Identities never contain a space, so space separates the fields unambiguously.
  return `${k.sourceIdentity} ${expected} ${formatAuthority(k.destination.ip, k.destination.port)} ${k.sourceIp ?? '-'}`;
}
