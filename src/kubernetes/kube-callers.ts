// Who may connect to xDS and the CA on Kubernetes, and which certificates they may get.
//
// - Every caller presents a projected service-account token (audience istio-ca) as
//   `authorization: Bearer`; a TokenReview names its service account and the pod it is bound
//   to; the pod must be in the cache with that uid (a token of a deleted pod is refused), and
//   the pod's spec.nodeName is the caller's node.
// - The ztunnel (its service account in the install namespace) acts for its node: it may get
//   the identity of a workload only while a pod with that identity runs on its node
//   (ImpersonatedIdentity), the same rule as the local cluster's node tokens.
// - Any other caller (a waypoint, a sidecar) may get only its own identity.
// Refusals say who asked for what; the control plane logs them and counts them.
import type { CaVerdict } from '../controlplane/ca-authorizer.js';
import { authorizeCertificate } from '../controlplane/ca-authorizer.js';
import type { CallerPolicy } from '../controlplane/control-plane.js';
import type { Caller, CallContext, AuthResult } from '../xds/call-auth.js';
import type { MeshModel } from '../model/mesh-model.js';
import type { InformerSet } from './informers.js';
import type { TokenReviewer } from './token-review.js';

export interface KubeCallerOptions {
  reviewer: TokenReviewer;
  informers: Pick<InformerSet, 'get'>;
  /** Namespace and service account of the ztunnel DaemonSet. */
  ztunnel: { namespace: string; serviceAccount: string };
  trustDomain: string;
}

export function kubernetesCallerPolicy(o: KubeCallerOptions): CallerPolicy {
  return {
    async authenticate(ctx: CallContext): Promise<AuthResult> {
      if (!ctx.bearerToken) return { ok: false, message: 'no service-account token (authorization: Bearer <projected token, audience istio-ca>)' };
      const r = await o.reviewer.review(ctx.bearerToken);
      if (!r.ok) return { ok: false, message: r.reason };
      const t = r.token;
      const who = `${t.namespace}/${t.serviceAccount}`;
      if (!t.pod) return { ok: false, message: `the token of ${who} is not bound to a pod; use a projected service-account token` };
      const pod = o.informers.get('Pod', t.namespace, t.pod.name);
      if (!pod || pod.metadata.uid !== t.pod.uid) return { ok: false, message: `the token of ${who} is bound to pod ${t.namespace}/${t.pod.name} (uid ${t.pod.uid}), which does not exist` };
      const node = (pod.spec as { nodeName?: string } | undefined)?.nodeName;
      if (!node) return { ok: false, message: `pod ${t.namespace}/${t.pod.name} is not scheduled on a node` };
      const isZtunnel = t.namespace === o.ztunnel.namespace && t.serviceAccount === o.ztunnel.serviceAccount;
      const caller: Caller = {
        nodeId: node,
        identity: `spiffe://${o.trustDomain}/ns/${t.namespace}/sa/${t.serviceAccount}`,
        attributes: { serviceAccount: who, pod: `${t.namespace}/${t.pod.name}`, role: isZtunnel ? 'ztunnel' : 'proxy' },
      };
      return { ok: true, caller };
    },
    authorizeCertificate(model: MeshModel, caller: Caller, requested: string | undefined): CaVerdict {
      if (!caller.identity || !caller.attributes) return { ok: false, status: 'UNAUTHENTICATED', reason: 'the caller presented no service-account token' };
      const who = `${caller.attributes.serviceAccount} (pod ${caller.attributes.pod} on node ${caller.nodeId})`;
      if (caller.attributes.role === 'ztunnel') {
        const v = authorizeCertificate(model, caller, requested);
        return v.ok ? v : { ...v, reason: `ztunnel ${who}: ${v.reason}` };
      }
      if (requested !== undefined && requested !== caller.identity) {
        return { ok: false, status: 'PERMISSION_DENIED', reason: `${who} may obtain only its own identity ${caller.identity}, not ${requested}` };
      }
      return { ok: true, identity: caller.identity };
    },
  };
}
