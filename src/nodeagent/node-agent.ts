// The node agent (Istio's istio-cni agent), one per node: told about new pod sandboxes by the
// `ambit-cni` plugin, it decides which pods are enrolled, captures them (in-pod rules, held
// listening sockets), records them (`ambient.istio.io/redirection: enabled`) and hands their
// network namespaces to the node's ztunnel over ZDS. It learns the pods of its node and their
// namespaces' labels from a pod source (pod-source.ts): the control plane's admin API on the
// local cluster, Pod and Namespace informers on Kubernetes.
//
//   runtime ─ CNI ADD ─▶ ambit-cni ─ unix socket ─▶ agent ─ rules, listeners ─▶ pod netns
//                                                     └─ ZDS add(netns fd, listener fds) ─▶ ztunnel
//
// Invariants:
//  - A pod the agent captures has its rules, its listeners and its record, and was offered to
//    the newest ztunnel; an ADD answers success only then (or when no ztunnel is connected: the
//    held listeners keep its connections waiting, never refused). A ztunnel refusing the pod
//    undoes the capture and fails the ADD (try again later): never a half-captured pod.
//  - Enrolment is model/enrolment.ts's rule on the control plane's labels; a label change
//    captures or releases a running pod without restarting it. Un-enrolling removes the rules
//    first (new connections go direct), then tells the ztunnel.
//  - Everything is recoverable after a restart: records (pods/<container>.json) name each pod's
//    namespace; a record whose namespace is gone is a pod deleted while the agent was away and
//    is cleaned up; a captured pod's rules are recognized (never duplicated) and its listeners
//    made again (SO_REUSEPORT + tcp_migrate_req: the ztunnel's old ones hand their queue over).
//    The ZDS socket opens only after that recovery, so a ztunnel's snapshot is never partial.
//  - Pods enrolled in the control plane that the agent has no record of (they ran before it
//    was installed) are found by IP among the named namespaces and captured, without restart.
//  - Work on one pod is serialized (a lock per pod); different pods proceed in parallel.
//  - Where the pod source can write pods (Kubernetes), the pod's own annotation
//    `ambient.istio.io/redirection: enabled` follows its capture: set once captured, removed
//    when released while the pod lives (not when it is deleted), put right again by any
//    reconcile that sees it wrong. A failed write is logged and never undoes a capture.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../core/clock.js';
import { AmbitError, describeError } from '../core/errors.js';
import { closeFds } from '../sys/seqpacket.js';
import type { Logger } from '../core/logger.js';
import type { WireRequest } from '../cni/plugin-wire.js';
import { CniErrorCode, kubernetesPod, parsePluginRequest, versionResult, type PluginRequest } from '../cni/spec.js';
import { captureInstalled, ensureCapture, type CapturePorts } from './capture-rules.js';
import { installPlugin } from './cni-install.js';
import { CniServer, errorAnswer, type CniAnswer } from './cni-server.js';
import { ControlApi } from './control-api.js';
import { namespacesByAddress } from './netns-discovery.js';
import { capturePod, releasePod, uncapturePod, type CapturedPod } from './pod-capture.js';
import { PodRecords, REDIRECTION_ANNOTATION, type PodRecord } from './pod-records.js';
import { AdminPodSource, podKey, wantsCapture, type AgentPod, type PodSource, type PodView } from './pod-source.js';
import { ZdsServer, type ZdsPod } from './zds-server.js';

export interface NodeAgentOptions {
  node: string;
  /** Holds cni.sock, ztunnel.sock, agent.sock and pods/. */
  dir: string;
  /** Where the pods of the node and their namespaces' labels come from (e.g. Kubernetes informers). */
  podSource?: PodSource;
  /** Without a podSource: the control plane's admin API (pods and labels), e.g. http://127.0.0.1:15014. */
  controlPlaneUrl?: string;
  /** The admin API's bearer token. */
  controlPlaneToken?: () => string;
  /** The node's network namespace (path): pods it was not told about are looked for only behind its veths. */
  nodeNetns?: string;
  /** The node's CNI configuration list to put ambit-cni into (optional). */
  cniConfList?: string;
  clock: Clock;
  logger: Logger;
  /** Whether pods' port-53 traffic goes to the ztunnel's DNS proxy (default true, Istio 1.25+). */
  dnsCapture?: boolean;
  zdsAckTimeoutMs?: number;
  podPollMs?: number;
}

