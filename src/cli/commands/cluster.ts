// The local cluster: up, down, status, exec, logs (and the daemon `ambit up` starts).
import { sleep } from '../../core/clock.js';
import { spawn } from 'node:child_process';
import { DEFAULT_POD_GID, DEFAULT_POD_UID, sandboxArgv, sandboxEnv } from '../../cluster/pod-sandbox.js';
import { createReadStream, existsSync, statSync, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmbitError } from '../../core/errors.js';
import { Logger } from '../../core/logger.js';
import { ClusterDaemon } from '../../cluster/daemon.js';
import { preflight, prepareState, startDaemon, teardown, writeDaemonPid } from '../../cluster/lifecycle.js';
import { DEFAULT_PREFIX, readSpec, readStatus, stateDirFrom, statePaths, ztunnelAdminHost, type ClusterSpec } from '../../cluster/state-dir.js';
import { podNetnsName } from '../../sys/netns-names.js';
import { OUTSIDE_IP, outsideNetnsName } from '../../cluster/outside-host.js';
import { list, parseCommandArgs, usageError, type CliIO, type Command } from '../command.js';
import { table } from './config-api.js';
import { CLUSTER_DAEMON, DOWN, EXEC, LOGS, STATUS, UP } from './specs.js';

const stateOption = { 'state-dir': { type: 'string' as const } };
const STATE_HELP = '  --state-dir DIR   where the cluster keeps its state (default $AMBIT_STATE_DIR or /var/run/ambit)';

function repoRoot(): string {
  // dist/src/cli/commands/cluster.js -> repo root
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
}

