// Per-node credentials for the local cluster: one random bearer token per node, issued when
// the cluster is created and stored with mode 0600 in the cluster's state directory. A
// ztunnel presents its node's token on the xDS and CA streams; the control plane maps it
// back to the node. (On Kubernetes the same place is taken by service-account tokens.)
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { AmbitError } from '../core/errors.js';

export type NodeTokens = Record<string, string>;

export function issueNodeTokens(nodes: readonly string[]): NodeTokens {
  return Object.fromEntries(nodes.map((n) => [n, randomBytes(24).toString('base64url')]));
}

export async function saveNodeTokens(path: string, tokens: NodeTokens): Promise<void> {
  await writeFile(path, JSON.stringify(tokens, null, 2) + '\n', { mode: 0o600 });
}

export async function loadNodeTokens(path: string): Promise<NodeTokens> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as NodeTokens;
  } catch (e: unknown) {
    throw new AmbitError('AMBIT_ERR_CONFIG_READ', `cannot read node credentials ${path}`, { cause: e, hint: 'they are made by `ambit up`; is the state directory right?' });
  }
}

/** The node a token belongs to, compared in constant time. */
export function nodeForToken(tokens: NodeTokens, token: string | undefined): string | undefined {
  if (!token) return undefined;
  const given = Buffer.from(token);
  for (const [node, t] of Object.entries(tokens)) {
    const want = Buffer.from(t);
    if (want.length === given.length && timingSafeEqual(want, given)) return node;
  }
  return undefined;
}
