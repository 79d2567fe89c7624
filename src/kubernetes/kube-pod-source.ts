// The node agent's pod source on Kubernetes, as Istio's node agent (istio-cni) has it: Pod
// informers limited to its node (field selector spec.nodeName=<node>) and a Namespace
// informer, on the shared informer machinery (informers.ts: list, watch with bookmarks,
// 410 Gone -> relist, back-off with the last good objects kept). It needs only get/list/watch
// on pods and namespaces and patch on pods (the redirection annotation), never the control
// plane's admin token.
//
// Invariants:
//  - No view before both kinds have finished their first list (a partial first view would
//    release captured pods whose namespace is not listed yet).
//  - A pod is in the view when it is on this node, not terminal (Succeeded/Failed) and not on
//    the host's network. A pod without an IP yet IS in the view (ip ''): the runtime calls
//    CNI ADD before the kubelet can report an IP, so leaving it out would refuse every ADD;
//    the agent takes the IP from the ADD's prevResult and never looks for it by IP.
//    (The control plane leaves IP-less pods out of the mesh: it has nothing to route to.)
//  - The view's version moves only when what the agent reads changes (the AgentPod fields and
//    namespace labels), not on status churn such as readiness; and after each annotation
//    write, so the agent always sees the pod's annotation as it is after its own change.
//  - Views are delivered one at a time in order; a burst of events gives one view (they are
//    debounced, and a delivery builds from the cache as it is when it runs); refresh() shares
//    a queued delivery.
//  - The workload uid is the control plane's (`<cluster id>//Pod/<ns>/<name>`), so both
//    sources name a pod alike to the ztunnel.
import * as k8s from '@kubernetes/client-node';
import type { Clock, TimerHandle } from '../core/clock.js';
import { AmbitError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { podKey, REDIRECTION_ANNOTATION, type AgentPod, type PodView } from '../model/node-pods.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import { httpStatusOf, InformerSet, messageOf } from './informers.js';
import type { KubeObject } from './kube-object.js';
import type { WatchedKind } from './watched-kinds.js';

export interface KubePodSourceOptions {
  kubeConfig: k8s.KubeConfig;
  node: string;
  /** The mesh's cluster id, the first part of workload uids (default Kubernetes, as Istio's). */
  clusterId?: string;
  logger: Logger;
  clock: Clock;
  metrics?: MetricsRegistry;
  backoff?: { initialMs: number; maxMs: number };
  watchTimeoutSeconds?: [number, number];
  /** Events within this window give one view (default 20 ms). */
  debounceMs?: number;
  /** How long refresh() waits for the first lists before it rejects (default 5 s). */
  syncTimeoutMs?: number;
}

/** The kinds the node agent watches: its node's pods and all namespaces. */
export function nodeAgentKinds(node: string): WatchedKind[] {
  return [
    { kind: 'Namespace', group: '', versions: ['v1'], plural: 'namespaces', namespaced: false, feeds: 'config' },
    { kind: 'Pod', group: '', versions: ['v1'], plural: 'pods', namespaced: true, feeds: 'config', fieldSelector: `spec.nodeName=${node}` },
  ];
}

/** The agent's view of one cached Pod, or why it has none (pure). */
export function agentPod(o: KubeObject, node: string, clusterId: string): AgentPod | { skip: string } {
  const spec = (o.spec ?? {}) as { nodeName?: string; serviceAccountName?: string; hostNetwork?: boolean };
  const status = (o.status ?? {}) as { podIP?: string; podIPs?: { ip: string }[]; phase?: string };
  if (spec.nodeName !== node) return { skip: `on node ${spec.nodeName ?? '(none)'}` };
  if (status.phase === 'Succeeded' || status.phase === 'Failed') return { skip: `terminal (${status.phase})` };
  if (spec.hostNetwork) return { skip: 'host network' };
  const ns = o.metadata.namespace ?? 'default';
  return {
    uid: `${clusterId}//Pod/${ns}/${o.metadata.name}`, namespace: ns, name: o.metadata.name, node,
    ip: status.podIP ?? status.podIPs?.[0]?.ip ?? '', serviceAccount: spec.serviceAccountName ?? 'default',
    labels: { ...o.metadata.labels }, annotations: { ...o.metadata.annotations }, waypointOf: null,
  };
}

export class KubePodSource {
  private readonly informers: InformerSet;
  private readonly api: k8s.CoreV1Api;
  private readonly clusterId: string;
  private onChange: ((view: PodView) => Promise<void>) | undefined;
  private view: PodView | undefined;
  private signature = '';
  private version = 0;
  private timer: TimerHandle | undefined;
  private startTimer: TimerHandle | undefined;
  private startFailures = 0;
  private started = false;
  private closed = false;
  private chain: Promise<unknown> = Promise.resolve();
  private queued: Promise<PodView | undefined> | undefined;
  private readonly syncWaiters = new Set<() => void>();

  constructor(private readonly opts: KubePodSourceOptions) {
    this.clusterId = opts.clusterId ?? 'Kubernetes';
    this.api = opts.kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.informers = new InformerSet({
      kubeConfig: opts.kubeConfig, kinds: nodeAgentKinds(opts.node), rootNamespace: '', logger: opts.logger, clock: opts.clock,
      metrics: opts.metrics, backoff: opts.backoff, watchTimeoutSeconds: opts.watchTimeoutSeconds,
      onChange: () => this.schedule(),
    });
  }

  current(): PodView | undefined {
    return this.view;
  }

  start(onChange: (view: PodView) => Promise<void>): void {
    this.onChange = onChange;
    void this.startInformers();
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.startTimer?.cancel();
    this.informers.close();
    for (const w of this.syncWaiters) w();
  }

  /** The view as the cache has it now (delivered first if it changed); rejects before the first lists. */
  async refresh(): Promise<PodView> {
    if (!this.synced()) await this.waitForSync();
    const view = await this.deliver();
    if (!view) throw this.notSynced();
    return view;
  }

  /** Istio's node agent marks a captured pod with a merge patch of this annotation (removed with null). */
  async setRedirection(pod: AgentPod, enabled: boolean): Promise<void> {
    try {
      await this.api.patchNamespacedPod(
        { name: pod.name, namespace: pod.namespace, body: { metadata: { annotations: { [REDIRECTION_ANNOTATION]: enabled ? 'enabled' : null } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      // The last view delivered no longer shows the pod as it is: deliver the next one even if
      // it equals that view (our change and someone undoing it may land in one window).
      this.signature = '';
    } catch (e: unknown) {
      if (!enabled && httpStatusOf(e) === 404) return; // the pod is gone: nothing to unmark
      throw new AmbitError('AMBIT_ERR_KUBERNETES', `PATCH pod ${podKey(pod.namespace, pod.name)}: ${messageOf(e)}`, { cause: e, hint: 'the node agent\'s ServiceAccount needs patch on pods' });
    }
  }

  private synced(): boolean {
    return this.started && this.informers.watching('Pod') && this.informers.watching('Namespace') && this.informers.synced();
  }

  private notSynced(): AmbitError {
    return new AmbitError('AMBIT_ERR_KUBERNETES', `the pods of node ${this.opts.node} are not listed from the Kubernetes API yet`, {
      hint: 'is the API server reachable, and may the node agent\'s ServiceAccount list and watch pods and namespaces?',
    });
  }

  private waitForSync(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = this.opts.clock.setTimeout(() => {
        this.syncWaiters.delete(done);
        reject(this.notSynced());
      }, this.opts.syncTimeoutMs ?? 5000);
      const done = () => {
        timer.cancel();
        this.syncWaiters.delete(done);
        resolve();
      };
      this.syncWaiters.add(done);
    });
  }

  /** Discovery (the first request) may fail while the API server is away: try again with back-off. */
  private async startInformers(): Promise<void> {
    if (this.closed) return;
    try {
      await this.informers.start();
      this.started = true;
      this.startFailures = 0;
      this.schedule();
    } catch (e: unknown) {
      const { initialMs, maxMs } = this.opts.backoff ?? { initialMs: 1000, maxMs: 30_000 };
      const delayMs = Math.min(maxMs, initialMs * 2 ** this.startFailures++);
      this.opts.logger.warn('cannot reach the Kubernetes API to watch this node\'s pods; retrying', { error: messageOf(e), retryInMs: delayMs });
      this.startTimer = this.opts.clock.setTimeout(() => void this.startInformers(), delayMs);
    }
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = undefined;
      void this.deliver();
    }, this.opts.debounceMs ?? 20);
  }

  /** Queues one delivery (shared with whoever asks before it runs). */
  private deliver(): Promise<PodView | undefined> {
    if (this.queued) return this.queued;
    const run = this.chain.then(() => {
      if (this.queued === run) this.queued = undefined;
      return this.deliverOnce();
    });
    this.queued = run;
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async deliverOnce(): Promise<PodView | undefined> {
    if (this.closed || !this.synced()) return this.view;
    for (const w of [...this.syncWaiters]) w();
    const { pods, namespaceLabels, signature } = this.build();
    if (signature === this.signature && this.view) return this.view;
    this.signature = signature;
    const view: PodView = { version: ++this.version, pods, namespaceLabels };
    this.view = view;
    try {
      await this.onChange?.(view);
    } catch (e: unknown) {
      this.opts.logger.warn('reconciling a new view of the node\'s pods failed', { error: messageOf(e) });
    }
    return view;
  }

  private build(): { pods: Map<string, AgentPod>; namespaceLabels: Map<string, Record<string, string>>; signature: string } {
    const pods = new Map<string, AgentPod>();
    for (const o of this.informers.list('Pod')) {
      const p = agentPod(o, this.opts.node, this.clusterId);
      if (!('skip' in p)) pods.set(podKey(p.namespace, p.name), p);
    }
    const namespaceLabels = new Map(this.informers.list('Namespace').map((n) => [n.metadata.name, { ...n.metadata.labels }]));
    const sorted = <T>(m: Map<string, T>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return { pods, namespaceLabels, signature: JSON.stringify([sorted(pods), sorted(namespaceLabels)]) };
  }
}
