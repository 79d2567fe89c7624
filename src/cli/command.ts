// The shape of one `ambit` subcommand. Only the cli room prints for a person; everything a
// command needs beyond printing is passed in, so commands can be tested in-process.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AmbitError } from '../core/errors.js';

export interface CliIO {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface Command {
  /** Words that select it, e.g. ['ca', 'issue']. */
  path: readonly string[];
  summary: string;
  /** Full --help text (usage, options, examples). */
  help: string;
  run(argv: string[], io: CliIO): Promise<number>;
}

/**
 * A command as the registry lists it: enough for `ambit --help` and suggestions, and a
 * load() that imports the command's module only when the command runs or its --help is asked
 * (so `ambit ztunnel` never loads the control plane, the cluster or the config validator).
 */
export interface CommandEntry {
  path: readonly string[];
  summary: string;
  load(): Promise<Command>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** util.parseArgs with errors turned into usage errors that name the command's --help. */
export function parseCommandArgs<O extends Options>(cmd: Command, argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (e: unknown) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new AmbitError('AMBIT_ERR_USAGE', msg, { hint: `see 'ambit ${cmd.path.join(' ')} --help'` });
  }
}

export function usageError(cmd: Command, message: string): AmbitError {
  return new AmbitError('AMBIT_ERR_USAGE', message, { hint: `see 'ambit ${cmd.path.join(' ')} --help'` });
}

/** Collects the values of a repeatable string option. */
export function list(v: string | boolean | (string | boolean)[] | undefined): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}
