// IP addresses, CIDRs and `ip:port` authorities, in one place. Pure functions.
import { isIP } from 'node:net';

export interface ParsedIp {
  family: 4 | 6;
  bytes: Uint8Array;
}

export interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
}

export function parseIp(s: string): ParsedIp | undefined {
  const family = isIP(s);
  if (family === 4) return { family: 4, bytes: Uint8Array.from(s.split('.').map(Number)) };
  if (family === 6) return { family: 6, bytes: ipv6Bytes(s) };
  return undefined;
}

function ipv6Bytes(s: string): Uint8Array {
  let text = s;
  const out = new Uint8Array(16);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => {
    const v = parseInt(g || '0', 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // Compress the longest run of zeros (RFC 5952).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** A CIDR (`10.0.0.0/8`) or a single address (taken as /32 or /128). */
export function parseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf('/');
  const ip = parseIp(slash < 0 ? s : s.slice(0, slash));
  if (!ip) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  if (slash < 0) return { ...ip, prefix: max };
  const p = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(p) || Number(p) > max) return undefined;
  return { ...ip, prefix: Number(p) };
}

export function cidrContains(cidr: Cidr, ip: ParsedIp): boolean {
  if (cidr.family !== ip.family) return false;
  let bits = cidr.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((cidr.bytes[i]! & mask) !== (ip.bytes[i]! & mask)) return false;
  }
  return true;
}

/** The host bits of the CIDR are zero (10.0.0.0/8 yes, 10.0.0.1/8 no). */
export function isCanonicalCidr(c: Cidr): boolean {
  const total = c.family === 4 ? 32 : 128;
  for (let bit = c.prefix; bit < total; bit++) {
    if ((c.bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) return false;
  }
  return true;
}

/** The n-th address of a CIDR (n counted from the network address). IPv4 only. */
export function nthAddress(c: Cidr, n: number): string {
  if (c.family !== 4) throw new Error('nthAddress: IPv4 only');
  const base = ((c.bytes[0]! << 24) | (c.bytes[1]! << 16) | (c.bytes[2]! << 8) | c.bytes[3]!) >>> 0;
  const v = (base + n) >>> 0;
  return [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff].join('.');
}

export function cidrSize(c: Cidr): number {
  return 2 ** ((c.family === 4 ? 32 : 128) - c.prefix);
}

/** `ip:port`, with brackets for IPv6. */
export function formatAuthority(ip: string, port: number): string {
  return isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Parse an `ip:port` authority; anything else (hostnames, missing port) is undefined. */
export function parseAuthority(s: string): { ip: string; port: number; family: 4 | 6 } | undefined {
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0 || s[end + 1] !== ':') return undefined;
    host = s.slice(1, end);
    portText = s.slice(end + 2);
    if (isIP(host) !== 6) return undefined;
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) return undefined;
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (isIP(host) !== 4) return undefined;
  }
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  return { ip: host, port, family: isIP(host) as 4 | 6 };
}
