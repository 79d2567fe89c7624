// Summarizes V8 .cpuprofile files (node --cpu-prof): self time per function (name, file:line),
// summed over the files, largest first, as a share of busy time (idle and (program) left out). Enough to find hot spots without a flame-graph viewer.
import { readFileSync } from 'node:fs';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface HotSpot { fn: string; where: string; selfMs: number; selfPct: number }

const NOT_WORK = new Set(['(idle)', '(program)']);

export function summarizeProfiles(files: string[], top: number): HotSpot[] {
  const self = new Map<string, { fn: string; where: string; us: number }>();
  let total = 0;
  for (const f of files) {
    const p = JSON.parse(readFileSync(f, 'utf8')) as CpuProfile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const dt = p.timeDeltas[i] ?? 0;
      const n = byId.get(id);
      if (!n) return;
      const fn = n.callFrame.functionName || '(anonymous)';
      const url = n.callFrame.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/');
      const where = url ? `${url}:${n.callFrame.lineNumber + 1}` : '';
      if (NOT_WORK.has(fn)) return;
      const key = `${fn} ${where}`;
      const e = self.get(key) ?? { fn, where, us: 0 };
      e.us += dt;
      self.set(key, e);
      total += dt;
    });
  }
  return [...self.values()].sort((a, b) => b.us - a.us).slice(0, top)
    .map((e) => ({ fn: e.fn, where: e.where, selfMs: Math.round(e.us / 1000), selfPct: total ? Number(((e.us / total) * 100).toFixed(1)) : 0 }));
}

/** Self time per source file (node:internal/..., dist/src/...), as a share of busy time. */
export function summarizeByFile(files: string[], top: number): { file: string; selfMs: number; selfPct: number }[] {
  const spots = summarizeProfiles(files, Number.MAX_SAFE_INTEGER);
  const total = spots.reduce((t, s) => t + s.selfMs, 0);
  const by = new Map<string, number>();
  for (const s of spots) {
    const file = s.where.replace(/:\d+$/, '') || `(native) ${s.fn}`;
    by.set(file, (by.get(file) ?? 0) + s.selfMs);
  }
  return [...by.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([file, ms]) => ({ file, selfMs: ms, selfPct: total ? Number(((ms / total) * 100).toFixed(1)) : 0 }));
}
