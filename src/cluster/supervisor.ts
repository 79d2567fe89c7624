// Runs the local cluster's processes (control plane, ztunnels, waypoints, pod containers) and
// keeps them alive.
//
// Invariants:
//  - A process is started as `ip netns exec <netns> <command> <args...>` when it has a netns
//    (ip execs the command after entering the namespace, so the PID is the command's), in a
//    new session and process group of its own (PGID = PID), with stdout and stderr appended to
//    its log file (the supervisor adds one line per start and exit).
//  - Signals go to the process group, by number: never by name. stop() sends SIGTERM, then
//    SIGKILL after the grace period; once the leader is gone, members of its group that
//    outlived it are killed too.
//  - Restart: 'always' restarts after any exit, 'on-failure' after a non-zero exit or a death
//    by signal, 'never' never; stop() is never followed by a restart. The delay doubles with
//    each consecutive quick exit (initialMs, 2x, 4x ... up to maxMs) and falls back to
//    initialMs once the process stayed up resetAfterMs.
//  - replace() starts a successor beside a running process, and only once the successor is
//    ready stops the old one (SIGTERM, SIGKILL after its drain time) without a restart; the
//    old one's PID file becomes <name>.retired-<pid>.pid until it exits, so `ambit down`
//    still finds it. A successor that is not ready in time is killed and the old one stays.
//  - Each running process has a PID file <stateDir>/pids/<name>.pid (JSON: pid, start time in
//    clock ticks since boot, argv, netns, log file), written atomically (rename) after start,
//    removed on exit. killFromPidFiles() uses them when the supervisor itself is gone, and kills
//    a PID only if its start time still matches (the PID was not reused) and its command line
//    still ends with the recorded argv (an interpreter may be prepended by a #! line).
import { sleep, systemClock, type TimerHandle } from '../core/clock.js';
import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { sandboxArgv, sandboxEnv, type PodSandbox } from './pod-sandbox.js';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AmbitError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { readCmdline, readProcStat } from '../sys/proc.js';

export type RestartPolicy = 'always' | 'on-failure' | 'never';

export interface Backoff {
  /** First restart delay; default 200 ms. */
  initialMs?: number;
  /** Cap of the doubling delay; default 30 s. */
  maxMs?: number;
  /** Up this long, a process counts as healthy and the delay starts over; default 10 s. */
  resetAfterMs?: number;
}

export interface ProcessSpec {
  /** Unique; letters, digits, '.', '_', '-' (it names the PID file). */
  name: string;
  command: string;
  args?: readonly string[];
  /** Added to this process's environment (or the whole environment with inheritEnv: false). */
  env?: Record<string, string>;
  inheritEnv?: boolean;
  /** Network namespace to run in (`ip netns exec`); absent = this process's namespace. */
  netns?: string;
  /** Run as a pod's process (user, capabilities, hidden paths, own environment only); needs `netns`. */
  sandbox?: PodSandbox;
  cwd?: string;
  logFile: string;
  restart: RestartPolicy;
  backoff?: Backoff;
}

export type ProcessState = 'running' | 'backoff' | 'stopping' | 'stopped' | 'exited' | 'failed';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
  uptimeMs: number;
}

export interface ProcessStatus {
  name: string;
  state: ProcessState;
  pid: number | undefined;
  /** Restarts done so far (the first start is not one). */
  restarts: number;
  startedAt: number | undefined;
  lastExit: ExitInfo | undefined;
  /** When state is 'backoff': the delay chosen before the next start. */
  nextDelayMs: number | undefined;
  netns: string | undefined;
  logFile: string;
}

export type SupervisorEvent =
  | { type: 'start'; name: string; pid: number; attempt: number }
  | { type: 'exit'; name: string; pid: number; code: number | null; signal: NodeJS.Signals | null; uptimeMs: number }
  | { type: 'restart-scheduled'; name: string; delayMs: number }
  | { type: 'spawn-error'; name: string; error: string }
  | { type: 'stopped'; name: string };

