// CPU seconds and memory of a process, from /proc (Linux, read by src/sys/proc.ts). CPU = utime
// + stime of every thread.
import { CLOCK_TICKS_PER_SECOND, readProcMemory, readProcStat } from '../../src/sys/proc.js';

export interface ProcSample {
  cpuSeconds: number;
  rssMiB: number;
  /** Peak RSS since the process started (VmHWM). */
  hwmMiB: number;
}

export function sampleProc(pid: number): ProcSample | undefined {
  const stat = readProcStat(pid);
  const mem = stat && readProcMemory(pid);
  if (!stat || !mem) return undefined;
  return { cpuSeconds: (stat.utimeTicks + stat.stimeTicks) / CLOCK_TICKS_PER_SECOND, rssMiB: mem.rssKiB / 1024, hwmMiB: mem.hwmKiB / 1024 };
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or undefined when the process is gone (or a zombie). */
export function startTimeOf(pid: number): string | undefined {
  const stat = readProcStat(pid);
  return stat && stat.state !== 'Z' ? stat.startTime : undefined;
}

/** Sum of CPU seconds over pids (missing processes count 0). */
export function cpuOf(pids: readonly number[]): number {
  return pids.reduce((t, p) => t + (sampleProc(p)?.cpuSeconds ?? 0), 0);
}

export function rssOf(pids: readonly number[]): { rssMiB: number; hwmMiB: number; perProcess: Record<number, number> } {
  let rssMiB = 0;
  let hwmMiB = 0;
  const perProcess: Record<number, number> = {};
  for (const p of pids) {
    const s = sampleProc(p);
    if (!s) continue;
    rssMiB += s.rssMiB;
    hwmMiB += s.hwmMiB;
    perProcess[p] = s.rssMiB;
  }
  return { rssMiB, hwmMiB, perProcess };
}
