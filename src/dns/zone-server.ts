// A small authoritative DNS server for a fixed zone: the "upstream resolver" of the local
// cluster (it runs on the outside host, standing in for the internet's DNS, so no query ever
// leaves the machine) and of tests. It answers A/AAAA for the names it holds, an empty NOERROR
// for other types of those names, and NXDOMAIN for everything else; it never recurses.
//
// Invariants: the same limits as the proxy's own parsing (message.ts) apply; one answer per
// query; malformed input is answered FORMERR when it has an id, else dropped.
import dgram from 'node:dgram';
import net from 'node:net';
import { isIPv4, isIPv6 } from 'node:net';
import { encodeAnswer, encodeError, MAX_QUERY_BYTES, normalizeName, parseQuery, type DnsRecord } from './message.js';

export interface ZoneServerOptions {
  /** name -> addresses (IPv4 and IPv6). */
  records: Record<string, string[]>;
  ttlSeconds?: number;
}

export class ZoneServer {
  private readonly records = new Map<string, string[]>();
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  /** Queries answered, for tests. */
  queries = 0;

  constructor(private readonly o: ZoneServerOptions) {
    for (const [k, v] of Object.entries(o.records)) this.records.set(normalizeName(k), v);
  }

  answer(msg: Buffer, maxBytes: number): Buffer | undefined {
    const p = parseQuery(msg);
    if (!p.ok) return p.answer ? encodeError(p.answer.id, p.answer.rcode) : undefined;
    this.queries++;
    const q = p.query;
    const addrs = this.records.get(q.name);
    if (!addrs) return encodeAnswer(q, [], 'NXDOMAIN', { authoritative: true, maxBytes });
    const family = q.type === 'A' ? isIPv4 : q.type === 'AAAA' ? isIPv6 : undefined;
    const records: DnsRecord[] = family ? addrs.filter((a) => family(a)).map((a) => ({ name: q.asked.replace(/\.$/, ''), type: q.type as 'A' | 'AAAA', ttl: this.o.ttlSeconds ?? 60, data: a })) : [];
    return encodeAnswer(q, records, 'NOERROR', { authoritative: true, maxBytes });
  }

  async listen(host: string, port: number): Promise<{ port: number }> {
    const udp = dgram.createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => { udp.once('error', reject); udp.bind(port, host, () => resolve()); });
    const bound = udp.address().port;
    const tcp = net.createServer();
    await new Promise<void>((resolve, reject) => { tcp.once('error', reject); tcp.listen(bound, host, () => resolve()); });
    this.attach(udp, tcp);
    return { port: bound };
  }

  /** Serves on sockets made elsewhere (e.g. inside a network namespace). */
  attach(udp: dgram.Socket, tcp: net.Server): void {
    udp.on('message', (msg, rinfo) => {
      if (msg.length > MAX_QUERY_BYTES) return;
      const a = this.answer(msg, 512);
      if (a) udp.send(a, rinfo.port, rinfo.address);
    });
    udp.on('error', () => {});
    tcp.on('connection', (s: net.Socket) => {
      s.on('error', () => {});
      s.setTimeout(5000, () => s.destroy());
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length > MAX_QUERY_BYTES + 2) { s.destroy(); return; }
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
          buf = buf.subarray(2 + msg.length);
          const a = this.answer(Buffer.from(msg), 65_535);
          if (!a) continue;
          const head = Buffer.alloc(2);
          head.writeUInt16BE(a.length);
          s.write(Buffer.concat([head, a]));
        }
      });
    });
    this.udp = udp;
    this.tcp = tcp;
  }

  close(): void {
    try { this.udp?.close(); } catch { /* closed */ }
    this.tcp?.close();
  }
}
