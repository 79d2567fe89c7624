// Sockets that live in another network namespace, made from this process without moving it,
// and the socket facts Node does not expose (original destination, SO_MARK).
//
// Invariants:
//  - A socket belongs to the network namespace it was created in, for life: listeners,
//    the connections they accept and outbound connections all stay there, whatever thread
//    later drives them. Only creation needs the namespace; the addon enters it on the calling
//    thread for the one socket() call and comes straight back (see native/ambit_native.c),
//    so this process's own namespace never changes and the event loop never blocks.
//  - Outbound: the addon makes an unconnected, non-blocking socket (marked, optionally bound),
//    libuv adopts it (`new net.Socket({ fd })`) and connects it (`socket.connect()`), so the
//    connect is asynchronous and 'connect', ECONNREFUSED, EHOSTUNREACH, ... are exactly those of a
//    normal net.Socket. The timeout is ours: it destroys the socket and rejects with
//    AMBIT_ERR_TIMEOUT.
//  - Inbound: the addon makes a bound, listening socket; a net.Server (or http.Server, ...)
//    adopts it with `server.listen({ fd })`. Closing the server closes the socket.
//  - Every fd is owned by exactly one party: the addon until it returns it, then the
//    net.Socket/net.Server that adopted it (which closes it on destroy/close), or, if
//    adoption threw synchronously, this file, which closes it at once. An fd is never closed
//    after it may have been handed on, since its number could already belong to someone else.
//  - Errors Node itself would raise for an ordinary socket (EADDRINUSE, ECONNREFUSED,
//    EADDRNOTAVAIL, ...) keep Node's shape (`code`, `syscall`, `address`, `port`). Errors
//    that only namespaces cause (no such namespace, setns refused) are AmbitError
//    AMBIT_ERR_NETNS / AMBIT_ERR_PERMISSION with a hint.
import { systemClock, type TimerHandle } from '../core/clock.js';
import dgram from 'node:dgram';
import net from 'node:net';
import { AmbitError, errnoCode } from '../core/errors.js';
import { loadNative, type NativeAddon, type OriginalDst } from './native.js';

export type { OriginalDst } from './native.js';

/** Where `ip netns add <name>` puts its namespaces. */
export const NETNS_RUN_DIR = '/var/run/netns';

/** An open network namespace: an fd to it, usable to create sockets inside it. */
export class NetnsHandle {
  private fdValue: number;

  private constructor(
    readonly name: string,
    readonly path: string,
    fd: number,
    private readonly native: NativeAddon,
  ) {
    this.fdValue = fd;
  }

  /** Opens a namespace by name (under /var/run/netns, as `ip netns` names them) or by path. */
  static open(nameOrPath: string): NetnsHandle {
    const native = loadNative();
    const isPath = nameOrPath.includes('/');
    if (!isPath && (nameOrPath === '' || nameOrPath === '.' || nameOrPath === '..')) {
      throw new AmbitError('AMBIT_ERR_USAGE', `'${nameOrPath}' is not a network namespace name`);
    }
    const path = isPath ? nameOrPath : `${NETNS_RUN_DIR}/${nameOrPath}`;
    let fd: number;
    try {
      fd = native.openNetns(path);
    } catch (e: unknown) {
      const code = errnoCode(e);
      if (code === 'ENOENT') {
        throw new AmbitError('AMBIT_ERR_NETNS', `network namespace '${nameOrPath}' does not exist (${path})`, {
          cause: e,
          hint: 'list the namespaces with `ip netns list`; was the pod or node removed?',
          details: { path },
        });
      }
      if (code === 'EACCES' || code === 'EPERM') {
        throw new AmbitError('AMBIT_ERR_PERMISSION', `not allowed to open network namespace ${path}`, {
          cause: e,
          hint: 'working with network namespaces needs root (CAP_SYS_ADMIN)',
          details: { path },
        });
      }
      throw new AmbitError('AMBIT_ERR_NETNS', `cannot open network namespace ${path}: ${describe(e)}`, { cause: e, details: { path } });
    }
    return new NetnsHandle(isPath ? path : nameOrPath, path, fd, native);
  }