export interface AgentPaths {
  cniSocket: string;
  zdsSocket: string;
  controlSocket: string;
  records: string;
}

export function agentPaths(dir: string): AgentPaths {
  return { cniSocket: join(dir, 'cni.sock'), zdsSocket: join(dir, 'ztunnel.sock'), controlSocket: join(dir, 'agent.sock'), records: join(dir, 'pods') };
}

interface PodEntry {
  record: PodRecord;
  seq: number;
  /** Captured before a restart, but its namespace could not be reopened: ZDS `keep`. */
  keepOnly?: boolean;
  captured?: CapturedPod;
  /** The workload uid (ZDS uid) and identity, once known from the control plane. */
  uid?: string;
  pod?: AgentPod;
  lastError?: string;
  /** The last failure to write the pod's redirection annotation (logged once). */
  annotationError?: string;
}

export interface AgentPodStatus {
  namespace: string;
  name: string;
  containerId: string;
  netns: string;
  ip: string;
  captured: boolean;
  annotations: Record<string, string>;
  recognized: boolean;
  discovered: boolean;
  error?: string;
}

export class NodeAgent {
  readonly paths: AgentPaths;
  private readonly records: PodRecords;
  private readonly entries = new Map<string, PodEntry>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly source: PodSource;
  private readonly zds: ZdsServer;
  private readonly cni: CniServer;
  private readonly control: ControlApi;
  private readonly logger: Logger;
  private seq = 0;
  private holdListeners = true;
  private readonly ports: CapturePorts;
  private closed = false;

  constructor(private readonly opts: NodeAgentOptions) {
    this.logger = opts.logger;
    this.ports = opts.dnsCapture === false ? { dns: false } : {};
    this.paths = agentPaths(opts.dir);
    this.records = new PodRecords(this.paths.records);
    if (!opts.podSource && !opts.controlPlaneUrl) throw new AmbitError('AMBIT_ERR_USAGE', 'the node agent needs a pod source', { hint: 'pass --control-plane URL, or --kubernetes on a Kubernetes node' });
    this.source = opts.podSource ?? new AdminPodSource({
      url: opts.controlPlaneUrl!, token: opts.controlPlaneToken, node: opts.node, clock: opts.clock, logger: opts.logger, intervalMs: opts.podPollMs,
    });
    this.zds = new ZdsServer({
      path: this.paths.zdsSocket, clock: opts.clock, logger: opts.logger, ackTimeoutMs: opts.zdsAckTimeoutMs,
      snapshot: () => [...this.entries.values()].filter((e) => (e.captured || e.keepOnly) && e.uid).sort((a, b) => a.seq - b.seq)
        .map((e) => (e.captured ? e.uid! : { keep: e.uid! })),
      lookup: (uid) => this.zdsPod(uid),
      onLegacyPeer: (pid) => this.onLegacyPeer(pid),
    });
    this.cni = new CniServer({ path: this.paths.cniSocket, clock: opts.clock, logger: opts.logger, handle: (r) => this.handleCni(r) });
    this.control = new ControlApi({ path: this.paths.controlSocket, pods: () => this.podStatus(), ztunnels: () => this.zds.status() });
  }

  /** Recovers from the records, then opens ZDS, the CNI socket and the control socket. */
  async start(): Promise<void> {
    await this.recover();
    this.zds.listen();
    await this.cni.listen();
    await this.control.listen();
    if (this.opts.cniConfList) {
      const changed = installPlugin(this.opts.cniConfList, this.paths.cniSocket);
      this.logger.info(changed ? 'ambit-cni added to the node\'s CNI chain' : 'ambit-cni already in the node\'s CNI chain', { conflist: this.opts.cniConfList });
    }
    this.source.start((view) => this.reconcile(view));
  }

