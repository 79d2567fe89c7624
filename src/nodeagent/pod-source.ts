// Where the node agent learns the pods of its node and their namespaces' labels (a pod
// source), and the source the local cluster uses: the control plane's admin API
// (`GET /api/status`), which plays the Kubernetes API server's part there and is polled. On
// Kubernetes the source is Pod and Namespace informers (kubernetes/kube-pod-source.ts), as
// Istio's node agent does it.
//
// Invariants of every pod source:
//  - current() is the last view delivered (undefined before the first); a failure keeps it.
//    The view changes only as a whole.
//  - The onChange given to start() runs after each change of the view, one at a time (the
//    next waits for it), so the agent reconciles against a steady view.
//  - refresh() gives the freshest view it can now (an ADD for a pod the last view does not
//    know yet); concurrent callers share one; it rejects when the source cannot answer.
// Of the admin API source: a failed fetch is retried at the next tick (intervalMs).
import type { Clock, TimerHandle } from '../core/clock.js';
import { AmbitError, describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { dataplaneMode } from '../model/enrolment.js';
import { podKey, type AgentPod, type PodView } from '../model/node-pods.js';

export { podKey, type AgentPod, type PodView };

/** What the node agent depends on to know its node's pods. */
export interface PodSource {
  current(): PodView | undefined;
  /** Begins delivering views to onChange (serially). */
  start(onChange: (view: PodView) => Promise<void>): void;
  refresh(): Promise<PodView>;
  close(): void;
  /**
   * Records on the pod itself whether its traffic is redirected (Istio's pod annotation
   * `ambient.istio.io/redirection`), where the source can write pods (Kubernetes). Absent:
   * the agent's own records are where it shows (the local cluster).
   */
  setRedirection?(pod: AgentPod, enabled: boolean): Promise<void>;
}

export interface PodSourceOptions {
  /** The control plane's admin URL, e.g. http://127.0.0.1:15014. */
  url: string;
  /** Bearer token of the admin API (read when a request is made: it may be rotated). */
  token?: () => string;
  node: string;
  clock: Clock;
  logger: Logger;
  intervalMs?: number;
}

interface StatusBody {
  version: number;
  workloads: Array<Partial<AgentPod> & { namespace: string; name: string; node: string }>;
  namespaces?: Array<{ name: string; labels: Record<string, string> }>;
}

/** Whether the node agent captures this pod: the data plane mode the control plane computes. */
export function wantsCapture(view: PodView, pod: AgentPod): boolean {
  return dataplaneMode(pod, view.namespaceLabels.get(pod.namespace) ?? {}) === 'ambient';
}

export class AdminPodSource implements PodSource {
  private onChange: ((view: PodView) => Promise<void>) | undefined;
  private view: PodView | undefined;
  private timer: TimerHandle | undefined;
  private inflight: Promise<PodView> | undefined;
  private closed = false;
  private lastError = '';

  constructor(private readonly opts: PodSourceOptions) {}

  current(): PodView | undefined {
    return this.view;
  }

  start(onChange: (view: PodView) => Promise<void>): void {
    this.onChange = onChange;
    this.tick();
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
  }

  /** Fetches the view now (shared by concurrent callers); rejects when the control plane is unreachable. */
  refresh(): Promise<PodView> {
    this.inflight ??= this.fetchView().finally(() => { this.inflight = undefined; });
    return this.inflight;
  }

  private tick(): void {
    if (this.closed) return;
    void this.refresh()
      .then(() => { this.lastError = ''; })
      .catch((e: unknown) => {
        const message = describeError(e).message;
        if (message !== this.lastError) this.opts.logger.warn('cannot read the pods from the control plane; retrying', { error: message });
        this.lastError = message;
      })
      .finally(() => {
        if (!this.closed) this.timer = this.opts.clock.setTimeout(() => this.tick(), this.opts.intervalMs ?? 500);
      });
  }

  private async fetchView(): Promise<PodView> {
    let body: StatusBody;
    try {
      const token = this.opts.token?.();
      const res = await fetch(`${this.opts.url}/api/status`, { signal: AbortSignal.timeout(5000), headers: token ? { authorization: `Bearer ${token}` } : {} });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      body = (await res.json()) as StatusBody;
    } catch (e: unknown) {
      throw new AmbitError('AMBIT_ERR_CONNECT', `GET ${this.opts.url}/api/status: ${describeError(e).message}`, { cause: e, hint: 'is the control plane running?' });
    }
    const pods = new Map<string, AgentPod>();
    for (const w of body.workloads ?? []) {
      if (w.node !== this.opts.node) continue;
      pods.set(podKey(w.namespace, w.name), {
        uid: w.uid ?? `Kubernetes//Pod/${w.namespace}/${w.name}`, namespace: w.namespace, name: w.name, node: w.node, ip: w.ip ?? '',
        serviceAccount: w.serviceAccount ?? 'default', labels: w.labels ?? {}, annotations: w.annotations ?? {}, waypointOf: w.waypointOf ?? null,
      });
    }
    const view: PodView = { version: body.version, pods, namespaceLabels: new Map((body.namespaces ?? []).map((n) => [n.name, n.labels ?? {}])) };
    const changed = this.view?.version !== view.version;
    this.view = view;
    if (changed && this.onChange) await this.onChange(view);
    return view;
  }
}