  /**
   * Adopts an open network namespace fd (one received over ZDS, a dup of one); the handle owns
   * it from then on and closes it on close().
   */
  static fromFd(fd: number, name: string): NetnsHandle {
    return new NetnsHandle(name, `/proc/self/fd/${fd}`, fd, loadNative());
  }

  get closed(): boolean {
    return this.fdValue < 0;
  }

  /** The namespace fd; throws AMBIT_ERR_NETNS once closed. */
  get fd(): number {
    if (this.fdValue < 0) {
      throw new AmbitError('AMBIT_ERR_NETNS', `network namespace handle '${this.name}' is closed`, {
        hint: 'a NetnsHandle is usable from open() until close()',
      });
    }
    return this.fdValue;
  }

  /** Closes the namespace fd. Sockets already made in the namespace keep working. Idempotent. */
  close(): void {
    if (this.fdValue < 0) return;
    const fd = this.fdValue;
    this.fdValue = -1;
    this.native.closeFd(fd);
  }
}

export interface ListenInNetnsOptions<S extends net.Server = net.Server> {
  /** An IP address ('0.0.0.0', '::', '127.0.0.1', a pod IP, ...); names are not resolved. */
  host: string;
  port: number;
  mark?: number;
  /** IP_TRANSPARENT / IPV6_TRANSPARENT: accept TPROXY'd traffic, bind to non-local addresses. */
  transparent?: boolean;
  /** IP_FREEBIND: bind to an address not (yet) configured. */
  freebind?: boolean;
  reusePort?: boolean;
  /** For host '::': refuse IPv4 (default: dual-stack, as the kernel's default). */
  ipv6Only?: boolean;
  backlog?: number;
  /** The server to listen with (e.g. http.createServer()); a new net.Server by default. */
  server?: S;
}

/**
 * Listens on host:port inside `ns` (null = this process's namespace), from this process.
 * Resolves with the listening server; the connections it accepts live in `ns`.
 */
export async function listenInNetns<S extends net.Server = net.Server>(ns: NetnsHandle | null, options: ListenInNetnsOptions<S>): Promise<S> {
  const native = loadNative();
  const family = ipFamily(options.host, 'listenInNetns');
  let fd: number;
  try {
    fd = native.makeSocket({
      family,
      netnsFd: ns ? ns.fd : -1,
      mark: options.mark,
      reuseAddr: true, // as libuv does for every TCP listener
      reusePort: options.reusePort,
      transparent: options.transparent,
      freebind: options.freebind,
      v6Only: family === 6 && options.ipv6Only !== undefined ? options.ipv6Only : undefined,
      bindAddress: options.host,
      bindPort: options.port,
      listen: true,
      backlog: options.backlog,
    });
  } catch (e: unknown) {
    throw socketError(e, ns, `listen on ${authority(options.host, options.port)}`);
  }
  return adoptListeningFd(fd, options.server ?? (net.createServer() as S));
}

/** A net.Server accepting on an already listening socket fd, which it then owns (closed if it cannot). */
export function adoptListeningFd<S extends net.Server>(fd: number, server: S): Promise<S> {
  return new Promise<S>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    try {
      server.listen({ fd }, () => {
        server.off('error', onError);
        resolve(server);
      });
    } catch (e: unknown) {
      server.off('error', onError);
      loadNative().closeFd(fd); // listen() threw before adopting the fd
      reject(e);
    }
  });
}

export interface UdpInNetnsOptions {
  /** The address to bind ('0.0.0.0', '::', a pod IP, ...). */
  host: string;
  /** 0 for any free port. */
  port: number;
  mark?: number;
  /** SO_REUSEPORT: another process may bind the same port (a successor during a hand-over). */
  reusePort?: boolean;
}

/**
 * A UDP socket bound to host:port inside `ns` (null = this process's namespace), as a
 * dgram.Socket of this process: datagrams it receives and sends live in `ns`.
 */