  /** Stops serving; pods stay captured (rules in their namespaces, records on disk). */
  async close(): Promise<void> {
    this.closed = true;
    this.source.close();
    this.zds.close();
    await Promise.all([this.cni.close(), this.control.close()]);
    for (const e of this.entries.values()) if (e.captured) releasePod(e.captured);
  }

  podStatus(): AgentPodStatus[] {
    return [...this.entries.values()].sort((a, b) => a.seq - b.seq).map((e) => ({
      namespace: e.record.namespace, name: e.record.name, containerId: e.record.containerId, netns: e.record.netns, ip: e.record.ip,
      captured: !!e.captured,
      annotations: (e.record.redirection ? { [REDIRECTION_ANNOTATION]: e.record.redirection } : {}) as Record<string, string>,
      recognized: e.captured?.recognized ?? false, discovered: e.record.discovered ?? false,
      ...(e.lastError ? { error: e.lastError } : {}),
    }));
  }

  // ---- recovery ----

  private async recover(): Promise<void> {
    const { records, bad } = this.records.load();
    for (const b of bad) this.logger.warn('ignoring an unreadable pod record', { file: b });
    for (const r of records) {
      if (!existsSync(r.netns)) {
        this.records.remove(r.containerId);
        this.logger.info('pod deleted while the agent was away: record cleaned up', { pod: podKey(r.namespace, r.name), netns: r.netns });
        continue;
      }
      const entry: PodEntry = { record: r, seq: ++this.seq };
      this.entries.set(r.containerId, entry);
      if (r.redirection !== 'enabled') continue;
      entry.uid = r.uid ?? `Kubernetes//Pod/${r.namespace}/${r.name}`;
      try {
        entry.captured = await capturePod(r.netns, this.logger, this.ports);
        this.logger.info(entry.captured.recognized ? 'captured pod recovered: its rules were recognized' : 'captured pod recovered: its rules were put back', { pod: podKey(r.namespace, r.name) });
      } catch (e: unknown) {
        // The namespace is there but cannot be taken again: the ztunnel keeps what it has
        // (ZDS keep) rather than dropping a pod that may still run.
        entry.keepOnly = true;
        entry.lastError = describeError(e).message;
        this.logger.warn('captured pod not recovered; asking the ztunnel to keep it', { pod: podKey(r.namespace, r.name), error: entry.lastError });
      }
    }
  }

  // ---- CNI ----

  private async handleCni(w: WireRequest): Promise<CniAnswer> {
    const parsed = parsePluginRequest(w.env, w.stdin);
    if (!parsed.ok) return { exitCode: 1, stdout: JSON.stringify(parsed.error) + '\n' };
    const req = parsed.value;
    switch (req.command) {
      case 'VERSION':
        return { exitCode: 0, stdout: JSON.stringify(versionResult(req.config.cniVersion)) + '\n' };
      case 'ADD':
        return this.cniAdd(req);
      case 'DEL':
        return this.cniDel(req);
      case 'CHECK':
        return this.cniCheck(req);
    }
  }

