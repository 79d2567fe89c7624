// Runs a command (ip, iptables, `ip netns exec ...`) and returns its output; a failure is an
// AmbitError whose message carries the command line and what it printed on stderr.
//
// Invariants:
//  - No shell: arguments are passed as given, so names and addresses need no quoting.
//  - A command never outlives its timeout: it is killed (SIGKILL) and the call rejects with
//    AMBIT_ERR_TIMEOUT.
//  - stdout and stderr are captured in full up to maxOutputBytes each (the rest is dropped,
//    and the result says so), so a chatty command cannot exhaust memory.
import { systemClock } from '../core/clock.js';
import { spawn } from 'node:child_process';
import { AmbitError, type ErrorCode } from '../core/errors.js';

export interface RunOptions {
  /** Default 30 s. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Exit codes that are not failures (default [0]). */
  okExitCodes?: readonly number[];
  /** The code of the AmbitError for a failing exit (default AMBIT_ERR_INTERNAL). */
  errorCode?: ErrorCode;
  /** A hint for the operator when the command fails. */
  hint?: string;
  /** Per stream; default 16 MiB. */
  maxOutputBytes?: number;
}

export interface RunResult {
  commandLine: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  truncated: boolean;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;

/** The command line as a person would type it (for messages, not for a shell). */
export function formatCommandLine(command: string, args: readonly string[]): string {
  return [command, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** `ip netns exec <ns> <command> <args...>` as a command and its arguments. */
export function netnsExec(ns: string, command: string, args: readonly string[] = []): [string, string[]] {
  return ['ip', ['netns', 'exec', ns, command, ...args]];
}

export function runCommand(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const commandLine = formatCommandLine(command, args);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxOutput = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  const okExitCodes = options.okExitCodes ?? [0];

  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: options.env,
      cwd: options.cwd,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const sizes = { out: 0, err: 0 };
    let truncated = false;
    const collect = (into: Buffer[], key: 'out' | 'err') => (chunk: Buffer) => {
      const room = maxOutput - sizes[key];
      if (room <= 0) {
        truncated = true;
        return;
      }
      if (chunk.length > room) truncated = true;
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      into.push(part);
      sizes[key] += part.length;
    };
    child.stdout?.on('data', collect(out, 'out'));
    child.stderr?.on('data', collect(err, 'err'));
    if (options.input !== undefined && child.stdin) {
      child.stdin.on('error', () => {}); // EPIPE when the command doesn't read its input
      child.stdin.end(options.input);
    }

    let timedOut = false;
    const timer = systemClock.setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    child.once('error', (e: NodeJS.ErrnoException) => {
      timer.cancel();
      if (e.code === 'ENOENT') {
        reject(new AmbitError('AMBIT_ERR_NOT_FOUND', `cannot run ${commandLine}: ${command} is not installed (or not on PATH)`, {
          cause: e,
          hint: options.hint ?? '`npm run setup` installs what Ambit needs (iproute2, iptables, curl, ...)',
          details: { commandLine },
        }));
      } else {
        reject(new AmbitError('AMBIT_ERR_INTERNAL', `cannot run ${commandLine}: ${e.message}`, { cause: e, details: { commandLine } }));
      }
    });

    child.once('close', (code, signal) => {
      timer.cancel();
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      const details = { commandLine, exitCode: code, signal, stdout, stderr };
      if (timedOut) {
        reject(new AmbitError('AMBIT_ERR_TIMEOUT', `${commandLine} did not finish within ${timeoutMs} ms (killed)`, {
          hint: options.hint,
          details,
        }));
        return;
      }
      if (code === null || !okExitCodes.includes(code)) {
        const how = code === null ? `was killed by ${signal}` : `failed (exit ${code})`;
        const said = stderr.trim() || stdout.trim();
        const permission = /operation not permitted|permission denied|must be root|are you root/i.test(said);
        reject(new AmbitError(permission ? 'AMBIT_ERR_PERMISSION' : (options.errorCode ?? 'AMBIT_ERR_INTERNAL'), `${commandLine} ${how}${said ? `: ${said}` : ''}`, {
          hint: permission ? 'this needs root (CAP_NET_ADMIN / CAP_SYS_ADMIN); run Ambit with sudo' : options.hint,
          details,
        }));
        return;
      }
      resolve({ commandLine, exitCode: code, stdout, stderr, truncated });
    });
  });
}
