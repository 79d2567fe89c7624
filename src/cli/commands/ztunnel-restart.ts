// `ambit ztunnel restart`: replace a node's ztunnel in the running local cluster without
// dropping a connection (the daemon does it: src/cluster/daemon.ts restartZtunnel).
import { resolve } from 'node:path';
import { AmbitError } from '../../core/errors.js';
import { parseIstioDuration } from '../../config/validate-virtual-service.js';
import { daemonPost, MAX_DRAIN_MS } from '../../cluster/daemon-api.js';
import { stateDirFrom } from '../../cluster/state-dir.js';
import { parseCommandArgs, usageError, type Command } from '../command.js';
import { ZTUNNEL_RESTART } from './specs.js';

export const ztunnelRestartCommand: Command = {
  ...ZTUNNEL_RESTART,
  help: `Usage: ambit ztunnel restart --node NAME [--drain-timeout 30s] [--wait]

Replaces the ztunnel of one node of the local cluster, as a rolling update of Istio's ztunnel
DaemonSet does, but without failing a connection:

  1. a new ztunnel starts beside the old one and connects to the node agent, which hands it
     every captured pod with the pod's listening sockets (the very sockets the old one
     accepts on, so connections waiting in their queues are kept);
  2. once the agent reports it synced (it serves every pod), the old one gets SIGTERM: it
     closes its copies of the listeners, sends GOAWAY to its HBONE peers and lets its live
     connections finish;
  3. after --drain-timeout it is killed, resetting whatever still runs through it.

New connections are accepted throughout. If the new ztunnel is not ready within 60 s it is
stopped and the old one keeps serving. The daemon does the same by itself when the ztunnel's
code on disk changes (a rebuild or an upgrade), one node at a time.

Options:
  --node NAME            the node (node-1, node-2, ...)
  --drain-timeout D      how long the old ztunnel may drain (default 30s; e.g. 500ms, 2m)
  --wait                 return only once the old ztunnel has exited
  --state-dir DIR        the cluster's state (default $AMBIT_STATE_DIR or /var/run/ambit)

Example:
  ambit ztunnel restart --node node-1 --drain-timeout 20s
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      node: { type: 'string' }, 'drain-timeout': { type: 'string', default: '30s' }, wait: { type: 'boolean' }, 'state-dir': { type: 'string' },
    });
    if (!values.node) throw usageError(this, '--node NAME is required');
    const drainMs = parseIstioDuration(values['drain-timeout']);
    if (drainMs === undefined || drainMs < 0 || drainMs > MAX_DRAIN_MS) throw usageError(this, `--drain-timeout must be a duration up to 1h (e.g. 30s), not "${values['drain-timeout']}"`);
    const socket = `${resolve(stateDirFrom(values['state-dir'], io.env))}/daemon.sock`;
    let r;
    try {
      r = await daemonPost(socket, '/ztunnel/restart', { node: values.node, drainMs, wait: values.wait === true }, 120_000 + (values.wait ? drainMs : 0));
    } catch (e: unknown) {
      throw new AmbitError('AMBIT_ERR_CLUSTER', `cannot reach the cluster daemon at ${socket}: ${e instanceof Error ? e.message : String(e)}`, { hint: 'is the cluster up (`ambit status`)?' });
    }
    if (r.status !== 200) {
      throw new AmbitError(r.status === 404 ? 'AMBIT_ERR_NOT_FOUND' : 'AMBIT_ERR_CLUSTER', String(r.body.error ?? `HTTP ${r.status}`), { hint: typeof r.body.hint === 'string' ? r.body.hint : undefined });
    }
    const b = r.body as { oldPid: number; newPid: number; drainMs: number; oldExited?: boolean };
    io.out(`ztunnel ${values.node}: PID ${b.newPid} serves; PID ${b.oldPid} ${b.oldExited ? 'drained and exited' : `drains (up to ${b.drainMs} ms)`}\n`);
    return 0;
  },
};