export const upCommand: Command = {
  ...UP,
  help: `Usage: ambit up [--nodes N] [-f PATH...] [--demo]

Creates a cluster on this machine with no Kubernetes: every node and every pod is a Linux
network namespace, nodes hang on a private bridge, pods run their containers' commands
unmodified. Pods are made as a Kubernetes runtime makes them: a sandbox namespace, then the
node's CNI chain (ptp with static IPAM from containernetworking-plugins, then ambit-cni).
A control plane, one node agent and one ztunnel per node run as supervised processes; pods
labelled istio.io/dataplane-mode=ambient (or in such a namespace) are captured by their
node's agent, which hands them to the ztunnel over ZDS. Returns when the cluster is ready.
Needs root.

Options:
  --nodes N       number of nodes, named node-1..node-N (default 2)
  -f, --file PATH config files or directories the control plane watches (repeatable)
  --demo          the bundled demo mesh (examples/demo) and a tour of what to try
  --prefix P      name prefix of the namespaces (default ambit)
  --xds ADDR, --admin ADDR   control plane addresses (default 127.0.0.1:15010, :15014)
  --ztunnel-admin-net NET    ztunnel admin endpoints on NET.<node index> (default 127.0.1)
  --outside                  an "outside" host on the underlay (172.30.0.2) standing for the
                             internet: not in the mesh, the cluster's DNS resolver; on with --demo
  --outside-host NAME        a name the outside resolver answers with the outside host's address
                             (repeatable; --demo adds api.partner.example)
  --dns-capture on|off       the ztunnels' DNS proxy and the pods' port-53 capture (default on)
  --no-node-agent            run no node agents: pods get their network from the CNI chain
                             without ambit-cni; nothing is captured until you run
                             \`ambit node-agent\` yourself (as installing istio-cni later)
${STATE_HELP}
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      nodes: { type: 'string', default: '2' }, file: { type: 'string', short: 'f', multiple: true }, demo: { type: 'boolean' },
      prefix: { type: 'string', default: DEFAULT_PREFIX }, 'trust-domain': { type: 'string', default: 'cluster.local' }, ...stateOption,
      xds: { type: 'string', default: '127.0.0.1:15010' }, admin: { type: 'string', default: '127.0.0.1:15014' },
      'ztunnel-admin-net': { type: 'string', default: '127.0.1' },
      outside: { type: 'boolean' }, 'outside-host': { type: 'string', multiple: true }, 'dns-capture': { type: 'string', default: 'on' }, 'no-node-agent': { type: 'boolean' },
    });
    if (!['on', 'off'].includes(values['dns-capture'])) throw usageError(this, '--dns-capture is on or off');
    // The demo partner's material needs the X.509 library: loaded only for --demo.
    const demoPartner = values.demo ? await import('../../cluster/partner-demo.js') : undefined;
    const outsideHosts = [...list(values['outside-host']), ...(demoPartner ? [demoPartner.DEMO_PARTNER_HOST] : [])];
    const n = Number(values.nodes);
    if (!Number.isInteger(n) || n < 1 || n > 16) throw usageError(this, '--nodes must be 1..16');
    const files = list(values.file).map((f) => resolve(io.cwd, f));
    if (values.demo) files.unshift(resolve(repoRoot(), 'examples', 'demo'));
    const stateDir = resolve(stateDirFrom(values['state-dir'], io.env));
    const started = Date.now();
    const step = (msg: string) => io.err(`  [${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}\n`);
    io.err(`Creating a ${n}-node Ambit cluster (state in ${stateDir})\n`);
    await preflight();
    const spec: ClusterSpec = {
      prefix: values.prefix, nodes: Array.from({ length: n }, (_, i) => `node-${i + 1}`), stateDir, configPaths: files,
      xdsAddress: values.xds, adminAddress: values.admin, ztunnelAdminNet: values['ztunnel-admin-net'],
      ambit: { node: process.execPath, script: resolve(repoRoot(), 'bin', 'ambit.js') },
      createdAt: new Date().toISOString(), trustDomain: values['trust-domain'], nodeAgents: values['no-node-agent'] !== true,
      ...(values.outside || values.demo || outsideHosts.length ? { outside: { ip: OUTSIDE_IP, hosts: [...new Set(outsideHosts)], ...(values.demo ? { demoPartner: true } : {}) } } : {}),
      ...(values['dns-capture'] === 'off' ? { dnsCapture: false } : {}),
    };
    // The demo's partner API: its certificates (a CA of its own) and the Secret the egress waypoint verifies it with.
    if (demoPartner) files.push(await demoPartner.writeDemoPartnerMaterial(stateDir));
    await prepareState(spec);
    step('mesh CA and node credentials created');
    startDaemon(spec);
    let last = '';
    for (;;) {
      const s = await readStatus(stateDir);
      const line = s ? `${s.phase}: ${s.message}` : 'starting';
      if (line !== last) { step(line); last = line; }
      if (s?.phase === 'ready') break;
      if (s?.phase === 'failed') {
        throw new AmbitError('AMBIT_ERR_CLUSTER', `the cluster failed to start: ${s.message}`, { hint: `see ${statePaths(stateDir).logs}/daemon.log and control-plane.log; remove it with \`ambit down\`` });
      }
      if (s?.phase === 'degraded') { io.err(`  cluster is up but degraded: ${s.message}\n`); break; }
      if (Date.now() - started > 180_000) throw new AmbitError('AMBIT_ERR_TIMEOUT', 'the cluster did not become ready in 3 minutes', { hint: `see ${statePaths(stateDir).logs}/daemon.log` });
      await sleep(200);
    }
    io.out(summary(spec, values.demo === true));
    return 0;
  },
};