export interface SupervisorOptions {
  /** Holds pids/<name>.pid. */
  stateDir: string;
  logger?: Logger;
  /** Called for every start, exit, scheduled restart and stop (tests count them). */
  onEvent?: (event: SupervisorEvent) => void;
}

export interface PidRecord {
  name: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. */
  startTime: string;
  argv: string[];
  netns?: string;
  logFile: string;
  startedAt: string;
  supervisorPid: number;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$/;

export function pidDir(stateDir: string): string {
  return join(stateDir, 'pids');
}

export function pidFilePath(stateDir: string, name: string): string {
  return join(pidDir(stateDir), `${name}.pid`);
}

/** The next restart delay (pure): doubling per consecutive quick failure, capped. */
export function backoffDelay(backoff: Backoff | undefined, consecutive: number): number {
  const initial = backoff?.initialMs ?? 200;
  const max = backoff?.maxMs ?? 30_000;
  return Math.min(max, initial * 2 ** Math.max(0, consecutive - 1));
}

/** Whether a process that exited this way is restarted under `policy` (pure). */
export function shouldRestart(policy: RestartPolicy, code: number | null, signal: NodeJS.Signals | null): boolean {
  if (policy === 'always') return true;
  if (policy === 'never') return false;
  return code !== 0 || signal !== null;
}

/**
 * Whether a live process's command line is what we started (pure): the recorded argv itself,
 * the argv behind an interpreter (a #! line prepends it), or still `ip netns exec <ns> argv`.
 */
export function cmdlineMatches(cmdline: readonly string[], argv: readonly string[], netns?: string): boolean {
  if (argv.length === 0 || cmdline.length < argv.length) return false;
  const tail = cmdline.slice(cmdline.length - argv.length);
  if (tail.every((a, i) => a === argv[i])) {
    const head = cmdline.slice(0, cmdline.length - argv.length);
    // Either nothing before it, an interpreter (one or two words, e.g. `/usr/bin/env node`
    // became `node`), our own `ip netns exec <ns>`, or a pod's sandbox still on its way to
    // exec it (`... setpriv ... --`).
    if (head.length <= 2) return true;
    if (netns !== undefined && head.length === 4 && head[0]!.endsWith('ip') && head[1] === 'netns' && head[2] === 'exec' && head[3] === netns) return true;
    return head.includes('setpriv') && head[head.length - 1] === '--';
  }
  return false;
}

function alive(pid: number, startTime: string): boolean {
  const st = readProcStat(pid);
  return st !== undefined && st.startTime === startTime && st.state !== 'Z' && st.state !== 'X';
}

/** PIDs of the live (not zombie) processes of a process group (one pass over /proc). */
export function liveGroupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const st = readProcStat(Number(entry));
    if (st && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X') out.push(Number(entry));
  }
  return out;
}

const groupExists = (pgid: number) => liveGroupMembers(pgid).length > 0;

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  if (pgid <= 1 || pgid === process.pid) return;
  try {
    process.kill(-pgid, signal);
  } catch {
    // gone
  }
}


// ---------------------------------------------------------------------------------------
// The supervisor

interface Entry {
  spec: ProcessSpec;
  state: ProcessState;
  child: ChildProcess | undefined;
  pid: number | undefined;
  startTime: string | undefined;
  startedAt: number | undefined;
  restarts: number;
  consecutive: number;
  lastExit: ExitInfo | undefined;
  nextDelayMs: number | undefined;
  timer: TimerHandle | undefined;
  exited: Promise<void> | undefined;
}

export class Supervisor {
  private readonly entries = new Map<string, Entry>();
  private readonly retiring = new Map<number, { name: string; pid: number; exited: Promise<void> }>();
  private readonly stateDir: string;

  constructor(private readonly options: SupervisorOptions) {
    this.stateDir = options.stateDir;
    mkdirSync(pidDir(this.stateDir), { recursive: true });
  }

