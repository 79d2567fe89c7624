// Notices that the ztunnel's code changed on disk (a rebuild, an upgrade), so the daemon can
// replace each node's ztunnel gracefully with one running the new code.
//
// Invariants:
//  - The fingerprint covers what a ztunnel process loads: the compiled rooms it imports
//    (core, sys, xds, identity, rbac, telemetry, hbone, ztunnel), its command module, the
//    native addon, and the .proto files; a content hash, so touching a file changes nothing.
//  - A change is reported once the new fingerprint held for two checks in a row (a build
//    writes files over some time; half a build is not an upgrade).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock, TimerHandle } from '../core/clock.js';

const ROOMS = ['core', 'sys', 'xds', 'identity', 'rbac', 'telemetry', 'hbone', 'ztunnel'];

function files(dir: string, out: string[]): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, out);
    else if (name.endsWith('.js') || name.endsWith('.node') || name.endsWith('.proto')) out.push(p);
  }
}

/** A hash of the code a ztunnel runs, from the package root (the directory holding dist/). */
export function ztunnelCodeFingerprint(root: string): string {
  const list: string[] = [];
  for (const room of ROOMS) files(join(root, 'dist', 'src', room), list);
  list.push(join(root, 'dist', 'src', 'cli', 'main.js'), join(root, 'dist', 'src', 'cli', 'commands', 'ztunnel.js'));
  files(join(root, 'native', 'build', 'Release'), list);
  files(join(root, 'proto'), list);
  const h = createHash('sha256');
  for (const f of list) {
    h.update(f);
    try {
      h.update(readFileSync(f));
    } catch {
      h.update('missing');
    }
  }
  return h.digest('hex');
}

export class CodeWatch {
  private timer: TimerHandle | undefined;
  private current: string;
  private candidate: string | undefined;
  private busy = false;

  constructor(private readonly opts: { root: string; clock: Clock; intervalMs?: number; onChange(): Promise<void> }) {
    this.current = ztunnelCodeFingerprint(opts.root);
  }

  start(): void {
    this.timer = this.opts.clock.setTimeout(() => void this.check(), this.opts.intervalMs ?? 3000);
  }

  close(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private async check(): Promise<void> {
    if (!this.timer) return;
    if (!this.busy) {
      const now = ztunnelCodeFingerprint(this.opts.root);
      if (now === this.current) this.candidate = undefined;
      else if (now !== this.candidate) this.candidate = now;
      else {
        this.current = now;
        this.candidate = undefined;
        this.busy = true;
        try {
          await this.opts.onChange();
        } finally {
          this.busy = false;
        }
      }
    }
    if (this.timer) this.timer = this.opts.clock.setTimeout(() => void this.check(), this.opts.intervalMs ?? 3000);
  }
}
