// Capturing one pod: the in-pod redirection rules (capture-rules.ts), the pod's listening
// sockets on the capture ports, which the agent holds, and an open handle on its network
// namespace (what ZDS hands to the ztunnel).
//
// Why the agent holds listening sockets: a connection the rules redirect waits in the kernel's
// accept queue of a listening socket until someone accepts it. While the agent holds one on
// each capture port, a ztunnel that is restarting or was killed costs new connections time,
// never a refusal: they are accepted when a ztunnel takes the sockets over (ZDS
// "listener-handoff"). Every capture port's socket has SO_REUSEPORT, and the pod's namespace
// has net.ipv4.tcp_migrate_req=1, so when any listener of a port closes (a ztunnel's own, or
// the agent's after a restart made new ones) the connections queued on it move to another
// listener of the same port instead of being reset.
//
// Invariants:
//  - capturePod either returns a pod with its rules in place, its sysctl set and one
//    listening socket per capture port, or undoes what it did and throws: never half.
//  - The listeners are made before the rules go in, so a redirected connection always finds one.
//  - release() closes the agent's fds (netns handle, listeners); it does not touch the rules.
//    uncapture() also detaches the rules (removeCapture: established connections live on).
import { describeError } from '../core/errors.js';
import { HBONE_PORT, INBOUND_PLAINTEXT_PORT, OUTBOUND_CAPTURE_PORT } from '../core/mesh-constants.js';
import type { Logger } from '../core/logger.js';
import { loadNative } from '../sys/native.js';
import { NetnsHandle } from '../sys/netns-socket.js';
import { ensureCapture, removeCapture, type CapturePorts } from './capture-rules.js';

/** The proxy ports a captured pod's traffic is redirected to: outbound, inbound plaintext, HBONE. */
export const CAPTURE_LISTENER_PORTS: readonly number[] = [OUTBOUND_CAPTURE_PORT, INBOUND_PLAINTEXT_PORT, HBONE_PORT];
/** As a ztunnel's own listeners (Node's default): ~5 s of 100 new connections/s wait here while no ztunnel accepts. */
const LISTEN_BACKLOG = 511;

export interface CapturedPod {
  netnsPath: string;
  netns: NetnsHandle;
  /** Listening sockets by port, inside the pod's namespace. */
  listeners: Map<number, number>;
  /** The rules were there already (a restarted agent recognized them). */
  recognized: boolean;
}

/** Opens the pod's namespace, makes its listeners, sets tcp_migrate_req, installs the rules. */
export async function capturePod(netnsPath: string, logger: Logger, ports?: CapturePorts): Promise<CapturedPod> {
  const native = loadNative();
  const netns = NetnsHandle.open(netnsPath);
  const listeners = new Map<number, number>();
  try {
    native.writeSysctlInNetns(netns.fd, 'net/ipv4/tcp_migrate_req', '1');
    for (const port of CAPTURE_LISTENER_PORTS) {
      listeners.set(port, native.makeSocket({
        family: 4, netnsFd: netns.fd, reuseAddr: true, reusePort: true, bindAddress: '0.0.0.0', bindPort: port, listen: true, backlog: LISTEN_BACKLOG,
      }));
    }
    const recognized = await ensureCapture(netnsPath, ports);
    return { netnsPath, netns, listeners, recognized };
  } catch (e: unknown) {
    for (const fd of listeners.values()) closeQuietly(fd);
    netns.close();
    logger.warn('capturing the pod failed; nothing of it is left', { netns: netnsPath, error: describeError(e).message });
    throw e;
  }
}

/** Closes what the agent holds for a captured pod (not the rules). Idempotent. */
export function releasePod(pod: CapturedPod): void {
  for (const fd of pod.listeners.values()) closeQuietly(fd);
  pod.listeners.clear();
  pod.netns.close();
}

/** Stops capturing new connections (rules detached) and releases the pod. */
export async function uncapturePod(pod: CapturedPod): Promise<void> {
  try {
    await removeCapture(pod.netnsPath);
  } finally {
    releasePod(pod);
  }
}

function closeQuietly(fd: number): void {
  try {
    loadNative().closeFd(fd);
  } catch {
    // already closed
  }
}
