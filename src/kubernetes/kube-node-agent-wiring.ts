// What `ambit node-agent --kubernetes` builds from its command-line values: the client config
// (in-cluster unless a kubeconfig is given) and the pod source of its node.
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { loadKubeConfig, type KubeAccess } from './kube-client.js';
import { KubePodSource } from './kube-pod-source.js';

export function kubePodSource(o: { access: KubeAccess; node: string; clusterId?: string; logger: Logger; clock: Clock }): KubePodSource {
  return new KubePodSource({ kubeConfig: loadKubeConfig(o.access), node: o.node, clusterId: o.clusterId, logger: o.logger.child({ scope: 'kubernetes' }), clock: o.clock });
}
