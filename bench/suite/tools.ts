// The load tools (Debian packages: iperf3, wrk, hey), each run inside the client's network
// namespace with a hard timeout, and parsers for what they print. Pure parsers, separate from
// the spawning, so a change of a tool's output shows up as a missing figure, not a crash.
//
// Invariant: a tool never throws at the suite. It returns its figures, or a string starting
// `not measured: ` that says why (it failed to start, exited without figures, timed out), which
// the suite records as that path's error. Every child is handed to `track` when spawned, so the
// owner (the bench cluster) can kill it by PID on an error or a signal.
import { spawn, type ChildProcess } from 'node:child_process';

/** Receives every child a tool starts (for kill-by-PID on cleanup). */
export type TrackChild = (child: ChildProcess, name: string) => void;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs argv inside netns; killed (by its PID) after timeoutMs. Never rejects. */
export function runIn(netns: string, argv: string[], timeoutMs: number, track?: TrackChild): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    track?.(child, argv[0] ?? 'tool');
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { timedOut = true; if (child.pid) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } } }, timeoutMs);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code: code ?? -1, stdout, stderr: stderr + (signal ? `\n(killed by ${signal})` : ''), timedOut }); });
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

/** The per-path error for a tool run that gave no figures. */
export function notMeasured(tool: string, r: RunResult): string {
  const what = r.timedOut ? 'timed out' : r.code === -1 ? 'was killed' : `exited ${r.code}`;
  const said = (r.stderr || r.stdout).trim().replace(/\s+/g, ' ').slice(0, 300);
  return `not measured: ${tool} ${what} ${said ? `saying: ${said}` : 'and printed nothing'}`;
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

export async function wrk(netns: string, url: string, opts: { connections: number; seconds: number; close?: boolean; threads?: number; track?: TrackChild }): Promise<WrkFigures | string> {
  const argv = ['wrk', '-t', String(opts.threads ?? 2), '-c', String(opts.connections), '-d', wrkDuration(opts.seconds), '--timeout', '5s', '--latency'];
  if (opts.close) argv.push('-H', 'Connection: close');
  argv.push(url);
  const r = await runIn(netns, argv, Math.max(1, Math.round(opts.seconds)) * 1000 + 15_000, opts.track);
  return parseWrk(r.stdout) ?? notMeasured('wrk', r);
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
export async function hey(netns: string, url: string, opts: { rps: number; seconds: number; workers?: number; track?: TrackChild }): Promise<HeyFigures | string> {
  const workers = opts.workers ?? 10;
  const argv = ['hey', '-z', heyDuration(opts.seconds), '-c', String(workers), '-q', String(opts.rps / workers), '-t', '5', url];
  const r = await runIn(netns, argv, opts.seconds * 1000 + 15_000, opts.track);
  return parseHey(r.stdout) ?? notMeasured('hey', r);
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

/**
 * Under a second (smoke mode) iperf3 cannot time a run (`-t` takes whole seconds), so it sends
 * a fixed amount instead (`-n`, ~seconds at 1 Gbit/s) and reports the rate of that transfer.
 */
export function iperfArgs(host: string, port: number, seconds: number): string[] {
  const amount = seconds < 1 ? ['-n', `${Math.max(8, Math.round(seconds * 128))}M`] : ['-t', String(Math.round(seconds))];
  return ['iperf3', '-c', host, '-p', String(port), ...amount, '-J', '--connect-timeout', '5000'];
}

export async function iperf3(netns: string, host: string, port: number, seconds: number, track?: TrackChild): Promise<IperfFigures | string> {
  const r = await runIn(netns, iperfArgs(host, port, seconds), Math.max(1, Math.round(seconds)) * 1000 + 15_000, track);
  const figures = parseIperf(r.stdout);
  if (figures) return figures;
  // iperf3 -J reports its own failure as {"error": "..."} on stdout.
  let said: string | undefined;
  try { said = (JSON.parse(r.stdout) as { error?: string }).error; } catch { /* not JSON */ }
  return said ? `not measured: iperf3 ${said}` : notMeasured('iperf3', r);
}
