// Summarizes V8 .cpuprofile files (node --cpu-prof): self time per function (name, file:line),
// summed over the files, largest first. Enough to find hot spots without a flame-graph viewer.
import { readFileSync } from 'node:fs';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface HotSpot { fn: string; where: string; selfMs: number; selfPct: number }

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
