// What the node agent knows about each pod sandbox of its node, kept on disk so that a
// restarted agent finds the pods' network namespaces again (Istio's agent finds them by
// scanning /proc; a runtime's netns path from CNI ADD is the same fact, kept).
//
//   <dir>/<containerId>.json   { containerId, ifName, netns, namespace, name, ip, redirection }
//
// Invariants:
//  - One file per sandbox, written atomically (write + rename); a file that does not parse is
//    reported and ignored, never fatal.
//  - `redirection` is Istio's pod annotation `ambient.istio.io/redirection`: "enabled" while the
//    agent captures the pod; absent otherwise.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REDIRECTION_ANNOTATION } from '../model/node-pods.js';

export { REDIRECTION_ANNOTATION };

export interface PodRecord {
  containerId: string;
  ifName: string;
  /** Path of the pod's network namespace, as the runtime gave it (CNI_NETNS). */
  netns: string;
  namespace: string;
  name: string;
  ip: string;
  /** The workload uid (the ZDS uid) and service account, once captured. */
  uid?: string;
  serviceAccount?: string;
  /** 'enabled' while captured. */
  redirection?: 'enabled';
  /** Found by scanning namespaces (the pod existed before the agent), not told by CNI ADD. */
  discovered?: boolean;
}

const SAFE_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,200}$/;

export class PodRecords {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  save(r: PodRecord): void {
    if (!SAFE_ID.test(r.containerId)) throw new Error(`container id ${JSON.stringify(r.containerId)} cannot name a record`);
    const path = join(this.dir, `${r.containerId}.json`);
    writeFileSync(`${path}.tmp`, JSON.stringify(r) + '\n', { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
  }

  remove(containerId: string): void {
    if (!SAFE_ID.test(containerId)) return;
    rmSync(join(this.dir, `${containerId}.json`), { force: true });
  }

  /** Every record that parses; `bad` lists the files that do not. */
  load(): { records: PodRecord[]; bad: string[] } {
    const records: PodRecord[] = [];
    const bad: string[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        const r = JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as Partial<PodRecord>;
        if (typeof r.containerId !== 'string' || typeof r.netns !== 'string' || typeof r.namespace !== 'string' || typeof r.name !== 'string') throw new Error('missing fields');
        records.push({ ifName: 'eth0', ip: '', ...r } as PodRecord);
      } catch {
        bad.push(name);
      }
    }
    return { records, bad };
  }
}
