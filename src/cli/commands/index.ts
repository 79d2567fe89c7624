// Every `ambit` subcommand, in the order `ambit --help` lists them. Each entry carries its
// path and summary (from ./specs.ts) and loads its module on demand, so one command's run
// pays only for its own imports (each module a proxy does not load is resident memory saved).
import type { Command, CommandEntry } from '../command.js';
import * as S from './specs.js';

function entry(spec: S.CommandSpec, load: () => Promise<Command>): CommandEntry {
  return { path: spec.path, summary: spec.summary, load };
}

export function commands(): CommandEntry[] {
  return [
    entry(S.UP, async () => (await import('./cluster.js')).upCommand),
    entry(S.DOWN, async () => (await import('./cluster.js')).downCommand),
    entry(S.STATUS, async () => (await import('./cluster.js')).statusCommand),
    entry(S.EXEC, async () => (await import('./cluster.js')).execCommand),
    entry(S.LOGS, async () => (await import('./cluster.js')).logsCommand),
    entry(S.VALIDATE, async () => (await import('./validate.js')).validateCommand),
    entry(S.WORKLOAD_API, async () => (await import('./workload-api.js')).workloadApiCommand),
    entry(S.AUTHZ_CHECK, async () => (await import('./authz.js')).authzCheckCommand),
    entry(S.APPLY, async () => (await import('./config-api.js')).applyCommand),
    entry(S.DELETE, async () => (await import('./config-api.js')).deleteCommand),
    entry(S.GET, async () => (await import('./config-api.js')).getCommand),
    entry(S.LABEL, async () => (await import('./config-api.js')).labelCommand),
    entry(S.PROXY_STATUS, async () => (await import('./config-api.js')).proxyStatusCommand),
    entry(S.CONTROL_PLANE, async () => (await import('./control-plane.js')).controlPlaneCommand),
    entry(S.ZTUNNEL, async () => (await import('./ztunnel.js')).ztunnelCommand),
    entry(S.ZTUNNEL_RESTART, async () => (await import('./ztunnel-restart.js')).ztunnelRestartCommand),
    entry(S.NODE_AGENT, async () => (await import('./node-agent.js')).nodeAgentCommand),
    entry(S.GATEWAY, async () => (await import('./gateway.js')).gatewayCommand),
    entry(S.WAYPOINT, async () => (await import('./waypoint.js')).waypointCommand),
    entry(S.WAYPOINT_APPLY, async () => (await import('./waypoint.js')).waypointApplyCommand),
    entry(S.WAYPOINT_DELETE, async () => (await import('./waypoint.js')).waypointDeleteCommand),
    entry(S.SIDECAR, async () => (await import('./sidecar.js')).sidecarCommand),
    entry(S.APP_ECHO, async () => (await import('./app.js')).appEchoCommand),
    entry(S.CLUSTER_DAEMON, async () => (await import('./cluster.js')).clusterDaemonCommand),
    entry(S.INSTALL, async () => (await import('./install.js')).installCommand),
    entry(S.UNINSTALL, async () => (await import('./install.js')).uninstallCommand),
    entry(S.CNI_CLEANUP, async () => (await import('./install.js')).cniCleanupCommand),
    entry(S.CA_INIT, async () => (await import('./ca.js')).caInitCommand),
    entry(S.CA_ISSUE, async () => (await import('./ca.js')).caIssueCommand),
  ];
}
