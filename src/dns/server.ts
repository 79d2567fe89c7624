// A DNS proxy listener pair (UDP and TCP) for one client: a pod's 15053 in the local cluster.
// Each query is parsed (message.ts), decided (resolve.ts), answered here or forwarded
// (forwarder.ts), and counted (metrics.ts).
//
// Invariants:
// - Untrusted input is bounded: datagrams over MAX_QUERY_BYTES are dropped unparsed; a TCP
//   connection may hold one message of at most MAX_QUERY_BYTES, must send within
//   `tcpIdleTimeoutMs`, is served at most `maxTcpQueries` queries, and at most
//   `maxTcpConnections` are open at once (more are reset). Each refusal is counted by reason.
// - A query is answered exactly once: with the proxy's own answer, the upstream's, SERVFAIL
//   when forwarding failed, or the error its parse called for; a message with nothing to
//   answer to (no header, a response) is dropped.
// - Nothing here throws out of an event handler; errors on a socket end that socket only.
import type dgram from 'node:dgram';
import type net from 'node:net';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { ForwardError, type DnsForwarder } from './forwarder.js';
import { dnsLabels, type DnsMetrics } from './metrics.js';
import { answerCount, encodeAnswer, encodeError, MAX_QUERY_BYTES, parseQuery, rcodeOf, type DnsQuery } from './message.js';
import { decideDns, type DnsClient, type DnsRegistry, type ResolveOptions } from './resolve.js';

export interface DnsSource extends DnsClient {
  name: string;
  canonicalName?: string;
  canonicalRevision?: string;
}

export interface DnsServerOptions {
  /** The client the listeners serve (undefined: not known yet -> SERVFAIL, as Istio's "unknown source"). */
  source(): DnsSource | undefined;
  registry(): DnsRegistry;
  resolve: ResolveOptions;
  forwarder: DnsForwarder;
  metrics: DnsMetrics;
  logger: Logger;
  clock: Clock;
  tcpIdleTimeoutMs?: number;
  maxTcpConnections?: number;
  maxTcpQueries?: number;
}

export class DnsServer {
  private readonly tcpConnections = new Set<net.Socket>();
  private udp: dgram.Socket | undefined;
  private readonly trace;

  constructor(private readonly o: DnsServerOptions) {
    this.trace = o.logger.tracer('dns');
  }

  attachUdp(socket: dgram.Socket): void {
    this.udp = socket;
    socket.on('error', (e) => this.o.logger.warn('DNS UDP socket error', { error: e.message }));
    socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      if (msg.length > MAX_QUERY_BYTES) {
        this.refused('oversized', 'udp');
        return;
      }
      void this.handle(msg, 'udp').then((answer) => {
        if (answer) socket.send(answer, rinfo.port, rinfo.address, () => {});
      });
    });
  }

  attachTcp(server: net.Server): void {
    server.on('connection', (s: net.Socket) => this.onTcp(s));
  }

  close(): void {
    for (const s of this.tcpConnections) s.destroy();
    this.tcpConnections.clear();
    this.o.forwarder.close();
    try { this.udp?.close(); } catch { /* already closed */ }
  }

  /** One message in, at most one answer out (never throws). */
  async handle(msg: Buffer, protocol: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    const parsed = parseQuery(msg);
    if (!parsed.ok) {
      this.refused(parsed.answer ? `bad_query_${parsed.answer.rcode.toLowerCase()}` : 'dropped', protocol);
      if (this.trace.enabled) this.trace.log('refused', { reason: parsed.reason });
      return parsed.answer ? encodeError(parsed.answer.id, parsed.answer.rcode) : undefined;
    }
    const q = parsed.query;
    const source = this.o.source();
    const labels = dnsLabels(q.type, protocol, source);
    this.o.metrics.requests.labels(labels).inc();
    const maxBytes = protocol === 'udp' ? q.udpPayload : 65_535;
    if (!source) {
      this.refused('unknown_source', protocol);
      return encodeAnswer(q, [], 'SERVFAIL', { authoritative: false, maxBytes });
    }
    const decision = decideDns(this.o.registry(), source, q, this.o.resolve);
    if (decision.kind === 'answer') {
      if (this.trace.enabled) this.trace.log('answered', { src: source.name, name: q.name, type: q.type, records: decision.records.length });
      return encodeAnswer(q, decision.records, 'NOERROR', { authoritative: true, maxBytes });
    }
    return this.forward(q, protocol, labels, maxBytes, source);
  }

  private async forward(q: DnsQuery, protocol: 'udp' | 'tcp', labels: ReturnType<typeof dnsLabels>, maxBytes: number, source: DnsSource): Promise<Buffer> {
    const started = this.o.clock.now();
    this.o.metrics.upstreamRequests.labels(labels).inc();
    try {
      const answer = await this.o.forwarder.forward(q, protocol);
      if (this.trace.enabled) this.trace.log('forwarded', { src: source.name, name: q.name, type: q.type, rcode: rcodeOf(answer), answers: answerCount(answer) });
      return answer;
    } catch (e: unknown) {
      this.o.metrics.upstreamFailures.labels(labels).inc();
      const kind = e instanceof ForwardError ? e.kind : 'network';
      this.o.logger.debug('DNS forwarding failed', { src: source.name, name: q.name, type: q.type, reason: kind, error: e instanceof Error ? e.message : String(e) });
      return encodeAnswer(q, [], 'SERVFAIL', { authoritative: false, maxBytes });
    } finally {
      this.o.metrics.upstreamDuration.labels(labels).observe((this.o.clock.now() - started) / 1000);
    }
  }

  private refused(reason: string, protocol: 'udp' | 'tcp'): void {
    this.o.metrics.refused.labels({ reason, request_protocol: protocol }).inc();
  }

  private onTcp(s: net.Socket): void {
    s.on('error', () => {});
    if (this.tcpConnections.size >= (this.o.maxTcpConnections ?? 16)) {
      this.refused('tcp_connections', 'tcp');
      s.resetAndDestroy();
      return;
    }
    this.tcpConnections.add(s);
    s.once('close', () => this.tcpConnections.delete(s));
    let buf = Buffer.alloc(0);
    let served = 0;
    let busy = false;
    const idleMs = this.o.tcpIdleTimeoutMs ?? 5000;
    let timer = this.o.clock.setTimeout(() => idle(), idleMs);
    const idle = () => { this.refused('tcp_idle', 'tcp'); s.destroy(); };
    const pump = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0) && !s.destroyed) {
        const len = buf.readUInt16BE(0);
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const answer = await this.handle(Buffer.from(msg), 'tcp');
        if (answer && !s.destroyed) {
          const head = Buffer.alloc(2);
          head.writeUInt16BE(answer.length);
          s.write(Buffer.concat([head, answer]));
        }
        if (++served >= (this.o.maxTcpQueries ?? 100)) { s.end(); break; }
      }
      busy = false;
    };
    s.on('data', (c: Buffer) => {
      timer.cancel();
      timer = this.o.clock.setTimeout(() => idle(), idleMs);
      buf = Buffer.concat([buf, c]);
      const want = buf.length >= 2 ? buf.readUInt16BE(0) : 0;
      if (want > MAX_QUERY_BYTES || buf.length > 2 * (MAX_QUERY_BYTES + 2)) {
        this.refused('oversized', 'tcp');
        s.destroy();
        return;
      }
      void pump();
    });
    s.once('close', () => timer.cancel());
  }
}