export async function udpSocketInNetns(ns: NetnsHandle | null, options: UdpInNetnsOptions): Promise<dgram.Socket> {
  const native = loadNative();
  const family = ipFamily(options.host, 'udpSocketInNetns');
  let fd: number;
  try {
    fd = native.makeSocket({ family, netnsFd: ns ? ns.fd : -1, mark: options.mark, dgram: true, reuseAddr: true, reusePort: options.reusePort, bindAddress: options.host, bindPort: options.port });
  } catch (e: unknown) {
    throw socketError(e, ns, `bind udp ${authority(options.host, options.port)}`);
  }
  const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6' });
  return new Promise<dgram.Socket>((resolve, reject) => {
    const onError = (e: Error) => { native.closeFd(fd); reject(e); };
    socket.once('error', onError);
    socket.bind({ fd }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

export interface ConnectInNetnsOptions {
  /** The destination IP address (names are not resolved). */
  host: string;
  port: number;
  /** SO_MARK for the socket, e.g. 0x539 to bypass the capture rules. */
  mark?: number;
  localAddress?: string;
  localPort?: number;
  /** IP_TRANSPARENT: allows a non-local localAddress (source spoofing, with TPROXY routing). */
  transparent?: boolean;
  freebind?: boolean;
  /** Rejects with AMBIT_ERR_TIMEOUT when the connection is not up in time (default: the kernel's). */
  timeoutMs?: number;
  allowHalfOpen?: boolean;
  noDelay?: boolean;
}

/**
 * Starts a TCP connection from inside `ns` (null = this process's namespace) and returns the
 * connecting net.Socket at once (for callers that hand a socket to tls.connect or a pool).
 * Connect errors arrive as the socket's 'error' event, as with net.connect.
 */
export function startConnectInNetns(ns: NetnsHandle | null, options: ConnectInNetnsOptions): net.Socket {
  const native = loadNative();
  const family = ipFamily(options.host, 'connectInNetns');
  if (options.localAddress !== undefined && net.isIP(options.localAddress) !== family) {
    throw new AmbitError('AMBIT_ERR_USAGE', `connectInNetns: localAddress ${options.localAddress} is not an IPv${family} address like ${options.host}`);
  }
  const bind = options.localAddress !== undefined || options.localPort !== undefined;
  let fd: number;
  try {
    fd = native.makeSocket({
      family,
      netnsFd: ns ? ns.fd : -1,
      mark: options.mark,
      transparent: options.transparent,
      freebind: options.freebind,
      bindAddress: bind ? (options.localAddress ?? (family === 4 ? '0.0.0.0' : '::')) : undefined,
      bindPort: bind ? (options.localPort ?? 0) : undefined,
    });
  } catch (e: unknown) {
    throw socketError(e, ns, `connect to ${authority(options.host, options.port)}`);
  }
  let socket: net.Socket;
  try {
    // manualStart: don't start reading before the socket is connected (Node's internal option;
    // without it Node calls readStart at once, which is harmless only because connect() follows
    // in the same tick).
    const socketOptions: net.SocketConstructorOpts & { manualStart: boolean } = {
      fd,
      readable: true,
      writable: true,
      allowHalfOpen: options.allowHalfOpen ?? false,
      manualStart: true,
    };
    socket = new net.Socket(socketOptions);
  } catch (e: unknown) {
    native.closeFd(fd); // not adopted
    throw e;
  }
  if (options.noDelay) socket.setNoDelay(true);
  socket.connect({ host: options.host, port: options.port });
  return socket;
}

/**
 * Opens a TCP connection from inside `ns` (null = this process's namespace). Resolves once
 * connected with an ordinary net.Socket; rejects with Node's connect errors (ECONNREFUSED,
 * EHOSTUNREACH, ...) or AMBIT_ERR_TIMEOUT, having destroyed the socket.
 */
export async function connectInNetns(ns: NetnsHandle | null, options: ConnectInNetnsOptions): Promise<net.Socket> {
  const socket = startConnectInNetns(ns, options);

  return new Promise<net.Socket>((resolve, reject) => {
    let timer: TimerHandle | undefined;
    const done = () => {
      timer?.cancel();
      socket.off('connect', onConnect);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const onConnect = () => {
      done();
      resolve(socket);
    };
    const onError = (e: Error) => {
      done();
      socket.destroy();
      reject(e);
    };
    const onClose = () => {
      done();
      reject(new AmbitError('AMBIT_ERR_CONNECT', `connection to ${authority(options.host, options.port)} was closed before it was established`));
    };
    socket.once('connect', onConnect);
    socket.once('error', onError);
    socket.once('close', onClose);
    if (options.timeoutMs !== undefined) {
      timer = systemClock.setTimeout(() => {
        done();
        socket.destroy();
        reject(new AmbitError('AMBIT_ERR_TIMEOUT', `connection to ${authority(options.host, options.port)} timed out after ${options.timeoutMs} ms`, {
          hint: `is the destination up, and is nothing dropping TCP to port ${options.port}?`,
          details: { address: options.host, port: options.port, netns: ns?.name, errno: 'ETIMEDOUT' },
        }));
      }, options.timeoutMs);
    }
  });
}

/** The file descriptor of a connected or listening Node TCP socket. */
export function socketFd(socket: net.Socket | net.Server): number {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new AmbitError('AMBIT_ERR_INTERNAL', 'the socket has no file descriptor (destroyed, not yet connected, or not a TCP socket)');
  }
  return fd;
}

/**
 * Where a connection captured by an iptables REDIRECT was going: its destination before NAT
 * (SO_ORIGINAL_DST; IP6T_SO_ORIGINAL_DST for IPv6). Throws AMBIT_ERR_NOT_FOUND for a
 * connection that was not redirected.
 */
export function originalDestination(socket: net.Socket): OriginalDst {
  const fd = socketFd(socket);
  try {
    return loadNative().getOriginalDst(fd);
  } catch (e: unknown) {
    if (errnoCode(e) === 'ENOENT') {
      throw new AmbitError('AMBIT_ERR_NOT_FOUND', `connection from ${authority(socket.remoteAddress ?? '?', socket.remotePort ?? 0)} has no original destination: it was not redirected`, {
        cause: e,
        hint: 'only connections captured by the REDIRECT rules (ports 15001/15006) have one; are the capture rules installed?',
      });
    }
    throw new AmbitError('AMBIT_ERR_INTERNAL', `cannot read the original destination: ${describe(e)}`, { cause: e });
  }
}

/** SO_MARK of a Node socket. */
export function socketMark(socket: net.Socket | net.Server): number {
  return loadNative().getMark(socketFd(socket));
}

export function setSocketMark(socket: net.Socket | net.Server, mark: number): void {
  loadNative().setMark(socketFd(socket), mark);
}

function ipFamily(host: string, fn: string): 4 | 6 {
  const family = net.isIP(host);
  if (family === 0) {
    throw new AmbitError('AMBIT_ERR_USAGE', `${fn}: '${host}' is not an IP address`, {
      hint: 'resolve names before creating sockets in a namespace',
    });
  }
  return family as 4 | 6;
}

function authority(host: string, port: number): string {
  return net.isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Maps makeSocket's namespace-specific failures to AmbitErrors; others keep Node's shape. */
function socketError(e: unknown, ns: NetnsHandle | null, what: string): unknown {
  const syscall = e instanceof Error ? (e as NodeJS.ErrnoException).syscall : undefined;
  if (syscall !== 'setns' && !(syscall === 'open' && ns)) return e;
  const code = errnoCode(e);
  if (code === 'EPERM') {
    return new AmbitError('AMBIT_ERR_PERMISSION', `not allowed to enter network namespace '${ns?.name}' to ${what}`, {
      cause: e,
      hint: 'creating sockets in another network namespace needs root (CAP_SYS_ADMIN)',
    });
  }
  return new AmbitError('AMBIT_ERR_NETNS', `cannot enter network namespace '${ns?.name}' to ${what}: ${describe(e)}`, {
    cause: e,
    hint: code === 'EINVAL' ? `${ns?.path} is not a network namespace` : undefined,
  });
}
