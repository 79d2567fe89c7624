// `--dns-upstream IP[:PORT]`, shared by the ztunnel and waypoint commands.
import { isIP } from 'node:net';
import { parseAuthority } from '../../core/ip.js';

/** `IP` or `IP:PORT` (default port 53) of a DNS upstream; undefined when malformed. */
export function parseUpstream(s: string): { ip: string; port: number } | undefined {
  const a = parseAuthority(s);
  if (a) return { ip: a.ip, port: a.port };
  return isIP(s) ? { ip: s, port: 53 } : undefined;
}