  private async cniAdd(req: PluginRequest): Promise<CniAnswer> {
    const version = req.config.cniVersion;
    const prev = req.config.prevResult;
    if (!prev) return errorAnswer(CniErrorCode.INVALID_NETWORK_CONFIG, 'ambit-cni is a chained plugin: it needs a prevResult (put it after an interface plugin such as ptp)', undefined, version);
    const passthrough: CniAnswer = { exitCode: 0, stdout: JSON.stringify(prev) + '\n' };
    const who = kubernetesPod(req.args);
    if (!who) return passthrough; // not a Kubernetes pod: nothing to enrol
    const key = podKey(who.namespace, who.name);
    let pod = this.source.current()?.pods.get(key);
    let view = this.source.current();
    if (!pod) {
      try {
        view = await this.source.refresh();
      } catch (e: unknown) {
        return errorAnswer(CniErrorCode.TRY_AGAIN_LATER, 'cannot read the pod from the control plane; try again later', describeError(e).message, version);
      }
      pod = view.pods.get(key);
    }
    if (!pod || !view) return errorAnswer(CniErrorCode.TRY_AGAIN_LATER, `pod ${key} is not known to the control plane (on node ${this.opts.node}) yet`, undefined, version);
    return this.withLock(key, async () => {
      const record: PodRecord = { containerId: req.containerId, ifName: req.ifName, netns: req.netns, namespace: who.namespace, name: who.name, ip: resultIp(prev) ?? pod.ip };
      // A sandbox found by discovery (or an earlier ADD of the same container) is this one.
      for (const e of [...this.entries.values()]) {
        if (podKey(e.record.namespace, e.record.name) === key && e.record.netns === req.netns && e.record.containerId !== req.containerId) {
          this.entries.delete(e.record.containerId);
          this.records.remove(e.record.containerId);
          record.redirection = e.record.redirection;
          this.entries.set(req.containerId, { ...e, record });
        }
      }
      const entry = this.entries.get(req.containerId) ?? { record, seq: ++this.seq };
      entry.record = { ...record, redirection: entry.record.redirection };
      entry.pod = pod;
      entry.uid = pod.uid;
      this.entries.set(req.containerId, entry);
      this.records.save(entry.record);
      if (!wantsCapture(view, pod)) return passthrough;
      const error = await this.capture(entry, pod);
      if (error) return errorAnswer(CniErrorCode.TRY_AGAIN_LATER, `pod ${key} could not be captured; try again later`, error, version);
      return passthrough;
    });
  }

  private async cniDel(req: PluginRequest): Promise<CniAnswer> {
    const entry = this.entries.get(req.containerId);
    if (!entry) return { exitCode: 0, stdout: '' };
    const key = podKey(entry.record.namespace, entry.record.name);
    await this.withLock(key, async () => {
      if (this.entries.get(req.containerId) !== entry) return;
      await this.forget(entry, 'the runtime deleted the pod sandbox');
    });
    return { exitCode: 0, stdout: '' };
  }

  private async cniCheck(req: PluginRequest): Promise<CniAnswer> {
    const version = req.config.cniVersion;
    if (!req.config.prevResult) return errorAnswer(CniErrorCode.INVALID_NETWORK_CONFIG, 'CHECK needs a prevResult', undefined, version);
    const entry = this.entries.get(req.containerId);
    const who = kubernetesPod(req.args);
    const view = this.source.current();
    const pod = who ? view?.pods.get(podKey(who.namespace, who.name)) : undefined;
    const want = !!(view && pod && wantsCapture(view, pod));
    if (!want) return { exitCode: 0, stdout: '' };
    if (!entry) return errorAnswer(CniErrorCode.UNKNOWN_CONTAINER, `container ${req.containerId} was never added through this agent`, undefined, version);
    if (!entry.captured) return errorAnswer(CniErrorCode.TRY_AGAIN_LATER, `pod ${podKey(entry.record.namespace, entry.record.name)} should be captured but is not`, entry.lastError, version);
    if (!(await captureInstalled(entry.record.netns, this.ports))) return errorAnswer(CniErrorCode.TRY_AGAIN_LATER, 'the pod\'s capture rules are not (all) in place', entry.record.netns, version);
    return { exitCode: 0, stdout: '' };
  }

  // ---- capture ----

