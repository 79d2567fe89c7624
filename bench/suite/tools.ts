// The load tools (Debian packages: iperf3, wrk, hey), each run inside the client's network
// namespace with a hard timeout, and parsers for what they print. Pure parsers, separate from
// the spawning, so a change of a tool's output shows up as a missing figure, not a crash.
import { spawn } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs argv inside netns; killed (by its PID) after timeoutMs. */
export function runIn(netns: string, argv: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { timedOut = true; if (child.pid) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } } }, timeoutMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code: code ?? -1, stdout, stderr, timedOut }); });
    child.on('error', (e) => { clearTimeout(timer); resolve({ code: -1, stdout, stderr: stderr + e.message, timedOut }); });
  });
}

/** Seconds -> a duration wrk accepts (whole seconds, at least 1). */
function wrkDuration(s: number): string {
  return `${Math.max(1, Math.round(s))}s`;
}

/** Seconds -> a Go duration for hey (`500ms` works). */
function heyDuration(s: number): string {
  return `${Math.max(100, Math.round(s * 1000))}ms`;
}

// ---- wrk ----

export interface WrkFigures {
  rps: number;
  p50Ms?: number;
  p90Ms?: number;
  p99Ms?: number;
  errors: number;
  requests: number;
}

function toMs(v: string, unit: string): number {
  const n = Number(v);
  switch (unit) {
    case 'us': return n / 1000;
    case 'ms': return n;
    case 's': return n * 1000;
    case 'm': return n * 60_000;
    default: return NaN;
  }
}

export function parseWrk(out: string): WrkFigures | undefined {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!rps) return undefined;
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? toMs(m[1]!, m[2]!) : undefined;
  };
  const requests = Number((/(\d+) requests in/.exec(out) ?? [])[1] ?? 0);
  let errors = 0;
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (sock) errors += Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) errors += Number(non2xx[1]);
  return { rps: Number(rps[1]), p50Ms: pct('50'), p90Ms: pct('90'), p99Ms: pct('99'), errors, requests };
}

export async function wrk(netns: string, url: string, opts: { connections: number; seconds: number; close?: boolean; threads?: number }): Promise<WrkFigures | string> {
  const argv = ['wrk', '-t', String(opts.threads ?? 2), '-c', String(opts.connections), '-d', wrkDuration(opts.seconds), '--timeout', '5s', '--latency'];
  if (opts.close) argv.push('-H', 'Connection: close');
  argv.push(url);
  const r = await runIn(netns, argv, Math.max(1, Math.round(opts.seconds)) * 1000 + 20_000);
  return parseWrk(r.stdout) ?? `wrk failed (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${(r.stderr || r.stdout).trim().slice(0, 300)}`;
}

// ---- hey ----

export interface HeyFigures {
  rps: number;
  p50Ms?: number;
  p90Ms?: number;
  p99Ms?: number;
  errors: number;
}

export function parseHey(out: string): HeyFigures | undefined {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!rps) return undefined;
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%% in ([\\d.]+) secs`, 'm').exec(out) ?? new RegExp(`^\\s+${p}% in ([\\d.]+) secs`, 'm').exec(out);
    return m ? Number(m[1]) * 1000 : undefined;
  };
  let errors = 0;
  const errBlock = /Error distribution:\n([\s\S]*)$/.exec(out);
  if (errBlock) for (const m of errBlock[1]!.matchAll(/^\s+\[(\d+)\]/gm)) errors += Number(m[1]);
  for (const m of out.matchAll(/^\s+\[(\d{3})\]\s+(\d+) responses/gm)) if (m[1] !== '200') errors += Number(m[2]);
  return { rps: Number(rps[1]), p50Ms: pct('50'), p90Ms: pct('90'), p99Ms: pct('99'), errors };
}

/** A fixed rate of `rps` requests/s: hey's rate limit is per worker, so rps/workers each. */
export async function hey(netns: string, url: string, opts: { rps: number; seconds: number; workers?: number }): Promise<HeyFigures | string> {
  const workers = opts.workers ?? 10;
  const argv = ['hey', '-z', heyDuration(opts.seconds), '-c', String(workers), '-q', String(opts.rps / workers), '-t', '5', url];
  const r = await runIn(netns, argv, opts.seconds * 1000 + 20_000);
  return parseHey(r.stdout) ?? `hey failed (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${(r.stderr || r.stdout).trim().slice(0, 300)}`;
}

// ---- iperf3 ----

export interface IperfFigures {
  gbitPerSecond: number;
}

export function parseIperf(json: string): IperfFigures | undefined {
  try {
    const j = JSON.parse(json) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
    const bps = j.end?.sum_received?.bits_per_second;
    return bps === undefined ? undefined : { gbitPerSecond: bps / 1e9 };
  } catch {
    return undefined;
  }
}

export async function iperf3(netns: string, host: string, port: number, seconds: number): Promise<IperfFigures | string> {
  const argv = ['iperf3', '-c', host, '-p', String(port), '-t', String(Math.max(1, Math.round(seconds))), '-J', '--connect-timeout', '5000'];
  const r = await runIn(netns, argv, Math.max(1, Math.round(seconds)) * 1000 + 20_000);
  return parseIperf(r.stdout) ?? `iperf3 failed (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${(r.stderr || r.stdout).trim().slice(0, 300)}`;
}
