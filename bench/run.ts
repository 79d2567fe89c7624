// `npm run bench`: the macro suite (bench/suite, documented in bench/README.md).
//
//   node dist/bench/run.js [--quick | --smoke] [--out FILE] [--paths direct,ambitL4,...] [--workloads keepalive,...]
//                          [--rounds N] [--seconds S] [--hold N] [--prefix P] [--profile DIR]
//                          [--state-prefix NAME] [--pid-file FILE] [--no-access-log]
//
// The older focused benchmarks run on their own: node dist/bench/{hbone-throughput,
// control-plane-scale,xds-fanout}.js, node dist/bench/micro/{authz,route}.js.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runSuite, type SuiteMode } from './suite/suite.js';
import type { Workload } from './suite/report.js';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' }, smoke: { type: 'boolean' }, out: { type: 'string' }, paths: { type: 'string' }, workloads: { type: 'string' },
      rounds: { type: 'string' }, seconds: { type: 'string' }, hold: { type: 'string' }, prefix: { type: 'string' },
      profile: { type: 'string' }, 'state-prefix': { type: 'string' }, 'pid-file': { type: 'string' }, 'no-access-log': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npm run bench -- [--quick|--smoke] [--out FILE] [--paths direct,ambitL4,ambitL7,ambitIngress,stunnel,haproxyL4,haproxyL7] [--workloads throughput,keepalive,newconns,fixed1k] [--rounds N] [--seconds S] [--hold N] [--prefix P] [--profile DIR] [--state-prefix NAME] [--pid-file FILE] [--no-access-log]\n  --state-prefix NAME  mkdtemp prefix of the cluster state dir (default ambit-bench-state-)\n  --pid-file FILE      append "<pid> <starttime> <name>" of every process the run started\n  --no-access-log      a mesh-wide Telemetry turns the waypoint access log off\nSee bench/README.md.\n');
    return 0;
  }
  const mode: SuiteMode = values.smoke ? 'smoke' : values.quick ? 'quick' : 'full';
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  await runSuite({
    mode,
    out: resolve(values.out ?? join(ROOT, 'bench', 'results', `suite-${mode}-${stamp}.json`)),
    paths: values.paths?.split(',').map((s) => s.trim()).filter(Boolean),
    workloads: values.workloads?.split(',').map((s) => s.trim()).filter(Boolean) as Workload[] | undefined,
    rounds: num(values.rounds), seconds: num(values.seconds), holdConnections: num(values.hold),
    prefix: values.prefix,
    profileDir: values.profile ? resolve(values.profile) : undefined,
    stateDirPrefix: values['state-prefix'],
    pidFile: values['pid-file'] ? resolve(values['pid-file']) : undefined,
    accessLog: !values['no-access-log'],
  });
  return 0;
}

main().then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