  /** Captures and hands to the ztunnel; undoes everything on failure. Returns an error or undefined. */
  private async capture(entry: PodEntry, pod: AgentPod): Promise<string | undefined> {
    const key = podKey(pod.namespace, pod.name);
    entry.keepOnly = false;
    try {
      if (!entry.captured) {
        entry.captured = await capturePod(entry.record.netns, this.logger, this.ports);
        if (!this.holdListeners) this.dropListeners(entry.captured);
      } else {
        await ensureCapture(entry.record.netns, this.ports); // an ADD again after the rules went: put them back
      }
    } catch (e: unknown) {
      entry.lastError = describeError(e).message;
      return entry.lastError;
    }
    entry.uid = pod.uid;
    entry.pod = pod;
    const outcome = await this.zds.add(pod.uid);
    if (outcome.sent && outcome.error) {
      const why = `the ztunnel refused it: ${outcome.error}`;
      this.logger.warn('pod not captured', { pod: key, error: why });
      await this.release(entry, true);
      entry.lastError = why;
      return why;
    }
    if (!outcome.sent) this.logger.info('pod captured; no ztunnel takes it yet, its connections wait in the held listeners', { pod: key, reason: outcome.reason });
    entry.record.redirection = 'enabled';
    entry.record.uid = pod.uid;
    entry.record.serviceAccount = pod.serviceAccount;
    entry.lastError = undefined;
    this.records.save(entry.record);
    this.logger.info('pod captured', { pod: key, netns: entry.record.netns, recognized: entry.captured?.recognized ?? false });
    await this.annotate(entry, true);
    return undefined;
  }

  /** Stops capturing (rules first), tells the ztunnels, drops the annotation. */
  private async release(entry: PodEntry, removeRules: boolean): Promise<void> {
    const captured = entry.captured;
    entry.captured = undefined;
    if (captured) {
      if (removeRules && existsSync(entry.record.netns)) {
        try {
          await uncapturePod(captured);
        } catch (e: unknown) {
          this.logger.warn('removing the capture rules failed', { netns: entry.record.netns, error: describeError(e).message });
        }
      } else {
        releasePod(captured);
      }
    }
    // Redirection is off from here on (the rules are gone): the annotation goes before the
    // ztunnel is told, as the pod's new connections already go direct.
    if (entry.record.redirection) {
      entry.record.redirection = undefined;
      if (this.entries.get(entry.record.containerId) === entry) this.records.save(entry.record);
    }
    if (removeRules) await this.annotate(entry, false);
    if (entry.uid) await this.zds.del(entry.uid);
  }

  /** Puts the pod's redirection annotation right, where the source writes pods; never throws. */
  private async annotate(entry: PodEntry, enabled: boolean): Promise<void> {
    const pod = entry.pod;
    if (!this.source.setRedirection || !pod) return;
    if ((pod.annotations[REDIRECTION_ANNOTATION] === 'enabled') === enabled) return;
    try {
      await this.source.setRedirection(pod, enabled);
      entry.annotationError = undefined;
    } catch (e: unknown) {
      const error = describeError(e).message;
      if (error !== entry.annotationError) this.logger.warn('cannot write the pod\'s redirection annotation; tried again at the next change', { pod: podKey(pod.namespace, pod.name), enabled, error });
      entry.annotationError = error;
    }
  }

  private async forget(entry: PodEntry, why: string): Promise<void> {
    await this.release(entry, false);
    this.entries.delete(entry.record.containerId);
    this.records.remove(entry.record.containerId);
    this.logger.info('pod forgotten', { pod: podKey(entry.record.namespace, entry.record.name), reason: why });
  }

  private zdsPod(uid: string): ZdsPod | undefined {
    for (const e of this.entries.values()) {
      if (e.uid !== uid || !e.captured || e.captured.netns.closed) continue;
      return {
        uid, netnsFd: e.captured.netns.fd, listeners: e.captured.listeners,
        info: { name: e.record.name, namespace: e.record.namespace, serviceAccount: e.pod?.serviceAccount ?? e.record.serviceAccount ?? '' },
      };
    }
    return undefined;
  }

