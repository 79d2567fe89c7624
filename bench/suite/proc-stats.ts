// CPU seconds and memory of a process, from /proc (Linux). CPU = utime + stime of every thread
// (fields 14 and 15 of /proc/<pid>/stat, in clock ticks of 1/100 s on Linux).
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

export interface ProcSample {
  cpuSeconds: number;
  rssMiB: number;
  /** Peak RSS since the process started (VmHWM). */
  hwmMiB: number;
}

export function sampleProc(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number((new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status) ?? [])[1] ?? 0);
    return { cpuSeconds, rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or undefined when the process is gone (or a zombie). */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); field 22 is fields[19].
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
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
