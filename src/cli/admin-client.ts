// The CLI's client for the control plane's admin API (port 15014).
import { readFileSync } from 'node:fs';
import { AmbitError } from '../core/errors.js';
import { stateDirFrom, statePaths } from '../cluster/state-dir.js';

export const DEFAULT_CONTROL_PLANE = 'http://127.0.0.1:15014';

/** Where the control plane's admin API is, and the token it wants. */
export interface ControlPlaneTarget {
  url: string;
  token: string | undefined;
}

/** --control-plane, else $AMBIT_CONTROL_PLANE, else the local cluster's (state dir), else the default; with the admin token. */
export function controlPlaneUrl(flag: string | undefined, env: NodeJS.ProcessEnv): ControlPlaneTarget {
  return { url: controlPlaneAddress(flag, env), token: adminToken(env) };
}

function controlPlaneAddress(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  let fromCluster: string | undefined;
  try {
    const spec = JSON.parse(readFileSync(statePaths(stateDirFrom(undefined, env)).spec, 'utf8')) as { adminAddress?: string };
    if (spec.adminAddress) fromCluster = `http://${spec.adminAddress}`;
  } catch {
    // no local cluster
  }
  return (flag ?? env.AMBIT_CONTROL_PLANE ?? fromCluster ?? DEFAULT_CONTROL_PLANE).replace(/\/$/, '');
}

/**
 * The admin API's bearer token: $AMBIT_ADMIN_TOKEN, else the local cluster's (state dir,
 * readable by root only). Undefined when neither is there (the control plane then answers 401).
 */
export function adminToken(env: NodeJS.ProcessEnv): string | undefined {
  if (env.AMBIT_ADMIN_TOKEN) return env.AMBIT_ADMIN_TOKEN.trim();
  try {
    return readFileSync(statePaths(stateDirFrom(undefined, env)).adminToken, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export async function callControlPlane<T>(target: ControlPlaneTarget, path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; json: T }> {
  let res: Response;
  const { url: base, token } = target;
  try {
    res = await fetch(`${base}${path}`, {
      method: init.method ?? 'GET', body: init.body, signal: AbortSignal.timeout(15_000),
      headers: { ...init.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });
  } catch (e: unknown) {
    throw new AmbitError('AMBIT_ERR_CONNECT', `cannot reach the control plane at ${base}`, {
      cause: e,
      hint: 'is the cluster up (`ambit status`)? set --control-plane URL or AMBIT_CONTROL_PLANE if it runs elsewhere',
    });
  }
  const text = await res.text();
  if (res.status === 401) {
    throw new AmbitError('AMBIT_ERR_PERMISSION', `the control plane at ${base} wants its admin token`, {
      hint: token ? 'the token sent was refused: is AMBIT_ADMIN_TOKEN (or AMBIT_STATE_DIR) the right cluster\'s?' : 'run as root on the cluster\'s machine (the token is in the state directory), or set AMBIT_ADMIN_TOKEN',
    });
  }
  try {
    return { status: res.status, json: JSON.parse(text) as T };
  } catch {
    throw new AmbitError('AMBIT_ERR_INTERNAL', `unexpected answer from ${base}${path} (HTTP ${res.status}): ${text.slice(0, 200)}`);
  }
}
