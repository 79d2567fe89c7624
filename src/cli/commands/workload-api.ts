import { stringify } from 'yaml';
import { errorsOf, formatDiagnostic } from '../../config/diagnostics.js';
import { loadMesh } from '../../controlplane/check-mesh.js';
import { list, parseCommandArgs, usageError, type Command } from '../command.js';
import { buildOptionsFrom, clusterOptions } from './shared-options.js';
import { WORKLOAD_API } from './specs.js';

export const workloadApiCommand: Command = {
  ...WORKLOAD_API,
  help: `Usage: ambit x workload-api -f PATH [-f PATH...] [-o yaml|json] [--nodes N]

Translates the config into the objects ztunnels receive over xDS — istio.workload.Workload,
istio.workload.Service and istio.security.Authorization — exactly as the control plane
builds them (uids, waypoint addresses per waypoint-for, PeerAuthentication turned into
DENY policies, L7 rules converted for the ztunnel with warnings).

Options:
  -f, --file PATH        a file or directory (repeatable)
  -o, --output FORMAT    yaml (default) or json
      --nodes N          nodes of the cluster (default 2); pod IPs come from each node's pod CIDR
      --kind KIND        only workloads, services or authorizations

Example:
  ambit x workload-api -f examples/demo --kind workloads
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      file: { type: 'string', short: 'f', multiple: true },
      output: { type: 'string', short: 'o', default: 'yaml' },
      kind: { type: 'string' },
      ...clusterOptions,
    });
    const files = list(values.file);
    if (files.length === 0) throw usageError(this, 'give at least one -f PATH');
    const check = await loadMesh(files, buildOptionsFrom(values));
    if (!check.api) {
      for (const d of errorsOf(check.diagnostics)) io.err(formatDiagnostic(d) + '\n');
      io.err('the config is invalid; fix the errors above (ambit validate shows them too)\n');
      return 1;
    }
    const all = { workloads: check.api.workloads, services: check.api.services, authorizations: check.api.authorizations };
    let out: unknown = all;
    if (values.kind) {
      if (!(values.kind in all)) throw usageError(this, `--kind must be workloads, services or authorizations`);
      out = all[values.kind as keyof typeof all];
    }
    if (values.output === 'json') io.out(JSON.stringify(out, null, 2) + '\n');
    else if (values.output === 'yaml') io.out(stringify(out, { aliasDuplicateObjects: false }));
    else throw usageError(this, `unknown output format "${values.output}" (yaml or json)`);
    return 0;
  },
};
