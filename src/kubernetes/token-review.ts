// Checks a projected service-account token with the API server (TokenReview), as Istio's CA
// does: audience istio-ca, the answer names the service account and, for a pod-bound token,
// the pod (user.extra authentication.kubernetes.io/pod-name and pod-uid).
//
// Invariants:
// - A verdict is cached by the token's SHA-256 for at most cacheMs (and never past a failure's
//   retry): a proxy reconnecting does not cost a TokenReview each time. The cache is bounded.
// - An API failure is "cannot verify", never "verified".
import { createHash } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { Clock } from '../core/clock.js';
import { messageOf } from './informers.js';

export const EXTRA_POD_NAME = 'authentication.kubernetes.io/pod-name';
export const EXTRA_POD_UID = 'authentication.kubernetes.io/pod-uid';
export const EXTRA_NODE_NAME = 'authentication.kubernetes.io/node-name';

export interface ReviewedToken {
  namespace: string;
  serviceAccount: string;
  pod?: { name: string; uid: string };
  /** Set by API servers that bind node info into tokens (Kubernetes 1.32+); informational. */
  node?: string;
}

export type Review = { ok: true; token: ReviewedToken } | { ok: false; reason: string; unavailable?: boolean };

export interface TokenReviewer {
  review(token: string): Promise<Review>;
}

/** A TokenReview's status (pure), as the API server answers it. */
export function readReview(status: k8s.V1TokenReviewStatus | undefined, audience: string): Review {
  if (!status?.authenticated) return { ok: false, reason: `token rejected by the API server: ${status?.error ?? 'not authenticated'}` };
  if (status.audiences && !status.audiences.includes(audience)) return { ok: false, reason: `token is not for audience ${audience}` };
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(status.user?.username ?? '');
  if (!m) return { ok: false, reason: `token of ${status.user?.username ?? 'nobody'} is not a service account's` };
  const extra = status.user?.extra ?? {};
  const podName = extra[EXTRA_POD_NAME]?.[0];
  const podUid = extra[EXTRA_POD_UID]?.[0];
  return {
    ok: true,
    token: { namespace: m[1]!, serviceAccount: m[2]!, ...(podName && podUid ? { pod: { name: podName, uid: podUid } } : {}), ...(extra[EXTRA_NODE_NAME]?.[0] ? { node: extra[EXTRA_NODE_NAME][0] } : {}) },
  };
}

export class KubeTokenReviewer implements TokenReviewer {
  private readonly api: k8s.AuthenticationV1Api;
  private readonly cache = new Map<string, { atMs: number; review: Review }>();

  constructor(private readonly opts: { kubeConfig: k8s.KubeConfig; clock: Clock; audience?: string; cacheMs?: number; maxEntries?: number }) {
    this.api = opts.kubeConfig.makeApiClient(k8s.AuthenticationV1Api);
  }

  async review(token: string): Promise<Review> {
    const key = createHash('sha256').update(token).digest('base64url');
    const now = this.opts.clock.now();
    const hit = this.cache.get(key);
    if (hit && now - hit.atMs < (this.opts.cacheMs ?? 60_000)) return hit.review;
    const audience = this.opts.audience ?? 'istio-ca';
    let review: Review;
    try {
      const r = await this.api.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [audience] } } });
      review = readReview(r.status, audience);
    } catch (e: unknown) {
      return { ok: false, unavailable: true, reason: `cannot verify the token: the TokenReview failed (${messageOf(e)})` };
    }
    if (this.cache.size >= (this.opts.maxEntries ?? 10_000)) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, { atMs: now, review });
    return review;
  }
}
