// apply / delete / get / label / proxy-status: the CLI side of the control plane's admin API.
import { stringify } from 'yaml';
import { errorsOf, formatDiagnostic, warningsOf } from '../../config/diagnostics.js';
import { readSources } from '../../config/source.js';
import type { ChangeResult } from '../../controlplane/config-store.js';
import type { ProxySync } from '../../controlplane/admin-api.js';
import { callControlPlane, controlPlaneUrl } from '../admin-client.js';
import { list, parseCommandArgs, usageError, type CliIO, type Command } from '../command.js';
import { APPLY, DELETE, GET, LABEL, PROXY_STATUS } from './specs.js';

const cpOption = { 'control-plane': { type: 'string' as const } };
const CP_HELP = '  --control-plane URL    the control plane admin API (default $AMBIT_CONTROL_PLANE or http://127.0.0.1:15014)';

function report(io: CliIO, r: ChangeResult, verb: string): number {
  for (const d of errorsOf(r.diagnostics)) io.err(formatDiagnostic(d) + '\n');
  for (const d of warningsOf(r.diagnostics)) io.err(formatDiagnostic(d) + '\n');
  if (!r.ok) {
    io.err(`refused: ${errorsOf(r.diagnostics).length} error(s); nothing was changed, the mesh keeps its last good config\n`);
    return 1;
  }
  io.out(r.changed.length ? `${r.changed.map((k) => `${k} ${verb}`).join('\n')}\n(config version ${r.version})\n` : 'no change\n');
  return 0;
}

async function sendFiles(cmd: Command, argv: string[], io: CliIO, path: '/api/apply' | '/api/delete', verb: string): Promise<number> {
  const { values } = parseCommandArgs(cmd, argv, { file: { type: 'string', short: 'f', multiple: true }, ...cpOption });
  const files = list(values.file);
  if (!files.length) throw usageError(cmd, 'give at least one -f PATH');
  const { sources, diagnostics } = await readSources(files);
  if (diagnostics.length) {
    for (const d of diagnostics) io.err(formatDiagnostic(d) + '\n');
    return 1;
  }
  const base = controlPlaneUrl(values['control-plane'], io.env);
  // All files go in one request, so the change is validated and applied as a whole.
  const body = sources.map((s) => `# source: ${s.file}\n${s.text}`).join('\n---\n');
  const { json } = await callControlPlane<ChangeResult>(base, path, { method: 'POST', body, headers: { 'x-ambit-file': files.join(',') } });
  return report(io, json, verb);
}

export const applyCommand: Command = {
  ...APPLY,
  help: `Usage: ambit apply -f PATH [-f PATH...]

Sends the resources to the control plane, which validates the resulting config as a whole
with the same checks as \`ambit validate\`. An invalid change is refused with every error and
nothing changes; a valid one reaches every proxy within a second.

${CP_HELP}
`,
  run(argv, io) { return sendFiles(this, argv, io, '/api/apply', 'configured'); },
};

export const deleteCommand: Command = {
  ...DELETE,
  help: `Usage: ambit delete -f PATH [-f PATH...]

Removes the resources named in the files (kind, namespace and name) from the control plane.
A removal that would leave the config invalid (e.g. a Gateway still named by
istio.io/use-waypoint) is refused.

${CP_HELP}
`,
  run(argv, io) { return sendFiles(this, argv, io, '/api/delete', 'deleted'); },
};

export const getCommand: Command = {
  ...GET,
  help: `Usage: ambit get [KIND] [-n NAMESPACE] [-o table|yaml|json]

Examples:
  ambit get authorizationpolicy -n demo
  ambit get namespace -o yaml

${CP_HELP}
`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(this, argv, {
      namespace: { type: 'string', short: 'n' }, output: { type: 'string', short: 'o', default: 'table' }, ...cpOption,
    }, true);
    const params = new URLSearchParams();
    if (positionals[0]) params.set('kind', positionals[0].replace(/s$/i, '').replace(/ie$/i, 'y'));
    if (values.namespace) params.set('namespace', values.namespace);
    const base = controlPlaneUrl(values['control-plane'], io.env);
    const { json } = await callControlPlane<{ items: { kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; source: string }[] }>(base, `/api/resources?${params}`);
    if (values.output === 'json') io.out(JSON.stringify(json.items, null, 2) + '\n');
    else if (values.output === 'yaml') io.out(stringify(json.items.map(({ source: _s, ...r }) => r)));
    else {
      const rows = json.items.map((r) => [r.kind, r.metadata.namespace ?? '', r.metadata.name, Object.entries(r.metadata.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',')]);
      io.out(table([['KIND', 'NAMESPACE', 'NAME', 'LABELS'], ...rows]));
    }
    return 0;
  },
};

