// Events about objects Ambit skipped (core/v1 Events, which `kubectl describe` and
// `kubectl events` show). Best effort: a failed write is logged, never retried in a loop.
//
// Invariants:
// - One Event per object and problem text (the source reports only changes).
// - Event names are <object name>.<hex time>, as kubectl's recorder names them.
import * as k8s from '@kubernetes/client-node';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { errorsOf } from '../config/diagnostics.js';
import type { ObjectProblem, ProblemReporter } from './kube-config-source.js';
import { messageOf } from './informers.js';

export const EVENT_SOURCE = 'ambit-control-plane';
export const REASON_INVALID = 'InvalidConfig';

/** The Event for a skipped object (pure). */
export function invalidObjectEvent(p: ObjectProblem, nowMs: number): k8s.CoreV1Event {
  const o = p.object;
  const ns = o.metadata.namespace ?? 'default';
  const what = p.keptPrevious ? `Ambit ignored this change to the ${o.kind}; its previous version keeps serving` : `Ambit skipped this ${o.kind}`;
  const message = `${what}: ${errorsOf(p.diagnostics).map((d) => `${d.path ? `${d.path}: ` : ''}${d.message}`).join('; ')}`.slice(0, 1024);
  const when = new Date(nowMs);
  return {
    apiVersion: 'v1', kind: 'Event',
    metadata: { name: `${o.metadata.name}.${nowMs.toString(16)}`, namespace: ns },
    involvedObject: { apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name, namespace: o.metadata.namespace, uid: o.metadata.uid, resourceVersion: o.metadata.resourceVersion },
    reason: REASON_INVALID, message, type: 'Warning', count: 1,
    firstTimestamp: when, lastTimestamp: when,
    source: { component: EVENT_SOURCE },
    reportingComponent: EVENT_SOURCE, reportingInstance: process.env.HOSTNAME ?? EVENT_SOURCE,
  };
}

export class EventRecorder implements ProblemReporter {
  private readonly api: k8s.CoreV1Api;

  constructor(private readonly opts: { kubeConfig: k8s.KubeConfig; logger: Logger; clock: Clock }) {
    this.api = opts.kubeConfig.makeApiClient(k8s.CoreV1Api);
  }

  report(p: ObjectProblem): void {
    const body = invalidObjectEvent(p, this.opts.clock.now());
    this.api.createNamespacedEvent({ namespace: body.metadata!.namespace!, body }).catch((e: unknown) => {
      this.opts.logger.warn('could not write an Event', { object: `${p.object.kind} ${p.object.metadata.namespace}/${p.object.metadata.name}`, error: messageOf(e) });
    });
  }
}
