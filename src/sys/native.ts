// Loads Ambit's native addon (native/ambit_native.c): the Linux socket calls Node lacks
// (SO_ORIGINAL_DST, SO_MARK, sockets created inside another network namespace).
//
// Invariants:
//  - The addon is found from this file's own location (src/sys/ when run from source,
//    dist/src/sys/ when compiled) by walking up to the package root, the directory whose
//    native/binding.gyp exists; so it works from any working directory.
//  - A missing, unloadable or stale addon is one AmbitError AMBIT_ERR_NATIVE that says how to
//    build it; nothing else in Ambit needs to know how the addon is built.
//  - The addon is process-global by nature (dlopen'ed once); loadNative() memoizes it.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmbitError } from '../core/errors.js';

/** The version ambit_native.c reports; bump both together when the addon's API changes. */
export const NATIVE_ABI_VERSION = 2;

export interface OriginalDst {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

/** Options of the addon's makeSocket(): one TCP (or UDP) socket, non-blocking and close-on-exec. */
export interface MakeSocketOptions {
  family: 4 | 6;
  /** fd of a network namespace (openNetns) to create the socket in; -1 or absent = this thread's. */
  netnsFd?: number;
  mark?: number;
  reuseAddr?: boolean;
  reusePort?: boolean;
  transparent?: boolean;
  freebind?: boolean;
  v6Only?: boolean;
  bindAddress?: string;
  bindPort?: number;
  listen?: boolean;
  backlog?: number;
  /** A UDP (SOCK_DGRAM) socket instead of TCP; cannot listen. */
  dgram?: boolean;
}

/**
 * The addon's functions. Each throws an Error with `code` = the errno name (ECONNREFUSED,
 * EPERM, ENOENT, ...), `errno` (negated, as Node does) and `syscall`; bad arguments throw a
 * TypeError with code ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE.
 */
export interface NativeAddon {
  readonly abiVersion: number;
  getOriginalDst(fd: number): OriginalDst;
  setMark(fd: number, mark: number): void;
  getMark(fd: number): number;
  openNetns(path: string): number;
  closeFd(fd: number): void;
  makeSocket(options: MakeSocketOptions): number;
  // Unix SEQPACKET sockets with SCM_RIGHTS and libuv readiness (native/ambit_fdpass.c;
  // used through ./seqpacket.ts and ./fd-info.ts).
  seqpacketListen(path: string, backlog?: number): number;
  seqpacketConnect(path: string): number;
  acceptPeer(fd: number): PeerConnection | null;
  recvMsg(fd: number, maxBytes: number, maxFds: number): ReceivedMessage | { eof: true } | null;
  sendMsg(fd: number, data: Uint8Array, fds: readonly number[]): boolean;
  poll(fd: number, events: number, callback: (status: number, events: number) => void): PollHandle;
  dupFd(fd: number): number;
  fdInfo(fd: number): FdInfo;
  writeSysctlInNetns(netnsFd: number, name: string, value: string): void;
}

export interface PeerConnection {
  fd: number;
  /** SO_PEERCRED of the connecting process (0 / -1 when unknown). */
  pid: number;
  uid: number;
  gid: number;
}

export interface ReceivedMessage {
  data: Buffer;
  /** Received with SCM_RIGHTS, close-on-exec; owned by the caller. */
  fds: number[];
  /** MSG_TRUNC: the message was longer than maxBytes (the rest is lost). */
  truncated: boolean;
  /** MSG_CTRUNC: more fds were sent than maxFds (the extra ones were closed by the kernel). */
  ctruncated: boolean;
}

/** A uv_poll_t on an fd: events 1 = readable, 2 = writable (callback flags add 4 = hang-up). */
export interface PollHandle {
  update(events: number): void;
  stop(): void;
}

export interface FdInfo {
  kind: 'netns' | 'socket' | 'other';
  dev: number;
  ino: number;
  /** For sockets: SOCK_STREAM = 1, SOCK_SEQPACKET = 5, ... */
  socketType?: number;
  /** For sockets: 4, 6, 1 (unix) or 0. */
  family?: number;
  listening?: boolean;
  address?: string;
  port?: number;
}

const BUILD_HINT = 'run `npm run setup` (it builds the addon with node-gyp; needs python3, make and g++)';

/** The directory holding package.json and native/, found from this module's location. */
export function packageRoot(fromUrl: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(fromUrl));
  for (;;) {
    if (existsSync(join(dir, 'native', 'binding.gyp')) && existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) {
      throw new AmbitError('AMBIT_ERR_NATIVE', `cannot find Ambit's package root (native/binding.gyp) above ${fileURLToPath(fromUrl)}`, {
        hint: 'run Ambit from its checkout or installed package, which ships native/',
      });
    }
    dir = up;
  }
}

export function nativeAddonPath(root: string = packageRoot()): string {
  return resolve(root, 'native', 'build', 'Release', 'ambit_native.node');
}

let loaded: NativeAddon | undefined;

/** The addon, loaded on first use. Throws AmbitError AMBIT_ERR_NATIVE with a hint when it can't be. */
export function loadNative(): NativeAddon {
  if (!loaded) loaded = loadNativeFrom(nativeAddonPath());
  return loaded;
}

/** Loads the addon from `path` (not memoized; loadNative() is what the rest of Ambit calls). */
export function loadNativeFrom(path: string): NativeAddon {
  if (!existsSync(path)) {
    throw new AmbitError('AMBIT_ERR_NATIVE', `the native addon is not built (${path} is missing)`, {
      hint: BUILD_HINT,
      details: { path },
    });
  }
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (e: unknown) {
    throw new AmbitError('AMBIT_ERR_NATIVE', `the native addon at ${path} could not be loaded: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
      hint: `rebuild it for this Node (${process.version}): rm -rf native/build && npm run setup`,
      details: { path },
    });
  }
  if (addon.abiVersion !== NATIVE_ABI_VERSION) {
    throw new AmbitError('AMBIT_ERR_NATIVE', `the native addon at ${path} is stale (version ${String(addon.abiVersion)}, expected ${NATIVE_ABI_VERSION})`, {
      hint: `rebuild it: rm -rf native/build && npm run setup`,
      details: { path },
    });
  }
  return addon;
}
