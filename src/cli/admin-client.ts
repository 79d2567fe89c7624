// The CLI's client for the control plane's admin API (port 15014).
import { readFileSync } from 'node:fs';
import { AmbitError } from '../core/errors.js';
import { stateDirFrom, statePaths } from '../cluster/state-dir.js';

export const DEFAULT_CONTROL_PLANE = 'http://127.0.0.1:15014';

/** --control-plane, else $AMBIT_CONTROL_PLANE, else the local cluster's (state dir), else the default. */
export function controlPlaneUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  let fromCluster: string | undefined;
  try {
    const spec = JSON.parse(readFileSync(statePaths(stateDirFrom(undefined, env)).spec, 'utf8')) as { adminAddress?: string };
    if (spec.adminAddress) fromCluster = `http://${spec.adminAddress}`;
  } catch {
    // no local cluster
  }
  return (flag ?? env.AMBIT_CONTROL_PLANE ?? fromCluster ?? DEFAULT_CONTROL_PLANE).replace(/\/$/, '');
}

export async function callControlPlane<T>(base: string, path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; json: T }> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, { method: init.method ?? 'GET', body: init.body, headers: init.headers, signal: AbortSignal.timeout(15_000) });
  } catch (e: unknown) {
    throw new AmbitError('AMBIT_ERR_CONNECT', `cannot reach the control plane at ${base}`, {
      cause: e,
      hint: 'is the cluster up (`ambit status`)? set --control-plane URL or AMBIT_CONTROL_PLANE if it runs elsewhere',
    });
  }
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) as T };
  } catch {
    throw new AmbitError('AMBIT_ERR_INTERNAL', `unexpected answer from ${base}${path} (HTTP ${res.status}): ${text.slice(0, 200)}`);
  }
}
