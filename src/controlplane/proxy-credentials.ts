// Per-proxy credentials for the local cluster: each waypoint replica and each sidecar gets a
// bearer token bound to its pod, so that the CA gives it only that pod's identity — a
// compromised waypoint cannot obtain the certificates of the other workloads of its node, as
// it could with the node's credential.
//
// Invariants:
// - A token is `ambit-proxy.v1.<namespace>.<pod>.<mac>`, the MAC an HMAC-SHA256 of the pod's
//   `namespace/name` under the cluster's proxy key (random, 32 bytes, a 0600 file in the state
//   dir). The control plane verifies it without a list of tokens; whoever mints one must hold
//   the key (the cluster daemon).
// - Verification is in constant time over the MAC; a malformed token is simply not a proxy token.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { AmbitError } from '../core/errors.js';

const PREFIX = 'ambit-proxy.v1.';
const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export interface ProxyPod {
  namespace: string;
  name: string;
}

export function newProxyKey(): Buffer {
  return randomBytes(32);
}

export async function saveProxyKey(path: string, key: Buffer): Promise<void> {
  await writeFile(path, key.toString('base64') + '\n', { mode: 0o600 });
}

export async function loadProxyKey(path: string): Promise<Buffer> {
  try {
    const key = Buffer.from((await readFile(path, 'utf8')).trim(), 'base64');
    if (key.length < 32) throw new Error('shorter than 32 bytes');
    return key;
  } catch (e: unknown) {
    throw new AmbitError('AMBIT_ERR_CONFIG_READ', `cannot read the proxy credential key ${path}`, { cause: e, hint: 'it is made by `ambit up`; is the state directory right?' });
  }
}

function mac(key: Buffer, pod: ProxyPod): Buffer {
  return createHmac('sha256', key).update(`${pod.namespace}/${pod.name}`).digest();
}

export function mintProxyToken(key: Buffer, pod: ProxyPod): string {
  return `${PREFIX}${pod.namespace}.${pod.name}.${mac(key, pod).toString('base64url')}`;
}

/** The pod a proxy token belongs to, when it is one and its MAC is right. */
export function proxyForToken(key: Buffer, token: string | undefined): ProxyPod | undefined {
  if (!token?.startsWith(PREFIX)) return undefined;
  const parts = token.slice(PREFIX.length).split('.');
  if (parts.length < 3) return undefined;
  const given = Buffer.from(parts.pop()!, 'base64url');
  const namespace = parts.shift()!;
  const name = parts.join('.');
  if (!NAME.test(namespace) || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) return undefined;
  const want = mac(key, { namespace, name });
  return given.length === want.length && timingSafeEqual(given, want) ? { namespace, name } : undefined;
}
