// Every `ambit` subcommand, in the order `ambit --help` lists them.
import type { Command } from '../command.js';

export function commands(): Command[] {
  return [
  ];
}