  /**
   * Starts a process and keeps it alive per its restart policy. Resolves once it was started
   * (it may already have exited). Calling it again for a name that is running or waiting to
   * restart returns its status.
   */
  async spawn(spec: ProcessSpec): Promise<ProcessStatus> {
    if (!NAME_RE.test(spec.name)) throw new AmbitError('AMBIT_ERR_USAGE', `process name '${spec.name}' is not valid`, { hint: 'use letters, digits, ., _ and -' });
    const existing = this.entries.get(spec.name);
    if (existing && (existing.state === 'running' || existing.state === 'backoff' || existing.state === 'stopping')) return this.statusOf(spec.name)!;
    const stale = readPidRecord(pidFilePath(this.stateDir, spec.name));
    if (stale && stale.supervisorPid !== process.pid && alive(stale.pid, stale.startTime)) {
      throw new AmbitError('AMBIT_ERR_CLUSTER', `${spec.name} is still running as PID ${stale.pid}, started by an earlier supervisor (PID ${stale.supervisorPid})`, {
        hint: '`ambit down` stops what an earlier run left behind (killFromPidFiles)',
      });
    }
    const entry: Entry = {
      spec: { ...spec, args: [...(spec.args ?? [])] },
      state: 'running',
      child: undefined,
      pid: undefined,
      startTime: undefined,
      startedAt: undefined,
      restarts: 0,
      consecutive: 0,
      lastExit: undefined,
      nextDelayMs: undefined,
      timer: undefined,
      exited: undefined,
    };
    this.entries.set(spec.name, entry);
    await this.start(entry);
    return this.statusOf(spec.name)!;
  }

  status(): ProcessStatus[] {
    return [...this.entries.keys()].sort().map((n) => this.statusOf(n)!);
  }

  statusOf(name: string): ProcessStatus | undefined {
    const e = this.entries.get(name);
    if (!e) return undefined;
    return {
      name,
      state: e.state,
      pid: e.state === 'running' || e.state === 'stopping' ? e.pid : undefined,
      restarts: e.restarts,
      startedAt: e.startedAt,
      lastExit: e.lastExit,
      nextDelayMs: e.state === 'backoff' ? e.nextDelayMs : undefined,
      netns: e.spec.netns,
      logFile: e.spec.logFile,
    };
  }

  /** SIGTERM to the process group, SIGKILL after graceMs; no restart follows. Idempotent. */
  async stop(name: string, graceMs = 5_000): Promise<void> {
    const e = this.entries.get(name);
    if (!e) return;
    if (e.timer) {
      e.timer.cancel();
      e.timer = undefined;
    }
    if (e.state === 'backoff') {
      e.state = 'stopped';
      this.emit({ type: 'stopped', name });
      return;
    }
    if (e.state !== 'running' && e.state !== 'stopping') return;
    e.state = 'stopping';
    const pid = e.pid;
    if (pid !== undefined) {
      killGroup(pid, 'SIGTERM');
      const kill = systemClock.setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      await e.exited;
      kill.cancel();
      // Members of the group that outlived their leader.
      if (groupExists(pid)) {
        killGroup(pid, 'SIGTERM');
        const deadline = Date.now() + graceMs;
        while (groupExists(pid) && Date.now() < deadline) await sleep(20);
        if (groupExists(pid)) killGroup(pid, 'SIGKILL');
      }
    } else {
      await e.exited;
    }
    e.state = 'stopped';
    this.emit({ type: 'stopped', name });
  }

  async stopAll(graceMs = 5_000): Promise<void> {
    await Promise.all([...this.entries.keys()].map((n) => this.stop(n, graceMs)));
    await Promise.all([...this.retiring.values()].map((r) => {
      killGroup(r.pid, 'SIGKILL');
      return r.exited;
    }));
  }

  /** Processes replaced by a successor and still draining: name -> PIDs. */
  retired(): Array<{ name: string; pid: number }> {
    return [...this.retiring.values()].map((r) => ({ name: r.name, pid: r.pid }));
  }

