// Every `ambit` subcommand, in the order `ambit --help` lists them.
import type { Command } from '../command.js';
import { caInitCommand, caIssueCommand } from './ca.js';
import { validateCommand } from './validate.js';
import { authzCheckCommand } from './authz.js';
import { ztunnelCommand } from './ztunnel.js';
import { workloadApiCommand } from './workload-api.js';

export function commands(): Command[] {
  return [
    validateCommand,
    workloadApiCommand,
    authzCheckCommand,
    ztunnelCommand,
    caInitCommand,
    caIssueCommand,
  ];
}
