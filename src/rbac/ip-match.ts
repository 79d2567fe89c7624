// IP addresses and CIDRs for authorization, IPv4 and IPv6, without any I/O.
//
// Invariants:
// - A policy value is a CIDR (`10.0.0.0/8`, `fd00::/64`) or a single address (`10.0.0.1`, which
//   means /32, or /128 for IPv6). Host bits set in a CIDR are ignored (`10.1.2.3/8` = `10.0.0.0/8`).
// - An IPv4 CIDR never contains an IPv6 address and vice versa, except that an IPv4-mapped IPv6
//   address on the connection side (`::ffff:10.0.0.1`) is matched as IPv4.
// - Anything unparsable matches nothing.

import { parseIp as parseAddress } from '../core/ip.js';
import type { AddressMatch } from '../xds/workload-api.js';

/** The bytes of an IP address (4 or 16), or null. Accepts `[v6]` and drops a `%zone`. */
export function parseIp(s: string): Uint8Array | null {
  let t = s.trim();
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1);
  const zone = t.indexOf('%');
  if (zone >= 0) t = t.slice(0, zone);
  return parseAddress(t)?.bytes ?? null;
}

function unmapV4(b: Uint8Array): Uint8Array {
  if (b.length !== 16) return b;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return b;
  if (b[10] !== 0xff || b[11] !== 0xff) return b;
  return b.slice(12);
}

/**
 * Parses a policy value (`ipBlocks`, `remoteIpBlocks`, `source.ip` ...) into the workload API's
 * `{address, length}`; null when it is neither a CIDR nor an address.
 */
export function parseCidr(value: string): AddressMatch | null {
  const slash = value.indexOf('/');
  const addrText = slash >= 0 ? value.slice(0, slash) : value;
  const bytes = parseIp(addrText);
  if (!bytes) return null;
  const max = bytes.length * 8;
  if (slash < 0) return { address: addrText.trim(), length: max };
  const lenText = value.slice(slash + 1).trim();
  if (!/^[0-9]{1,3}$/.test(lenText)) return null;
  const length = Number(lenText);
  if (length > max) return null;
  return { address: addrText.trim(), length };
}

/** Does the CIDR contain `ip`? False when either is unparsable or the families differ. */
export function cidrContains(cidr: AddressMatch, ip: string | undefined): boolean {
  if (ip === undefined) return false;
  const net = parseIp(cidr.address);
  let addr = parseIp(ip);
  if (!net || !addr) return false;
  if (net.length === 4) addr = unmapV4(addr);
  if (net.length !== addr.length) return false;
  const max = net.length * 8;
  if (!Number.isInteger(cidr.length) || cidr.length < 0 || cidr.length > max) return false;
  let bits = cidr.length;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((net[i] as number) & mask) !== ((addr[i] as number) & mask)) return false;
  }
  return true;
}
