// Every `ambit` subcommand, in the order `ambit --help` lists them.
import type { Command } from '../command.js';
import { caInitCommand, caIssueCommand } from './ca.js';
import { validateCommand } from './validate.js';
import { authzCheckCommand } from './authz.js';
import { ztunnelCommand } from './ztunnel.js';
import { controlPlaneCommand } from './control-plane.js';
import { applyCommand, deleteCommand, getCommand, labelCommand, proxyStatusCommand } from './config-api.js';
import { workloadApiCommand } from './workload-api.js';

export function commands(): Command[] {
  return [
    validateCommand,
    workloadApiCommand,
    authzCheckCommand,
    applyCommand,
    deleteCommand,
    getCommand,
    labelCommand,
    proxyStatusCommand,
    controlPlaneCommand,
    ztunnelCommand,
    caInitCommand,
    caIssueCommand,
  ];
}