export const labelCommand: Command = {
  ...LABEL,
  help: `Usage: ambit label KIND NAME [-n NAMESPACE] KEY=VALUE... KEY-...

Like kubectl label: KEY=VALUE sets a label, KEY- removes it. The change is validated and
pushed like any other; enrolment follows live (new connections take the new path).

Examples:
  ambit label namespace legacy istio.io/dataplane-mode=ambient
  ambit label namespace legacy istio.io/dataplane-mode-
  ambit label service echo -n demo istio.io/use-waypoint=waypoint

${CP_HELP}
`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(this, argv, { namespace: { type: 'string', short: 'n' }, ...cpOption }, true);
    const [kindArg, name, ...changes] = positionals;
    if (!kindArg || !name || changes.length === 0) throw usageError(this, 'usage: ambit label KIND NAME KEY=VALUE...');
    const kinds: Record<string, string> = { namespace: 'Namespace', ns: 'Namespace', pod: 'Pod', service: 'Service', svc: 'Service', deployment: 'Deployment', gateway: 'Gateway' };
    const kind = kinds[kindArg.toLowerCase().replace(/s$/, '')];
    if (!kind) throw usageError(this, `cannot label kind "${kindArg}" (namespace, pod, service, deployment, gateway)`);
    const labels: Record<string, string | null> = {};
    for (const c of changes) {
      if (c.endsWith('-') && !c.includes('=')) labels[c.slice(0, -1)] = null;
      else if (c.includes('=')) labels[c.slice(0, c.indexOf('='))] = c.slice(c.indexOf('=') + 1);
      else throw usageError(this, `"${c}" is neither KEY=VALUE nor KEY-`);
    }
    const base = controlPlaneUrl(values['control-plane'], io.env);
    const { json } = await callControlPlane<ChangeResult>(base, '/api/label', { method: 'POST', body: JSON.stringify({ kind, namespace: values.namespace, name, labels }) });
    return report(io, json, 'labeled');
  },
};

export const proxyStatusCommand: Command = {
  ...PROXY_STATUS,
  help: `Usage: ambit proxy-status [-o table|json]

Like istioctl proxy-status: for each connected proxy and each config type, whether it has
ACKed the version the control plane serves (SYNCED), is behind (STALE), or rejected it
(NACKED, with the proxy's error).

${CP_HELP}
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, { output: { type: 'string', short: 'o', default: 'table' }, ...cpOption });
    const base = controlPlaneUrl(values['control-plane'], io.env);
    const { json } = await callControlPlane<{ configVersion: number; proxies: ProxySync[] }>(base, '/debug/syncz');
    if (values.output === 'json') {
      io.out(JSON.stringify(json.proxies, null, 2) + '\n');
      return 0;
    }
    // ConfigResource: the L7 config a waypoint or sidecar subscribes to ('-' for ztunnels).
    const rows = json.proxies.map((p) => [p.proxy, p.state, ...['Address', 'Authorization', 'ConfigResource'].map((t) => p.types.find((x) => x.type === t)?.state ?? '-'), p.connectedSince]);
    io.out(table([['PROXY', 'STATE', 'ADDRESS', 'AUTHORIZATION', 'L7 CONFIG', 'CONNECTED SINCE'], ...rows]));
    for (const p of json.proxies) for (const t of p.types) if (t.nack) io.out(`  ${p.proxy} ${t.type}: NACK: ${t.nack}\n`);
    if (!json.proxies.length) io.out('(no proxy connected)\n');
    return 0;
  },
};

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ')).join('\n') + '\n';
}