function summary(spec: ClusterSpec, demo: boolean): string {
  const p = statePaths(spec.stateDir);
  const lines = [
    '',
    `Ambit is up: ${spec.nodes.length} nodes (${spec.nodes.join(', ')}).`,
    `  control plane   xDS+CA ${spec.xdsAddress}   admin http://${spec.adminAddress}/debug/syncz`,
    ...spec.nodes.map((nd, i) => `  ztunnel ${nd.padEnd(7)} metrics http://${ztunnelAdminHost(spec, i + 1)}:15020/metrics   config http://${ztunnelAdminHost(spec, i + 1)}:15000/config_dump`),
    `  logs            ${p.logs}  (ambit logs ztunnel node-1 -f)`,
    `  state           ${spec.stateDir}`,
    '',
    'Next: ambit status   ·   ambit proxy-status   ·   ambit down',
  ];
  if (demo) {
    lines.push('', 'Tour of the demo:',
      '  1. mTLS between pods, transparently (the client is an unmodified curl):',
      '       ambit exec demo/client-0 -- curl -s http://echo/',
      '  2. Both identities in the access log and Istio metrics:',
      '       ambit logs ztunnel node-2 | grep "connection complete" | tail -1',
      `       curl -s http://${ztunnelAdminHost(spec, 2)}:15020/metrics | grep istio_tcp_connections_opened_total`,
      '  3. Only the demo client may reach echo (policy demo/echo-allow-client): from outside the mesh it is refused:',
      '       ambit exec legacy/outsider -- curl -s --max-time 3 http://echo.demo/   # reset',
      '       ambit authz check -f examples/demo --from legacy/outsider --to demo/echo:80',
      '  4. Enrol the other namespace live, without restarting its pod:',
      '       ambit label namespace legacy istio.io/dataplane-mode=ambient',
      '  5. L7 for the demo namespace: a waypoint, then one access-log line per HTTP request:',
      '       ambit waypoint apply -n demo --enroll-namespace',
      '       ambit exec demo/client-0 -- curl -s http://echo/',
      '       ambit logs demo/waypoint-0 | grep "request complete" | tail -1',
      '  6. Egress: the partner API on the outside host (not in the mesh), called as plain HTTP. The DNS',
      '     proxy answers a VIP, the egress waypoint allows GET only and originates TLS to the partner:',
      '       ambit exec demo/client-0 -- getent hosts api.partner.example          # 240.240.0.x',
      '       ambit exec demo/client-0 -- curl -s http://api.partner.example/orders',
      '       ambit exec demo/client-0 -- curl -s -X DELETE http://api.partner.example/orders/1   # RBAC: access denied',
      '       ambit logs egress/egress-waypoint-0 | grep "request complete" | tail -1',
      '  7. Ingress: the gateway ingress/public (a Gateway of class istio) from the outside host, which is not in',
      '     the mesh; the gateway reaches echo over HBONE with its own identity (admitted by echo-allow-client):',
      '       ambit status | grep "ingress gateway"                                  # its address',
      `       ip netns exec ${outsideNetnsName(spec.prefix)} curl -s -H "host: echo.example.com" http://<address>/`,
      '       ambit authz check -f examples/demo --from ingress/public-istio-0 --to demo/echo:80',
      '       ambit logs ingress/public-istio-0 | grep "request complete" | tail -1      # reporter source',
    );
  }
  return lines.join('\n') + '\n';
}