  /**
   * Graceful replacement (see the invariants): a new instance of `name` starts beside the
   * running one; once `ready(newPid)` holds (polled every 100 ms, up to readyTimeoutMs) the old
   * one gets SIGTERM, and SIGKILL after drainMs if it is still there. Resolves once the old one
   * was told to stop, with a promise of its exit.
   */
  async replace(name: string, options: { ready: (pid: number) => Promise<boolean>; readyTimeoutMs: number; drainMs: number }): Promise<{ oldPid: number; newPid: number; oldExited: Promise<void> }> {
    const e = this.entries.get(name);
    if (!e || e.state !== 'running' || e.pid === undefined) {
      throw new AmbitError('AMBIT_ERR_CLUSTER', `${name} is not running (${e?.state ?? 'unknown'})`, { hint: 'wait for it to come back, or see `ambit status`' });
    }
    const old = { pid: e.pid, startTime: e.startTime, child: e.child, exited: e.exited!, startedAt: e.startedAt };
    const retiredName = `${name}.retired-${old.pid}`;
    const path = pidFilePath(this.stateDir, name);
    const record = readPidRecord(path);
    if (record?.pid === old.pid) {
      writeFileSync(pidFilePath(this.stateDir, retiredName), JSON.stringify({ ...record, name: retiredName }) + '\n');
      rmSync(path, { force: true });
    }
    this.retiring.set(old.pid, { name: retiredName, pid: old.pid, exited: old.exited });
    void old.exited.then(() => {
      this.retiring.delete(old.pid);
      rmSync(pidFilePath(this.stateDir, retiredName), { force: true });
    });
    e.restarts++;
    await this.start(e);
    const newPid = e.pid;
    const deadline = Date.now() + options.readyTimeoutMs;
    let ready = false;
    while (!ready && Date.now() < deadline && e.pid === newPid && e.state === 'running') {
      ready = await options.ready(newPid!).catch(() => false);
      if (!ready) await sleep(100);
    }
    if (!ready || newPid === undefined) {
      // Keep the old one: kill the successor, put the old one back in its place.
      if (newPid !== undefined && e.pid === newPid) {
        const newExited = e.exited;
        Object.assign(e, { pid: old.pid, startTime: old.startTime, child: old.child, exited: old.exited, startedAt: old.startedAt, state: 'running' });
        killGroup(newPid, 'SIGKILL');
        await newExited;
      }
      this.retiring.delete(old.pid);
      if (readProcStat(old.pid) && record) writeFileSync(path, JSON.stringify(record) + '\n');
      rmSync(pidFilePath(this.stateDir, retiredName), { force: true });
      throw new AmbitError('AMBIT_ERR_TIMEOUT', `the new ${name} did not become ready in ${options.readyTimeoutMs} ms; the old one keeps running`, { hint: `see ${e.spec.logFile}` });
    }
    killGroup(old.pid, 'SIGTERM');
    const kill = systemClock.setTimeout(() => killGroup(old.pid, 'SIGKILL'), options.drainMs);
    void old.exited.then(() => kill.cancel());
    return { oldPid: old.pid, newPid, oldExited: old.exited };
  }

  private emit(event: SupervisorEvent): void {
    this.options.logger?.info(`supervisor: ${event.type}`, { ...event });
    try {
      this.options.onEvent?.(event);
    } catch {
      // an observer's problem is not ours
    }
  }

