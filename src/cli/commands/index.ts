// Every `ambit` subcommand, in the order `ambit --help` lists them.
import type { Command } from '../command.js';
import { caInitCommand, caIssueCommand } from './ca.js';
import { validateCommand } from './validate.js';
import { authzCheckCommand } from './authz.js';
import { ztunnelCommand } from './ztunnel.js';
import { controlPlaneCommand } from './control-plane.js';
import { appEchoCommand } from './app.js';
import { clusterDaemonCommand, downCommand, execCommand, logsCommand, statusCommand, upCommand } from './cluster.js';
import { applyCommand, deleteCommand, getCommand, labelCommand, proxyStatusCommand } from './config-api.js';
import { workloadApiCommand } from './workload-api.js';
import { waypointApplyCommand, waypointCommand, waypointDeleteCommand } from './waypoint.js';
import { sidecarCommand } from './sidecar.js';

export function commands(): Command[] {
  return [
    upCommand,
    downCommand,
    statusCommand,
    execCommand,
    logsCommand,
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
    waypointCommand,
    waypointApplyCommand,
    waypointDeleteCommand,
    sidecarCommand,
    appEchoCommand,
    clusterDaemonCommand,
    caInitCommand,
    caIssueCommand,
  ];
}
