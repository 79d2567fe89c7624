import { errorsOf, formatDiagnostic, warningsOf } from '../../config/diagnostics.js';
import { loadMesh } from '../../controlplane/check-mesh.js';
import { list, parseCommandArgs, usageError, type Command } from '../command.js';
import { buildOptionsFrom, clusterOptions } from './shared-options.js';
import { VALIDATE } from './specs.js';

export const validateCommand: Command = {
  ...VALIDATE,
  help: `Usage: ambit validate -f PATH [-f PATH...] [-o text|json] [--nodes N]

Reads files and directories of Kubernetes/Istio YAML (or JSON) and reports every error at
once, each with file, line, resource and field, and what would be right. Warnings (valid but
suspicious config, e.g. an L7 rule that a ztunnel must enforce at L4) are listed separately.
Exits 1 when there is an error, 0 otherwise.

Options:
  -f, --file PATH        a file or directory (repeatable)
  -o, --output FORMAT    text (default) or json
      --nodes N          nodes of the cluster the config is for (default 2)
      --strict           exit 1 on warnings too

Examples:
  ambit validate -f examples/demo
  ambit validate -f mesh.yaml -o json | jq '.errors[]'
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      file: { type: 'string', short: 'f', multiple: true },
      output: { type: 'string', short: 'o', default: 'text' },
      strict: { type: 'boolean' },
      ...clusterOptions,
    });
    const files = list(values.file);
    if (files.length === 0) throw usageError(this, 'give at least one -f PATH');
    const check = await loadMesh(files, buildOptionsFrom(values));
    const errors = errorsOf(check.diagnostics);
    const warnings = warningsOf(check.diagnostics);
    if (values.output === 'json') {
      io.out(JSON.stringify({ valid: errors.length === 0, resources: check.set.size, errors, warnings }, null, 2) + '\n');
    } else if (values.output === 'text') {
      for (const d of errors) io.out(formatDiagnostic(d) + '\n');
      for (const d of warnings) io.out(formatDiagnostic(d) + '\n');
      const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
      io.out(`${errors.length === 0 ? 'valid' : 'invalid'}: ${plural(errors.length, 'error')}, ${plural(warnings.length, 'warning')} (${plural(check.set.size, 'resource')} read)\n`);
    } else {
      throw usageError(this, `unknown output format "${values.output}" (text or json)`);
    }
    return errors.length > 0 || (values.strict && warnings.length > 0) ? 1 : 0;
  },
};
