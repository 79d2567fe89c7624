// A static config source: a file holding the workload API as `ambit x workload-api` prints
// it ({workloads, services, authorizations}, YAML or JSON). Watched: a change is loaded and
// applied; a broken file is reported and the last good state keeps serving.
import { systemClock, type TimerHandle } from '../core/clock.js';
import { readFile } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { parse } from 'yaml';
import { AmbitError, describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Authorization, Service, Workload } from '../xds/workload-api.js';
import { MeshView, type WorkloadApiSnapshot } from '../dataplane/mesh-view.js';

export async function loadStaticState(path: string, version: string): Promise<MeshView> {
  let raw: unknown;
  try {
    raw = parse(await readFile(path, 'utf8'));
  } catch (e: unknown) {
    throw new AmbitError('AMBIT_ERR_CONFIG_READ', `cannot read workload API file ${path}: ${describeError(e).message}`, {
      hint: 'produce one with `ambit x workload-api -f <config> -o yaml > FILE`',
    });
  }
  return new MeshView(checkSnapshot(raw, path), version);
}

function checkSnapshot(raw: unknown, path: string): WorkloadApiSnapshot {
  const o = (raw ?? {}) as Record<string, unknown>;
  const list = <T>(k: string, required: string[]): T[] => {
    const v = o[k] ?? [];
    if (!Array.isArray(v)) throw new AmbitError('AMBIT_ERR_CONFIG_INVALID', `${path}: "${k}" must be a list`);
    v.forEach((item, i) => {
      for (const f of required) {
        if (!item || typeof item !== 'object' || !(f in item)) {
          throw new AmbitError('AMBIT_ERR_CONFIG_INVALID', `${path}: ${k}[${i}] has no "${f}"`, { hint: 'is this the output of `ambit x workload-api`?' });
        }
      }
    });
    return v as T[];
  };
  return {
    workloads: list<Workload>('workloads', ['uid', 'name', 'namespace', 'addresses', 'node', 'tunnelProtocol', 'serviceAccount']).map((w) => ({ ...w, services: w.services ?? {}, authorizationPolicies: w.authorizationPolicies ?? [] })),
    services: list<Service>('services', ['name', 'namespace', 'hostname', 'addresses', 'ports']),
    authorizations: list<Authorization>('authorizations', ['name', 'namespace', 'scope', 'action', 'rules']),
  };
}

/** Watch the file; call `apply` with each good new state. Returns a stop function. */
export function watchStaticState(path: string, logger: Logger, apply: (s: MeshView) => void): () => void {
  let version = 1;
  let timer: TimerHandle | undefined;
  let watcher: FSWatcher | undefined;
  const reload = () => {
    version++;
    loadStaticState(path, String(version)).then((s) => {
      logger.info('workload API file reloaded', { path, version, workloads: s.workloads.size });
      apply(s);
    }, (e: unknown) => logger.error('workload API file is broken; keeping the last good config', { path, error: describeError(e).message }));
  };
  try {
    watcher = watch(path, () => {
      timer?.cancel();
      timer = systemClock.setTimeout(reload, 100);
    });
  } catch (e: unknown) {
    logger.warn('cannot watch the workload API file; changes need a restart', { path, error: describeError(e).message });
  }
  return () => {
    timer?.cancel();
    watcher?.close();
  };
}
