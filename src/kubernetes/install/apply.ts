// `ambit install` and `ambit uninstall` against a cluster, through the client library:
// server-side apply (field manager ambit-install, force) of every object in order, waiting
// order; uninstall deletes them in reverse order (background propagation). No object of the
// install is of a kind its own CRDs define, so nothing waits for them to be established. Gateway API CRDs are a prerequisite, checked first, as Istio's docs ask.
import * as k8s from '@kubernetes/client-node';
import { AmbitError } from '../../core/errors.js';
import { messageOf } from '../informers.js';

export const INSTALL_FIELD_MANAGER = 'ambit-install';
const GATEWAY_API_HINT = 'install the Gateway API CRDs first (standard channel, v1.2 or newer), e.g. `kubectl apply -f standard-install.yaml` from the Gateway API release; Istio asks for the same';

export interface ApplyReport {
  applied: string[];
  skipped: string[];
}

function nameOf(o: k8s.KubernetesObject): string {
  return `${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`;
}

/** The Gateway API CRDs (Gateway, HTTPRoute at v1) are served, or an error that says what to do. */
export async function checkGatewayApi(kc: k8s.KubeConfig): Promise<void> {
  let groups: k8s.V1APIGroupList;
  try {
    groups = await kc.makeApiClient(k8s.ApisApi).getAPIVersions();
  } catch (e: unknown) {
    throw new AmbitError('AMBIT_ERR_KUBERNETES', `cannot reach the cluster: ${messageOf(e)}`, { hint: 'check --kubeconfig / --context' });
  }
  const gw = groups.groups.find((g) => g.name === 'gateway.networking.k8s.io');
  if (!gw || !gw.versions.some((v) => v.version === 'v1')) {
    throw new AmbitError('AMBIT_ERR_KUBERNETES', 'the Gateway API (gateway.networking.k8s.io/v1) is not installed in this cluster', { hint: GATEWAY_API_HINT });
  }
}

/** Server-side apply, in order (the namespace and CRDs come first in the list). */
export async function applyObjects(kc: k8s.KubeConfig, objects: readonly k8s.KubernetesObject[], log: (line: string) => void): Promise<ApplyReport> {
  const api = k8s.KubernetesObjectApi.makeApiClient(kc);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const report: ApplyReport = { applied: [], skipped: [] };
  for (const o of objects) {
    try {
      if (isWireOnly(o)) {
        // Sent as given: the typed serializer would drop the CRD schema's wire-form fields.
        const [group, version] = o.apiVersion!.split('/') as [string, string];
        await custom.patchClusterCustomObject(
          { group, version, plural: o.kind === 'GatewayClass' ? 'gatewayclasses' : 'customresourcedefinitions', name: o.metadata!.name!, body: o, fieldManager: INSTALL_FIELD_MANAGER, force: true },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply),
        );
      } else {
        await api.patch(o, undefined, undefined, INSTALL_FIELD_MANAGER, true, k8s.PatchStrategy.ServerSideApply);
      }
    } catch (e: unknown) {
      throw new AmbitError('AMBIT_ERR_KUBERNETES', `applying ${nameOf(o)} failed: ${describe(e)}`, { cause: e, hint: 'objects before it were applied; fix the cause and run `ambit install` again (it is idempotent)' });
    }
    report.applied.push(nameOf(o));
    log(`${nameOf(o)} applied\n`);
  }
  return report;
}

export async function deleteObjects(kc: k8s.KubeConfig, objects: readonly k8s.KubernetesObject[], log: (line: string) => void): Promise<ApplyReport> {
  const api = k8s.KubernetesObjectApi.makeApiClient(kc);
  const report: ApplyReport = { applied: [], skipped: [] };
  for (const o of [...objects].reverse()) {
    try {
      await api.delete(o, undefined, undefined, undefined, undefined, 'Background');
      report.applied.push(nameOf(o));
      log(`${nameOf(o)} deleted\n`);
    } catch (e: unknown) {
      if ((e as { code?: number }).code === 404) {
        report.skipped.push(nameOf(o));
        continue;
      }
      throw new AmbitError('AMBIT_ERR_KUBERNETES', `deleting ${nameOf(o)} failed: ${describe(e)}`, { cause: e });
    }
  }
  return report;
}

/** Objects applied as wire JSON: CRDs (their schema) and GatewayClass (no typed model). */
export function isWireOnly(o: k8s.KubernetesObject): boolean {
  return o.kind === 'CustomResourceDefinition' || o.kind === 'GatewayClass';
}

function describe(e: unknown): string {
  const body = (e as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      const s = JSON.parse(body) as { message?: string };
      if (s.message) return s.message;
    } catch {
      return body.slice(0, 300);
    }
  }
  if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
  return messageOf(e);
}