export const downCommand: Command = {
  ...DOWN,
  help: `Usage: ambit down [--prefix P]

Stops the cluster's daemon and every process it started (by PID, verified), removes every
network namespace (and with them links and iptables rules) and DNS file it made, and the
state directory. Safe to run twice and after a crash.

${STATE_HELP}
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, { prefix: { type: 'string' }, ...stateOption });
    const stateDir = resolve(stateDirFrom(values['state-dir'], io.env));
    let prefix = values.prefix ?? DEFAULT_PREFIX;
    try { prefix = values.prefix ?? (await readSpec(stateDir)).prefix; } catch { /* no state: clean by prefix */ }
    if (process.getuid && process.getuid() !== 0) throw new AmbitError('AMBIT_ERR_PERMISSION', 'ambit down needs root', { hint: 'run it with sudo' });
    const r = await teardown(stateDir, prefix);
    io.out(`daemon ${r.daemon}; ${r.processes} process(es) stopped; ${r.namespaces} network namespace(s) removed\n`);
    for (const x of r.refused) io.err(`left alone (not ours any more): ${x}\n`);
    return r.refused.length ? 1 : 0;
  },
};

export const statusCommand: Command = {
  ...STATUS,
  help: `Usage: ambit status [-o table|json]

Nodes' components (control plane, node agents, ztunnels) and pods: IP, node, data plane mode,
whether traffic is captured, and REDIRECTION, the pod's ambient.istio.io/redirection
annotation as its node agent records it ("enabled" while the agent captures it).

${STATE_HELP}
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, { output: { type: 'string', short: 'o', default: 'table' }, ...stateOption });
    const stateDir = resolve(stateDirFrom(values['state-dir'], io.env));
    const spec = await readSpec(stateDir);
    const s = await readStatus(stateDir);
    if (!s) throw new AmbitError('AMBIT_ERR_CLUSTER', 'the cluster daemon has not reported yet', { hint: `see ${statePaths(stateDir).log('daemon')}` });
    if (values.output === 'json') {
      io.out(JSON.stringify({ spec, status: s }, null, 2) + '\n');
      return 0;
    }
    const stale = Date.now() - Date.parse(s.updatedAt) > 10_000;
    io.out(`cluster ${spec.prefix}: ${s.phase}${stale ? ' (daemon not reporting: is it running?)' : ''} — ${s.message}; config version ${s.configVersion}\n`);
    if (s.crypto) io.out(`crypto: FIPS-approved algorithms only (TLS 1.3 AES-GCM, ECDHE P-256/P-384); OpenSSL ${s.crypto.openssl} FIPS provider ${s.crypto.fipsProvider ? 'on' : 'off'}${s.crypto.fipsRequired ? ' (required: --fips)' : ''}\n`);
    io.out(`DNS proxy: ${spec.dnsCapture === false ? 'off' : 'on (pods\' port 53 -> their ztunnel)'}${spec.outside ? `; outside host ${spec.outside.ip} (${outsideNetnsName(spec.prefix)}), its resolver answers ${spec.outside.hosts.join(', ') || 'no names'}` : ''}\n`);
    // Ingress gateways: their replicas' addresses, which the outside host reaches through the nodes.
    for (const p of s.pods.filter((x) => x.mode === 'gateway')) io.out(`ingress gateway ${p.namespace}/${p.name.replace(/-istio-\d+$/, '')}: address ${p.ip} (pod ${p.name})${spec.outside ? `, reachable from the outside host (ip netns exec ${outsideNetnsName(spec.prefix)} curl http://${p.ip}/)` : ''}\n`);
    io.out('\n');
    io.out(table([['COMPONENT', 'STATE', 'RESTARTS', 'PID'], ...s.components.map((c) => [c.name, c.state, String(c.restarts), String(c.pid ?? '-')])]) + '\n');
    io.out(table([['NAMESPACE', 'POD', 'NODE', 'IP', 'MODE', 'CAPTURED', 'REDIRECTION', 'CONTAINERS'],
      ...s.pods.map((p) => [p.namespace, p.name, p.node, p.ip, p.mode, p.captured ? 'yes' : 'no', p.annotations?.['ambient.istio.io/redirection'] ?? '-',
        p.processes.map((x) => `${x.name}:${x.state}${x.restarts ? `(${x.restarts} restarts)` : ''}`).join(' ')])]));
    return s.phase === 'ready' ? 0 : 1;
  },
};

export const execCommand: Command = {
  ...EXEC,
  help: `Usage: ambit exec NS/POD -- COMMAND [ARGS...]

Runs COMMAND in the pod's network namespace with the pod's environment, as the pod's own
processes run: as the pod's user, without capabilities, the cluster's state directory hidden;
its traffic is captured exactly like theirs.

Example:
  ambit exec demo/client-0 -- curl -s http://echo/

${STATE_HELP}
`,
  async run(argv, io) {
    const dash = argv.indexOf('--');
    const before = dash < 0 ? argv : argv.slice(0, dash);
    const command = dash < 0 ? [] : argv.slice(dash + 1);
    const { values, positionals } = parseCommandArgs(this, before, stateOption, true);
    const m = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(positionals[0] ?? '');
    if (!m || command.length === 0) throw usageError(this, 'usage: ambit exec NS/POD -- COMMAND [ARGS...]');
    const stateDir = resolve(stateDirFrom(values['state-dir'], io.env));
    const spec = await readSpec(stateDir);
    const s = await readStatus(stateDir);
    const pod = s?.pods.find((p) => p.namespace === m[1] && p.name === m[2]);
    if (!pod) {
      throw new AmbitError('AMBIT_ERR_NOT_FOUND', `no pod ${m[1]}/${m[2]}`, { hint: `pods: ${(s?.pods ?? []).map((p) => `${p.namespace}/${p.name}`).join(', ') || '(none)'}` });
    }
    const netns = podNetnsName(spec.prefix, pod.namespace, pod.name);
    return await new Promise<number>((resolveCode) => {
      const sandbox = { uid: pod.user?.uid ?? DEFAULT_POD_UID, gid: pod.user?.gid ?? DEFAULT_POD_GID, hide: [stateDir] };
      const child = spawn('ip', ['netns', 'exec', netns, ...sandboxArgv(sandbox, command)], {
        stdio: 'inherit', env: sandboxEnv(sandbox, { TERM: io.env.TERM ?? 'dumb', POD_NAME: pod.name, POD_NAMESPACE: pod.namespace, POD_IP: pod.ip, NODE_NAME: pod.node }),
      });
      child.on('exit', (code, signal) => resolveCode(code ?? (signal ? 128 : 1)));
      child.on('error', (e) => { io.err(`ambit exec: ${e.message}\n`); resolveCode(127); });
    });
  },
};

