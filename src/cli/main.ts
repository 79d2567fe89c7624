// `ambit`: the one command a person uses. Subcommands live in ./commands, one file each,
// and are listed in ./commands/index.ts (explicit wiring, no discovery magic). A command's
// module is imported only once it is selected (to run it or print its --help).
import { applyCryptoPolicy, fipsRequested } from '../core/crypto-policy.js';
import { AmbitError, describeError } from '../core/errors.js';
import type { CliIO, CommandEntry } from './command.js';
import { commands } from './commands/index.js';

function topHelp(all: CommandEntry[]): string {
  const rows = all.map((c) => `  ${c.path.join(' ').padEnd(22)} ${c.summary}`);
  return [
    'ambit — a sidecar-less service mesh (Istio ambient mode, in TypeScript)',
    '',
    'Usage: ambit <command> [options]      ambit <command> --help',
    '',
    'Commands:',
    ...rows,
    '',
    'Environment: AMBIT_LOG_LEVEL=error|warn|info|debug, AMBIT_TRACE=<tracer,...|all>,',
    '             AMBIT_FIPS=1 (refuse to start without an OpenSSL FIPS provider; every command also takes --fips)',
  ].join('\n');
}

export function findCommand<C extends { path: readonly string[] }>(all: C[], argv: string[]): { cmd: C; rest: string[] } | undefined {
  let best: { cmd: C; rest: string[] } | undefined;
  for (const cmd of all) {
    if (cmd.path.every((w, i) => argv[i] === w) && (!best || cmd.path.length > best.cmd.path.length)) {
      best = { cmd, rest: argv.slice(cmd.path.length) };
    }
  }
  return best;
}

export async function main(args: string[], io: CliIO = processIO()): Promise<number> {
  const all = commands();
  // `--fips` is understood by every command (before a `--`): the process, and every process it
  // starts (they inherit AMBIT_FIPS), refuses to run without an OpenSSL FIPS provider.
  const dash = args.indexOf('--');
  const head = dash < 0 ? args : args.slice(0, dash);
  const argv = head.includes('--fips') ? [...head.filter((a) => a !== '--fips'), ...(dash < 0 ? [] : args.slice(dash))] : args;
  if (argv !== args) {
    io.env.AMBIT_FIPS = '1';
    if (io.env !== process.env) process.env.AMBIT_FIPS = '1';
  }
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.out(topHelp(all) + '\n');
    return argv.length === 0 ? 2 : 0;
  }
  const found = findCommand(all, argv);
  if (!found) {
    const group = all.filter((c) => c.path[0] === argv[0]);
    if (group.length) {
      io.err(`ambit ${argv[0]}: which one?\n${group.map((c) => `  ambit ${c.path.join(' ').padEnd(20)} ${c.summary}`).join('\n')}\n`);
    } else {
      io.err(`ambit: unknown command '${argv[0]}'; see 'ambit --help'\n`);
    }
    return 2;
  }
  try {
    // Every process of the mesh starts here: the crypto policy holds before any socket exists.
    applyCryptoPolicy(fipsRequested(io.env));
    const cmd = await found.cmd.load();
    if (found.rest.includes('--help') || found.rest.includes('-h')) {
      io.out(cmd.help.trimEnd() + '\n');
      return 0;
    }
    return await cmd.run(found.rest, io);
  } catch (e: unknown) {
    if (e instanceof AmbitError) {
      io.err(`ambit ${found.cmd.path.join(' ')}: ${e.explain()}\n`);
      return e.code === 'AMBIT_ERR_USAGE' ? 2 : 1;
    }
    const d = describeError(e);
    io.err(`ambit ${found.cmd.path.join(' ')}: ${d.message} (${d.code})\n`);
    if (process.env.AMBIT_LOG_LEVEL === 'debug' && e instanceof Error) io.err(`${e.stack}\n`);
    return 1;
  }
}

function processIO(): CliIO {
  exitQuietlyOnClosedPipe();
  return {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
  };
}

/**
 * `ambit status | head`: when the reader of stdout (or stderr) goes away, a write fails with
 * EPIPE; a command-line tool then stops quietly, as if killed by SIGPIPE (exit status 141),
 * instead of crashing with an unhandled 'error' event.
 */
export function exitQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(141);
      throw e;
    });
  }
}
