// A process as Linux's /proc shows it: /proc/<pid>/stat, /proc/<pid>/status, /proc/<pid>/cmdline.
//
// Invariants:
// - The command name (field 2 of stat) is in parentheses and may itself hold spaces and
//   parentheses; the fields after it never do, so they are split after the LAST ')'.
//   Splitting the whole line on spaces breaks on a name such as `(my app)`.
// - Field numbers in comments are proc(5)'s, 1-based: state 3, ppid 4, pgrp 5, utime 14,
//   stime 15, starttime 22 (clock ticks since boot; with the pid it names one process for
//   good, as a pid alone can be reused).
// - Readers return undefined when the process is gone (or /proc is not there); parsers are
//   pure and return undefined for text that is not a stat line.
import { readFileSync } from 'node:fs';

/** Clock ticks per second of utime/stime (USER_HZ, 100 on every Linux Ambit runs on). */
export const CLOCK_TICKS_PER_SECOND = 100;

export interface ProcStat {
  pid: number;
  /** The command name, without its parentheses. */
  comm: string;
  /** R, S, D, Z (zombie), T, ... */
  state: string;
  ppid: number;
  pgrp: number;
  /** User and system CPU time of every thread, in clock ticks. */
  utimeTicks: number;
  stimeTicks: number;
  /** Start time in clock ticks since boot, as the decimal text of field 22. */
  startTime: string;
}

/** Parses one /proc/<pid>/stat line (pure). */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf(' (');
  const close = text.lastIndexOf(')');
  if (open <= 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open));
  const rest = text.slice(close + 2).trim().split(' ');
  // rest[0] is field 3.
  if (!Number.isInteger(pid) || rest.length < 20) return undefined;
  return {
    pid,
    comm: text.slice(open + 2, close),
    state: rest[0]!,
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
    utimeTicks: Number(rest[11]),
    stimeTicks: Number(rest[12]),
    startTime: rest[19]!,
  };
}

/** /proc/<pid>/stat of a process; undefined when it is gone. */
export function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** True while the process exists and is not a zombie. */
export function isProcessAlive(pid: number): boolean {
  const st = readProcStat(pid);
  return st !== undefined && st.state !== 'Z';
}

export interface ProcMemory {
  /** Resident set size now (VmRSS), and its peak since the process started (VmHWM), in KiB. */
  rssKiB: number;
  hwmKiB: number;
}

/** The memory lines of /proc/<pid>/status (pure). */
export function parseProcStatus(text: string): ProcMemory {
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}

export function readProcMemory(pid: number): ProcMemory | undefined {
  try {
    return parseProcStatus(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The argv of a process (NUL-separated in /proc/<pid>/cmdline); undefined when it is gone. */
export function readCmdline(pid: number): string[] | undefined {
  try {
    const parts = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (parts[parts.length - 1] === '') parts.pop();
    return parts;
  } catch {
    return undefined;
  }
}
