// Who may get which certificate (design section 5): a node credential may obtain only the
// identities of workloads currently scheduled on that node (ImpersonatedIdentity). A pure
// decision over the mesh model, so it is tested without a CA.
import type { MeshModel } from '../model/mesh-model.js';

export type CaVerdict = { ok: true; identity: string } | { ok: false; status: 'PERMISSION_DENIED' | 'INVALID_ARGUMENT' | 'UNAUTHENTICATED'; reason: string };

export function authorizeCertificate(model: MeshModel, caller: { nodeId?: string }, requested: string | undefined): CaVerdict {
  if (!caller.nodeId) return { ok: false, status: 'UNAUTHENTICATED', reason: 'the caller presented no node credential' };
  if (!requested) return { ok: false, status: 'INVALID_ARGUMENT', reason: 'a ztunnel must name the workload identity it asks for (ImpersonatedIdentity)' };
  const workloads = model.workloadsWithIdentity(requested);
  if (workloads.length === 0) return { ok: false, status: 'PERMISSION_DENIED', reason: `no workload has identity ${requested}` };
  if (!workloads.some((w) => w.node === caller.nodeId)) {
    const where = [...new Set(workloads.map((w) => w.node))].join(', ');
    return { ok: false, status: 'PERMISSION_DENIED', reason: `node ${caller.nodeId} runs no workload with identity ${requested} (it runs on ${where})` };
  }
  return { ok: true, identity: requested };
}