  private async start(e: Entry): Promise<void> {
    const spec = e.spec;
    const argv = [spec.command, ...(spec.args ?? [])];
    const inNetns = spec.sandbox ? sandboxArgv(spec.sandbox, argv) : argv;
    const [command, args] = spec.netns ? ['ip', ['netns', 'exec', spec.netns, ...inNetns]] : [spec.command, [...(spec.args ?? [])]];
    mkdirSync(dirname(spec.logFile), { recursive: true });
    const fd = openSync(spec.logFile, 'a');
    let child: ChildProcess;
    try {
      writeSync(fd, `--- ambit supervisor: starting ${argv.join(' ')}${spec.netns ? ` in ${spec.netns}` : ''} (start ${e.restarts + 1}) at ${new Date().toISOString()}\n`);
      child = spawnChild(command, args, {
        detached: true, // setsid(): its own session and process group
        stdio: ['ignore', fd, fd],
        env: spec.sandbox ? sandboxEnv(spec.sandbox, spec.env ?? {}) : spec.inheritEnv === false ? { ...spec.env } : { ...process.env, ...spec.env },
        cwd: spec.cwd,
      });
    } finally {
      closeSync(fd);
    }
    e.child = child;
    e.startedAt = Date.now();
    e.state = 'running';
    let resolveExited!: () => void;
    e.exited = new Promise<void>((resolve) => (resolveExited = resolve));
    const pid = child.pid;
    if (pid === undefined) {
      // spawn failed (ENOENT, EACCES...): 'error' follows, with no 'exit'.
      await new Promise<void>((resolve) => {
        child.once('error', (err: Error) => {
          this.emit({ type: 'spawn-error', name: spec.name, error: err.message });
          this.appendLog(spec.logFile, `--- ambit supervisor: cannot start ${spec.command}: ${err.message}`);
          this.onExit(e, undefined, 127, null);
          resolveExited();
          resolve();
        });
      });
      return;
    }
    e.pid = pid;
    child.on('error', () => undefined); // errors after start (kill races) are not exits
    child.once('exit', (code, signal) => {
      this.onExit(e, pid, code, signal);
      resolveExited();
    });
    const stat = readProcStat(pid);
    if (stat) {
      e.startTime = stat.startTime;
      const record: PidRecord = {
        name: spec.name,
        pid,
        startTime: stat.startTime,
        argv,
        netns: spec.netns,
        logFile: spec.logFile,
        startedAt: new Date(e.startedAt).toISOString(),
        supervisorPid: process.pid,
      };
      const path = pidFilePath(this.stateDir, spec.name);
      writeFileSync(`${path}.tmp`, JSON.stringify(record) + '\n');
      renameSync(`${path}.tmp`, path);
    }
    this.emit({ type: 'start', name: spec.name, pid, attempt: e.restarts + 1 });
  }

  private appendLog(file: string, line: string): void {
    try {
      writeFileSync(file, `${line}\n`, { flag: 'a' });
    } catch {
      // the log directory went away; nothing better to do
    }
  }

  private onExit(e: Entry, pid: number | undefined, code: number | null, signal: NodeJS.Signals | null): void {
    if (pid !== undefined && e.pid !== pid) {
      // A process replace() retired: it drained and left; its successor is the entry now.
      this.appendLog(e.spec.logFile, `--- ambit supervisor: ${e.spec.command} (PID ${pid}, replaced) exited ${signal ? `by ${signal}` : `with code ${code}`}`);
      this.emit({ type: 'exit', name: e.spec.name, pid, code, signal, uptimeMs: 0 });
      return;
    }
    const now = Date.now();
    const uptimeMs = now - (e.startedAt ?? now);
    e.lastExit = { code, signal, at: now, uptimeMs };
    e.child = undefined;
    const path = pidFilePath(this.stateDir, e.spec.name);
    if (pid !== undefined && readPidRecord(path)?.pid === pid) rmSync(path, { force: true });
    if (pid !== undefined) {
      this.appendLog(e.spec.logFile, `--- ambit supervisor: ${e.spec.command} (PID ${pid}) exited ${signal ? `by ${signal}` : `with code ${code}`} after ${uptimeMs} ms`);
      this.emit({ type: 'exit', name: e.spec.name, pid, code, signal, uptimeMs });
    }
    if (e.state === 'stopping' || e.state === 'stopped') return;
    if (!shouldRestart(e.spec.restart, code, signal)) {
      e.state = code === 0 && signal === null ? 'exited' : 'failed';
      return;
    }
    const resetAfterMs = e.spec.backoff?.resetAfterMs ?? 10_000;
    e.consecutive = uptimeMs >= resetAfterMs ? 1 : e.consecutive + 1;
    const delayMs = backoffDelay(e.spec.backoff, e.consecutive);
    e.state = 'backoff';
    e.nextDelayMs = delayMs;
    this.emit({ type: 'restart-scheduled', name: e.spec.name, delayMs });
    e.timer = systemClock.setTimeout(() => {
      e.timer = undefined;
      if (e.state !== 'backoff') return;
      e.restarts++;
      this.start(e).catch((err: unknown) => {
        this.emit({ type: 'spawn-error', name: e.spec.name, error: err instanceof Error ? err.message : String(err) });
        e.state = 'failed';
      });
    }, delayMs);
  }
}