  private onLegacyPeer(pid: number): void {
    if (!this.holdListeners) return;
    this.holdListeners = false;
    this.logger.warn('a ztunnel without listener-handoff connected: the agent stops holding listening sockets (a ztunnel away will refuse connections again)', { pid });
    for (const e of this.entries.values()) if (e.captured) this.dropListeners(e.captured);
  }

  private dropListeners(c: CapturedPod): void {
    const fds = [...c.listeners.values()];
    c.listeners.clear();
    closeFds(fds);
  }

  // ---- reconcile (label changes, pods gone, pods found) ----

  private async reconcile(view: PodView): Promise<void> {
    if (this.closed) return;
    const work: Array<Promise<unknown>> = [];
    const known = new Set<string>();
    for (const entry of [...this.entries.values()]) {
      const key = podKey(entry.record.namespace, entry.record.name);
      known.add(key);
      work.push(this.withLock(key, async () => {
        if (!this.entries.has(entry.record.containerId)) return;
        if (!existsSync(entry.record.netns)) {
          await this.forget(entry, 'its network namespace is gone');
          return;
        }
        const pod = view.pods.get(key);
        if (!pod) return; // the runtime deletes it (CNI DEL) when it goes
        entry.pod = pod;
        const want = wantsCapture(view, pod);
        if (want && !entry.captured) {
          this.logger.info('pod enrolled: capturing it without a restart', { pod: key });
          await this.capture(entry, pod);
        } else if (!want && entry.captured) {
          this.logger.info('pod un-enrolled: removing its capture', { pod: key });
          await this.release(entry, true);
        } else if (want && entry.uid !== pod.uid) {
          entry.uid = pod.uid;
        }
        if (!entry.keepOnly) await this.annotate(entry, !!entry.captured);
      }));
    }
    await Promise.all(work);
    const unknown = [...view.pods.values()].filter((p) => !known.has(podKey(p.namespace, p.name)) && p.ip && wantsCapture(view, p));
    if (unknown.length > 0) await this.discover(unknown);
  }

  /** Enrolled pods the agent never heard of: find their namespace by IP and capture them. */
  private async discover(pods: AgentPod[]): Promise<void> {
    let byIp: Map<string, string>;
    try {
      byIp = await namespacesByAddress(this.opts.nodeNetns);
    } catch (e: unknown) {
      this.logger.warn('cannot list network namespaces to find running pods', { error: describeError(e).message });
      return;
    }
    const missing = pods.filter((p) => !byIp.has(p.ip)).map((p) => podKey(p.namespace, p.name));
    if (missing.length) this.logger.info('enrolled pods with no sandbox on this node yet', { pods: missing.slice(0, 20) });
    await Promise.all(pods.map((pod) => {
      const netns = byIp.get(pod.ip);
      if (!netns) return undefined;
      const key = podKey(pod.namespace, pod.name);
      return this.withLock(key, async () => {
        if ([...this.entries.values()].some((e) => podKey(e.record.namespace, e.record.name) === key)) return;
        const containerId = `discovered-${pod.namespace}-${pod.name}`.replace(/[^a-zA-Z0-9_.-]/g, '_').slice(0, 200);
        const entry: PodEntry = { record: { containerId, ifName: 'eth0', netns, namespace: pod.namespace, name: pod.name, ip: pod.ip, discovered: true }, seq: ++this.seq };
        this.entries.set(containerId, entry);
        this.records.save(entry.record);
        this.logger.info('found a running pod the agent was not told about: capturing it without a restart', { pod: key, netns });
        await this.capture(entry, pod);
      });
    }));
  }

  private withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => { if (this.locks.get(key) === tail) this.locks.delete(key); });
    return next;
  }
}

function resultIp(result: Record<string, unknown>): string | undefined {
  const ips = result.ips;
  if (!Array.isArray(ips)) return undefined;
  for (const x of ips) {
    const a = (x as { address?: unknown }).address;
    if (typeof a === 'string' && /^\d+\.\d+\.\d+\.\d+\//.test(a)) return a.split('/')[0];
  }
  return undefined;
}

