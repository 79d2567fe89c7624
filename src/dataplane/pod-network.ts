// Where a ztunnel opens a workload's listeners and makes its upstream connections.
// - In the local cluster (capture mode) each enrolled pod is a network namespace: listeners
//   for 15001/15006/15008 are made inside it, upstream sockets are made inside it with mark
//   0x539 so the pod's capture rules let them through (cluster/capture-rules.ts skips that
//   mark), and the original
//   destination of a captured connection comes from SO_ORIGINAL_DST.
// - In the direct tier and for a standalone ztunnel, workloads are addresses of this host
//   (e.g. 127.0.10.1): listeners bind those addresses and upstream sockets bind the workload
//   address as their source.
import dgram from 'node:dgram';
import net from 'node:net';
import { loadNative } from '../sys/native.js';
import type { Clock } from '../core/clock.js';
import { LogLimiter } from '../core/log-limiter.js';
import type { Logger } from '../core/logger.js';
import { adoptListeningFd, listenInNetns, NetnsHandle, originalDestination, startConnectInNetns, udpSocketInNetns } from '../sys/netns-socket.js';

export const ZTUNNEL_MARK = 0x539;

export interface Endpoint {
  ip: string;
  port: number;
}

export interface PodNetwork {
  readonly kind: 'host' | 'netns';
  /** A listening TCP server at ip:port in the workload's network. */
  listen(ip: string, port: number, server?: net.Server): Promise<net.Server>;
  /**
   * A connecting socket from the workload's network, not captured; 'connect'/'error' as
   * net.connect. Half-open by default (relayed application connections keep TCP's
   * half-close); transport sockets (HBONE) pass allowHalfOpen: false so a peer's FIN closes them.
   * `spoofSource`: connect to a local application as that (client) address — in a pod's
   * namespace with IP_TRANSPARENT and the pod's source routing (cluster/source-routing.ts);
   * ignored on the host network, where workloads are this host's own addresses.
   */
  connect(dst: Endpoint, options?: { localAddress?: string; allowHalfOpen?: boolean; spoofSource?: string }): net.Socket;
  /** The original destination of a captured connection, or undefined when not captured. */
  originalDestination(socket: net.Socket): Endpoint | undefined;
  /** A UDP socket bound at ip:port (0: any) in the workload's network; `mark`: not captured (0x539). */
  bindUdp(ip: string, port: number, options?: { mark?: boolean }): Promise<dgram.Socket>;
  close(): void;
}

/** Workloads as addresses of this host (no capture). */
export class HostPodNetwork implements PodNetwork {
  readonly kind = 'host' as const;

  async listen(ip: string, port: number, server: net.Server = net.createServer({ allowHalfOpen: true, noDelay: true })): Promise<net.Server> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: ip, port, backlog: 1024 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  connect(dst: Endpoint, options: { localAddress?: string; allowHalfOpen?: boolean; spoofSource?: string } = {}): net.Socket {
    return net.connect({ host: dst.ip, port: dst.port, localAddress: options.localAddress, allowHalfOpen: options.allowHalfOpen ?? true, noDelay: true });
  }

  originalDestination(): Endpoint | undefined {
    return undefined;
  }

  bindUdp(ip: string, port: number): Promise<dgram.Socket> {
    const socket = dgram.createSocket({ type: net.isIPv6(ip) ? 'udp6' : 'udp4' });
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, ip, () => {
        socket.off('error', reject);
        resolve(socket);
      });
    });
  }

  close(): void {}
}

/**
 * A pod's network namespace (capture mode): opened by name, or handed over by the node agent
 * (ZDS) as an fd, with the pod's listening sockets when the agent holds them. A handed-over
 * listener is adopted as a dup (the registry keeps the original, so the proxy can be re-made);
 * without one, a listener is made in the namespace with SO_REUSEPORT, so another ztunnel can
 * listen beside it while they hand over.
 */
export class NetnsPodNetwork implements PodNetwork {
  readonly kind = 'netns' as const;
  private constructor(private readonly ns: NetnsHandle, private readonly handed: () => ReadonlyMap<number, number> = () => new Map()) {}

  static open(nameOrPath: string): NetnsPodNetwork {
    return new NetnsPodNetwork(NetnsHandle.open(nameOrPath));
  }

  /**
   * The network of a pod from its netns file descriptor (as the node agent sends it over ZDS;
   * dup'ed: the caller keeps its own). `listeners` reads the pod's handed-over sockets at each
   * listen(): the agent may hand new ones later (after its own restart), and those are what a
   * swap must adopt.
   */
  static fromNetnsFd(netnsFd: number, name: string, listeners: () => ReadonlyMap<number, number>): NetnsPodNetwork {
    const native = loadNative();
    return new NetnsPodNetwork(NetnsHandle.fromFd(native.dupFd(netnsFd), name), listeners);
  }

  get name(): string {
    return this.ns.name;
  }

  listen(ip: string, port: number, server: net.Server = net.createServer({ allowHalfOpen: true, noDelay: true })): Promise<net.Server> {
    const handed = this.handed().get(port);
    if (handed !== undefined) return adoptListeningFd(loadNative().dupFd(handed), server);
    // Bind the wildcard: captured connections arrive for any destination address.
    return listenInNetns(this.ns, { host: ip, port, backlog: 1024, server, transparent: false, reusePort: true });
  }

  connect(dst: Endpoint, options: { localAddress?: string; allowHalfOpen?: boolean; spoofSource?: string } = {}): net.Socket {
    const spoof = options.spoofSource !== undefined && options.spoofSource !== dst.ip && net.isIPv4(options.spoofSource) && net.isIPv4(dst.ip);
    return startConnectInNetns(this.ns, {
      host: dst.ip, port: dst.port, mark: ZTUNNEL_MARK, allowHalfOpen: options.allowHalfOpen ?? true, noDelay: true,
      localAddress: spoof ? options.spoofSource : options.localAddress, transparent: spoof || undefined,
    });
  }

  originalDestination(socket: net.Socket): Endpoint | undefined {
    const d = originalDestination(socket);
    return { ip: d.address, port: d.port };
  }

  bindUdp(ip: string, port: number, options: { mark?: boolean } = {}): Promise<dgram.Socket> {
    // A fixed port (the DNS proxy's 15053) is shared with a successor ztunnel while they hand over.
    return udpSocketInNetns(this.ns, { host: ip, port, mark: options.mark ? ZTUNNEL_MARK : undefined, reusePort: port !== 0 });
  }

  close(): void {
    this.ns.close();
  }
}

/**
 * A listening server's errors after it listens (accept failing with EMFILE/ENFILE under a
 * connection flood, say) are logged, at most once per interval, and the server keeps
 * listening: without a listener Node would throw them and end the process.
 */
export function guardListener(server: net.Server, logger: Logger, clock: Clock, what: string): void {
  const limiter = new LogLimiter(clock, 10_000, 1);
  server.on('error', (e: Error) => {
    const d = limiter.allow('error');
    if (d.log) logger.warn('listener error; still listening', { listener: what, code: (e as NodeJS.ErrnoException).code, error: e.message, ...(d.suppressed ? { alsoSinceLastLine: d.suppressed } : {}) });
  });
}