export const logsCommand: Command = {
  ...LOGS,
  help: `Usage: ambit logs NS/POD [-c CONTAINER] [-f]
       ambit logs ztunnel NODE [-f]
       ambit logs node-agent NODE [-f]
       ambit logs control-plane [-f]
       ambit logs daemon [-f]

${STATE_HELP}
`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(this, argv, { container: { type: 'string', short: 'c' }, follow: { type: 'boolean', short: 'f' }, ...stateOption }, true);
    const stateDir = resolve(stateDirFrom(values['state-dir'], io.env));
    const p = statePaths(stateDir);
    let file: string;
    if (positionals[0] === 'ztunnel' || positionals[0] === 'node-agent') {
      if (!positionals[1]) throw usageError(this, `which node? ambit logs ${positionals[0]} node-1`);
      file = p.log(`${positionals[0]}-${positionals[1]}`);
    } else if (positionals[0] === 'control-plane' || positionals[0] === 'daemon') {
      file = p.log(positionals[0]);
    } else {
      const m = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(positionals[0] ?? '');
      if (!m) throw usageError(this, 'give NS/POD, ztunnel NODE, control-plane or daemon');
      const status = await readStatus(stateDir);
      const pod = status?.pods.find((x) => x.namespace === m[1] && x.name === m[2]);
      if (!pod) throw new AmbitError('AMBIT_ERR_NOT_FOUND', `no pod ${m[1]}/${m[2]}`);
      const container = values.container ?? pod.processes[0]?.name;
      if (!container) throw new AmbitError('AMBIT_ERR_NOT_FOUND', `pod ${m[1]}/${m[2]} has no container`);
      file = p.podLog(m[1]!, m[2]!, container);
    }
    if (!existsSync(file)) throw new AmbitError('AMBIT_ERR_NOT_FOUND', `no log yet at ${file}`);
    io.out(await readFile(file, 'utf8'));
    if (values.follow) await follow(file, io);
    return 0;
  },
};

async function follow(file: string, io: CliIO): Promise<void> {
  let pos = statSync(file).size;
  await new Promise<void>((resolveDone) => {
    const w = watch(file, () => {
      const size = statSync(file).size;
      if (size <= pos) { pos = size; return; }
      createReadStream(file, { start: pos, end: size - 1 }).on('data', (c) => io.out(c.toString())).on('end', () => { pos = size; });
    });
    process.once('SIGINT', () => { w.close(); resolveDone(); });
  });
}

export const clusterDaemonCommand: Command = {
  ...CLUSTER_DAEMON,
  help: `Usage: ambit cluster daemon --state-dir DIR

Started by \`ambit up\`; builds the cluster described in DIR/cluster.json and keeps it in
line with the control plane. Stopped by \`ambit down\` (SIGTERM).
`,
  async run(argv) {
    const { values } = parseCommandArgs(this, argv, stateOption);
    if (!values['state-dir']) throw usageError(this, '--state-dir is required');
    const spec = await readSpec(values['state-dir']);
    await writeDaemonPid(spec.stateDir);
    const daemon = new ClusterDaemon(spec, new Logger({ component: 'cluster-daemon' }));
    const stop = () => void daemon.stop().then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    await daemon.run();
    return 0;
  },
};
