// How the control plane reaches the Kubernetes API: in-cluster (the pod's service-account
// token and CA, KUBERNETES_SERVICE_HOST/PORT) by default, or a kubeconfig file.
import * as k8s from '@kubernetes/client-node';
import { AmbitError } from '../core/errors.js';

export interface KubeAccess {
  /** A kubeconfig file; absent: in-cluster config. */
  kubeconfig?: string;
  /** A kubeconfig's text (tests). */
  kubeconfigText?: string;
  context?: string;
}

export function loadKubeConfig(access: KubeAccess = {}): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  try {
    if (access.kubeconfigText !== undefined) kc.loadFromString(access.kubeconfigText);
    else if (access.kubeconfig) kc.loadFromFile(access.kubeconfig);
    else {
      if (!process.env.KUBERNETES_SERVICE_HOST) {
        throw new AmbitError('AMBIT_ERR_KUBERNETES', 'not running inside a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set)', { hint: 'pass --kubeconfig FILE to reach a cluster from outside' });
      }
      kc.loadFromCluster();
    }
    if (access.context) kc.setCurrentContext(access.context);
  } catch (e: unknown) {
    if (e instanceof AmbitError) throw e;
    throw new AmbitError('AMBIT_ERR_KUBERNETES', `cannot load the Kubernetes client config: ${e instanceof Error ? e.message : String(e)}`, { cause: e, hint: 'check --kubeconfig (or KUBECONFIG) and --context' });
  }
  if (!kc.getCurrentCluster()) throw new AmbitError('AMBIT_ERR_KUBERNETES', 'the kubeconfig names no current cluster', { hint: 'set current-context, or pass --context' });
  return kc;
}