// ---------------------------------------------------------------------------------------
// After a crash

export function readPidRecord(path: string): PidRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as Partial<PidRecord>;
    if (typeof r.pid !== 'number' || typeof r.startTime !== 'string' || !Array.isArray(r.argv) || typeof r.name !== 'string') return undefined;
    return r as PidRecord;
  } catch {
    return undefined;
  }
}

export function readPidRecords(stateDir: string): PidRecord[] {
  let names: string[];
  try {
    names = readdirSync(pidDir(stateDir));
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith('.pid'))
    .map((n) => readPidRecord(join(pidDir(stateDir), n)))
    .filter((r): r is PidRecord => r !== undefined);
}

export type PidCheck = { verdict: 'ours' } | { verdict: 'gone' } | { verdict: 'refused'; reason: string };

/** Whether the process a PID record names is still the one we started (reads /proc). */
export function checkPidRecord(r: PidRecord): PidCheck {
  const st = readProcStat(r.pid);
  if (!st || st.state === 'Z' || st.state === 'X') return { verdict: 'gone' };
  if (st.startTime !== r.startTime) return { verdict: 'gone' }; // the PID was reused: not ours, and ours is gone
  const cmdline = readCmdline(r.pid) ?? [];
  if (!cmdlineMatches(cmdline, r.argv, r.netns)) {
    return { verdict: 'refused', reason: `PID ${r.pid} now runs '${cmdline.join(' ')}', not '${r.argv.join(' ')}'` };
  }
  if (st.pgrp !== r.pid) return { verdict: 'refused', reason: `PID ${r.pid} is no longer the leader of its process group` };
  return { verdict: 'ours' };
}

export interface KillReport {
  killed: Array<{ name: string; pid: number; signal: 'SIGTERM' | 'SIGKILL' }>;
  gone: Array<{ name: string; pid: number }>;
  refused: Array<{ name: string; pid: number; reason: string }>;
}

/**
 * For `ambit down` after a crash, when the supervisor may be gone: stops every process named
 * by a PID file of `stateDir`, if it is still the process that was started (start time and
 * command line match); SIGTERM to its group, SIGKILL after graceMs. PID files of processes that
 * are gone are removed; a mismatching live process is left alone and reported (its PID file
 * stays, for a person to look at).
 */
export async function killFromPidFiles(stateDir: string, options: { graceMs?: number } = {}): Promise<KillReport> {
  const graceMs = options.graceMs ?? 5_000;
  const report: KillReport = { killed: [], gone: [], refused: [] };
  const records = readPidRecords(stateDir);
  await Promise.all(
    records.map(async (r) => {
      const path = pidFilePath(stateDir, r.name);
      const check = checkPidRecord(r);
      if (check.verdict === 'gone') {
        report.gone.push({ name: r.name, pid: r.pid });
        rmSync(path, { force: true });
        return;
      }
      if (check.verdict === 'refused') {
        report.refused.push({ name: r.name, pid: r.pid, reason: check.reason });
        return;
      }
      killGroup(r.pid, 'SIGTERM');
      const deadline = Date.now() + graceMs;
      while (alive(r.pid, r.startTime) && Date.now() < deadline) await sleep(20);
      let signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM';
      if (alive(r.pid, r.startTime) || groupExists(r.pid)) {
        killGroup(r.pid, 'SIGKILL');
        signal = 'SIGKILL';
        const hard = Date.now() + 2_000;
        while (alive(r.pid, r.startTime) && Date.now() < hard) await sleep(20);
      }
      report.killed.push({ name: r.name, pid: r.pid, signal });
      rmSync(path, { force: true });
    }),
  );
  return report;
}
