import { AmbitError } from '../../core/errors.js';
import { errorsOf, formatDiagnostic } from '../../config/diagnostics.js';
import { loadMesh } from '../../controlplane/check-mesh.js';
import { explainAuthz, type AuthzExplanation, type AuthzQuery } from '../../controlplane/explain-authz.js';
import { list, parseCommandArgs, usageError, type Command } from '../command.js';
import { buildOptionsFrom, clusterOptions } from './shared-options.js';
import { AUTHZ_CHECK } from './specs.js';

export const authzCheckCommand: Command = {
  ...AUTHZ_CHECK,
  help: `Usage: ambit authz check -f PATH (--from NS/POD | --from-ip IP) --to NS/NAME:PORT
                         [--method M --path P --header K=V ...] [-o text|json]

Explains one connection (or, with --method/--path, one HTTP request) the way the mesh would
decide it: which proxy enforces it (the destination's ztunnel, a waypoint, a sidecar), the
decision, the policy and rule that decided (or that no ALLOW policy matched), and the
warnings that apply (e.g. an HTTP rule a ztunnel can only enforce at L4).

  --from NS/POD     a pod; if it is not in the mesh it is a plaintext source with no identity
  --from-ip IP      any plaintext source (shows what PERMISSIVE and STRICT do)
  --to NS/NAME:PORT the Service of that name when there is one (service port, its waypoint),
                    otherwise the pod (its port, the pod's waypoint)
  --method, --path, --header K=V, --host   HTTP attributes for waypoint (L7) policies
  -f, --file PATH   config files or directories (repeatable)
  -o json           machine-readable: decision, enforcedBy, policy, rule, reason, warnings, steps
  --nodes N         nodes of the cluster (default 2)

Exit status: 0 when allowed, 3 when denied, 1/2 on errors.

Examples:
  ambit authz check -f examples/demo --from demo/client-0 --to demo/echo:80
  ambit authz check -f examples/demo --from legacy/outsider --to demo/echo:80 -o json
  ambit authz check -f mesh/ --from shop/web-0 --to shop/api:8080 --method DELETE --path /items/1
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      file: { type: 'string', short: 'f', multiple: true },
      from: { type: 'string' },
      'from-ip': { type: 'string' },
      to: { type: 'string' },
      method: { type: 'string' },
      path: { type: 'string' },
      host: { type: 'string' },
      header: { type: 'string', multiple: true },
      output: { type: 'string', short: 'o', default: 'text' },
      ...clusterOptions,
    });
    const files = list(values.file);
    if (files.length === 0) throw usageError(this, 'give at least one -f PATH');
    if (!values.to) throw usageError(this, '--to NS/NAME:PORT is required');
    if (!values.from === !values['from-ip']) throw usageError(this, 'give exactly one of --from NS/POD or --from-ip IP');
    const to = /^([a-z0-9-]+)\/([a-z0-9.-]+):(\d{1,5})$/.exec(values.to);
    if (!to) throw usageError(this, `--to must look like NS/NAME:PORT, not "${values.to}"`);
    let from: AuthzQuery['from'];
    if (values.from) {
      const m = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(values.from);
      if (!m) throw usageError(this, `--from must look like NS/POD, not "${values.from}"`);
      from = { namespace: m[1]!, name: m[2]! };
    } else {
      from = { ip: values['from-ip']! };
    }
    const headers: Record<string, string> = {};
    for (const h of list(values.header)) {
      const i = h.indexOf('=');
      if (i <= 0) throw usageError(this, `--header must be K=V, not "${h}"`);
      headers[h.slice(0, i).toLowerCase()] = h.slice(i + 1);
    }
    const http = values.method || values.path || Object.keys(headers).length
      ? { method: values.method ?? 'GET', path: values.path ?? '/', headers, host: values.host }
      : undefined;

    const check = await loadMesh(files, buildOptionsFrom(values));
    if (!check.model || !check.api) {
      for (const d of errorsOf(check.diagnostics)) io.err(formatDiagnostic(d) + '\n');
      throw new AmbitError('AMBIT_ERR_CONFIG_INVALID', 'the config is invalid', { hint: 'fix the errors above (ambit validate -f ... lists them)' });
    }
    const result = explainAuthz(check.model, check.api, { from, to: { namespace: to[1]!, name: to[2]!, port: Number(to[3]) }, http });
    if (values.output === 'json') io.out(JSON.stringify(result, null, 2) + '\n');
    else if (values.output === 'text') io.out(formatExplanation(result));
    else throw usageError(this, `unknown output format "${values.output}" (text or json)`);
    return result.decision === 'ALLOW' ? 0 : 3;
  },
};

export function formatExplanation(r: AuthzExplanation): string {
  const lines: string[] = [];
  const by = r.enforcedBy === 'none' ? 'nothing enforces policy here' : `enforced by ${r.steps.find((s) => s.enforcedBy === r.enforcedBy && s.decision === r.decision)?.at ?? r.enforcedBy}`;
  lines.push(`${r.decision}  ${by}`);
  if (r.policy) lines.push(`  policy: ${r.policy}${r.rule !== null ? ` rule ${r.rule}` : ''}`);
  lines.push(`  reason: ${r.reason}`);
  lines.push('');
  lines.push(`source:      ${r.source.workload ?? '(outside the mesh)'} ${r.source.ip}  ${r.source.identity ? `identity ${r.source.identity}` : 'plaintext, no identity'}`);
  lines.push(`destination: ${r.destination.kind} ${r.destination.name}:${r.destination.port} -> ${r.destination.workload} ${r.destination.ip}:${r.destination.targetPort}`);
  lines.push(`path:        ${r.path}`);
  if (r.request) {
    const seen = r.request.refused ? `refused (400: ${r.request.refused})` : r.request.normalizedPath === null ? 'refused (400)' : r.request.normalizedPath === r.request.path ? 'unchanged' : `-> ${r.request.normalizedPath}`;
    const note = r.request.normalization === 'MERGE_SLASHES' ? "; Istio's default is BASE, which leaves //admin open" : '';
    lines.push(`request:     ${r.request.method} ${r.request.path} ${seen} (path normalization ${r.request.normalization}${note})`);
  }
  if (r.steps.length) {
    lines.push('steps:');
    r.steps.forEach((s, i) => {
      lines.push(`  ${i + 1}. ${s.at}: ${s.decision}${s.policy ? ` by ${s.policy}${s.rule !== null ? ` rule ${s.rule}` : ''}` : ''}`);
      lines.push(`     sees source ${s.sourceIdentity ?? 'plaintext (no identity)'}`);
      lines.push(`     policies considered: ${s.policiesConsidered.join(', ') || '(none)'}`);
      lines.push(`     ${s.reason}`);
      for (const d of s.dryRun) lines.push(`     dry-run ${d.policy}: would ${d.wouldDecide}`);
    });
  }
  if (r.warnings.length) {
    lines.push('warnings:');
    for (const w of r.warnings) lines.push(`  - ${w}`);
  }
  return lines.join('\n') + '\n';
}
