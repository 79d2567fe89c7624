// The cluster daemon: started by `ambit up`, it builds the local cluster and keeps it
// matching the control plane's view of the mesh.
//
//   bring-up: control plane -> network (underlay, nodes) -> one node agent per node -> one
//   ztunnel per node (fed by its agent over ZDS) -> pods
//   then, on every config version: pods added/removed (sandbox through the node's CNI chain,
//   DNS files, containers), sidecars (`ambit sidecar` for sidecar-mode pods), capture of
//   sidecar-mode pods, service routing for non-mesh pods. Ambient capture is the node agents'
//   (they are told by ambit-cni and watch the labels); the daemon shows what they report.
//
// Invariants:
// - The control plane's model is the truth (pod IPs, nodes, modes); the daemon only makes
//   the kernel and the processes agree with it.
// - A pod's containers start only after its CNI ADD succeeded (pod-sandbox.ts): an ambient
//   pod is captured before its first process runs. A failed ADD is retried at the next tick.
// - Sidecar-mode capture: rules go in once the sidecar is ready (or after a wait, failing
//   closed); un-enrolment removes the rules first. Established connections survive both.
// - Everything made is findable again without this process (names carry the prefix, PID
//   files sit in the state directory), so `ambit down` works after a crash.
import { writeFileSync } from 'node:fs';
import { cryptoMode } from '../core/crypto-policy.js';
import { mkdir } from 'node:fs/promises';
import { ensureAdminToken } from '../controlplane/admin-token.js';
import { loadProxyKey, mintProxyToken } from '../controlplane/proxy-credentials.js';
import type { Container } from '../config/resources.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { NodeInfo } from '../model/types.js';
import { podNetnsName } from '../sys/netns-names.js';
import { installCapture, removeCapture } from './capture-rules.js';
import { agentGet } from '../nodeagent/control-api.js';
import { mapLimit } from './netns.js';
import { ensureNodeConfList, nodeDir, PodSandboxes } from './pod-cni.js';
import { startOutside, type OutsideServices } from './outside-services.js';
import { installSourceRouting } from './source-routing.js';
import { removePodDns, writePodDns, type DnsService } from './dns.js';
import { containerPlans, processName, type PodInfo } from './pod-processes.js';
import { preparePodNetns, readableByOthers, sandboxFor } from './pod-sandbox.js';
import { capLogFiles, DEFAULT_MAX_LOG_BYTES } from './log-cap.js';
import { syncServiceRules, type ServiceRule } from './service-proxy.js';
import { statePaths, waypointAdminHost, writeJsonAtomic, ztunnelAdminHost, type ClusterSpec, type ClusterStatusFile, type Phase } from './state-dir.js';
import { Supervisor, type ProcessSpec } from './supervisor.js';
import { createTopology, nodeNetnsName, POD_GATEWAY } from './topology.js';
import { dirname } from 'node:path';
import { AmbitError } from '../core/errors.js';
import { sleep, systemClock } from '../core/clock.js';
import type { ZdsConnectionStatus } from '../nodeagent/zds-server.js';
import { CodeWatch } from './code-watch.js';
import { DaemonApi, MAX_DRAIN_MS, type RestartOutcome } from './daemon-api.js';

export interface MeshStatus {
  version: number;
  nodes: NodeInfo[];
  workloads: (PodInfo & { uid: string; mode: string; waypointOf: { namespace: string; name: string } | null; gatewayOf?: { namespace: string; name: string } | null; servicePorts: Record<string, { servicePort: number; targetPort: number }[]> })[];
  services: { namespace: string; name: string; hostname: string; vip: string | null; ports: { port: number; targetPort: number | string }[]; endpoints: string[] }[];
}

interface PodState {
  info: MeshStatus['workloads'][number];
  netns: string;
  captured: boolean;
  /** Its sidecar process runs (mode sidecar). */
  sidecar: boolean;
  /** What its processes were started from (containers and securityContext), as JSON; '' = not started. */
  containersJson: string;
  /** The containers they were started from. */
  started: Container[];
  problems: string[];
}

const POLL_MS = 300;
/** Pod sandboxes made at once (each runs the CNI chain: ptp, then ambit-cni). */
const SANDBOX_PARALLEL = 8;
/**
 * A replaced ztunnel drains this long by default (Istio's ztunnel gets the pod's 30 s grace);
 * `ambit ztunnel restart --drain-timeout` chooses another. The supervisor enforces it (SIGKILL),
 * so the ztunnel itself is started with the longest drain allowed.
 */
export const ZTUNNEL_DRAIN_MS = 30_000;
const LOG_CHECK_MS = 10_000;

/** The cap on each log file (AMBIT_MAX_LOG_MB, default 50 MiB). */
function maxLogBytes(): number {
  const mb = Number(process.env.AMBIT_MAX_LOG_MB);
  return Number.isFinite(mb) && mb > 0 ? mb * 1024 * 1024 : DEFAULT_MAX_LOG_BYTES;
}

export class ClusterDaemon {
  private readonly paths;
  private readonly supervisor: Supervisor;
  private readonly pods = new Map<string, PodState>();
  /** Waypoint pod uid -> its admin address index. */
  private readonly waypointAdmin = new Map<string, number>();
  private phase: Phase = 'starting';
  private message = 'starting';
  private version = -1;
  private nodes: NodeInfo[] = [];
  private stopping = false;
  private lastError: string | undefined;
  private servicesKey = '';
  private sandboxes: PodSandboxes | undefined;
  /** Some pod's sandbox could not be made: reconcile again even if the version did not change. */
  private retry = false;
  private readonly restarting = new Set<string>();
  private api: DaemonApi | undefined;
  private codeWatch: CodeWatch | undefined;
  /** What each node agent reports, by `ns/name`: captured and annotations. */
  private agentPods = new Map<string, { captured: boolean; annotations: Record<string, string> }>();
  private outside: OutsideServices | undefined;
  private proxyKey: Buffer = Buffer.alloc(0);
  private logsCheckedAt = 0;
  private adminToken = '';

  constructor(private readonly spec: ClusterSpec, private readonly logger: Logger) {
    this.paths = statePaths(spec.stateDir);
    this.supervisor = new Supervisor({
      stateDir: spec.stateDir,
      logger: logger.child({ scope: 'supervisor' }),
      onEvent: (e) => { if (e.type === 'exit') logger.info('process exited', { ...e }); },
    });
  }

  async run(): Promise<void> {
    await mkdir(`${this.paths.logs}/pods`, { recursive: true });
    this.proxyKey = await loadProxyKey(this.paths.proxyKey);
    this.adminToken = await ensureAdminToken(this.paths.adminToken);
    for (const f of [this.spec.ambit.node, this.spec.ambit.script]) {
      if (!readableByOthers(f)) this.logger.warn('pods running built-in apps (ambit app ...) as an unprivileged user cannot read this file', { file: f, hint: 'make the directories on its path world-searchable (chmod o+rx), or run those pods with securityContext.runAsUser: 0' });
    }
    try {
      await this.setPhase('control-plane', 'starting the control plane');
      await this.startControlPlane();
      const first = await this.fetchStatus();
      this.nodes = first.nodes;
      await this.setPhase('network', `creating ${this.nodes.length} nodes`);
      await createTopology({ prefix: this.spec.prefix, nodes: this.nodes });
      if (this.spec.outside) this.outside = await startOutside(this.spec, this.nodes, this.logger);
      this.sandboxes = new PodSandboxes({ prefix: this.spec.prefix, stateDir: this.spec.stateDir, nodes: this.nodes });
      for (const n of this.nodes) ensureNodeConfList(this.spec.stateDir, n.name);
      if (this.spec.nodeAgents !== false) {
        await this.setPhase('node-agents', 'starting one node agent per node');
        await Promise.all(this.nodes.map((n) => this.startNodeAgent(n)));
      }
      await this.setPhase('ztunnels', 'starting one ztunnel per node');
      for (const n of this.nodes) await this.startZtunnel(n);
      await this.setPhase('pods', 'creating pods');
      await this.reconcile(first);
      await this.waitHealthy(60_000);
      this.api = new DaemonApi({ path: `${this.spec.stateDir}/daemon.sock`, restartZtunnel: (node, drainMs, wait) => this.restartZtunnel(node, drainMs, wait) });
      await this.api.listen();
      this.codeWatch = new CodeWatch({ root: dirname(dirname(this.spec.ambit.script)), clock: systemClock, onChange: () => this.upgradeZtunnels() });
      this.codeWatch.start();
    } catch (e: unknown) {
      this.lastError = describeError(e).message;
      await this.setPhase('failed', this.lastError);
      this.logger.error('bring-up failed', { error: this.lastError });
      return;
    }
    while (!this.stopping) {
      try {
        const s = await this.fetchStatus();
        if (s.version !== this.version || this.retry) await this.reconcile(s);
        await this.refreshHealth();
        if (Date.now() - this.logsCheckedAt > LOG_CHECK_MS) {
          this.logsCheckedAt = Date.now();
          for (const f of await capLogFiles(this.paths.logs, maxLogBytes())) this.logger.info('log file over its size cap: kept as .1 and truncated', { file: f });
        }
      } catch (e: unknown) {
        this.lastError = describeError(e).message;
        this.logger.warn('reconcile failed; retrying', { error: this.lastError });
      }
      await sleep(POLL_MS);
    }
  }

  /** Stops the pods' processes, deletes their sandboxes (CNI DEL) while the agents run, then the rest. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.codeWatch?.close();
    this.api?.close();
    this.outside?.close();
    await this.setPhase('stopping', 'stopping processes');
    const podProcesses = this.supervisor.status().filter((p) => p.name.startsWith('pod.') || p.name.startsWith('sidecar.'));
    await Promise.all(podProcesses.map((p) => this.supervisor.stop(p.name, 2000)));
    const sandboxes = this.sandboxes;
    if (sandboxes) await mapLimit(sandboxes.records(), SANDBOX_PARALLEL, (r) => sandboxes.remove(r).catch(() => undefined));
    await this.supervisor.stopAll(3000);
  }

  // ---- ztunnel restarts without a dropped connection ----

  /**
   * Replaces a node's ztunnel: the new one starts beside the old, connects to the node agent
   * and gets the pods with their listening sockets (the same sockets: nothing queued is lost);
   * once the agent reports it synced (serving every pod), the old one is told to stop (it
   * closes its copies of the listeners, drains its connections) and killed after drainMs.
   */
  async restartZtunnel(node: string, drainMs: number, wait: boolean): Promise<RestartOutcome> {
    if (!this.nodes.some((n) => n.name === node)) {
      throw new AmbitError('AMBIT_ERR_NOT_FOUND', `no node ${node}`, { hint: `nodes: ${this.nodes.map((n) => n.name).join(', ')}` });
    }
    if (this.restarting.has(node)) throw new AmbitError('AMBIT_ERR_USAGE', `a restart of ${node}'s ztunnel is already running`);
    this.restarting.add(node);
    try {
      const r = await this.supervisor.replace(`ztunnel-${node}`, { ready: (pid) => this.ztunnelSynced(node, pid), readyTimeoutMs: 60_000, drainMs });
      this.logger.info('ztunnel replaced; the old one drains', { node, oldPid: r.oldPid, newPid: r.newPid, drainMs });
      if (wait) await r.oldExited;
      return { node, oldPid: r.oldPid, newPid: r.newPid, drainMs, ...(wait ? { oldExited: true } : {}) };
    } finally {
      this.restarting.delete(node);
    }
  }

  /** The node agent reports the ztunnel process `pid` connected and serving its snapshot. */
  private async ztunnelSynced(node: string, pid: number): Promise<boolean> {
    const conns = await agentGet<ZdsConnectionStatus[]>(`${nodeDir(this.spec.stateDir, node)}/agent.sock`, '/ztunnels', 2000);
    return conns.some((c) => c.pid === pid && c.state === 'synced');
  }

  /** The ztunnel's code changed on disk: replace each node's ztunnel in turn. */
  private async upgradeZtunnels(): Promise<void> {
    this.logger.info('the ztunnel code changed; replacing the ztunnels one node at a time');
    for (const n of this.nodes) {
      if (this.stopping) return;
      try {
        await this.restartZtunnel(n.name, ZTUNNEL_DRAIN_MS, false);
      } catch (e: unknown) {
        this.logger.warn('ztunnel upgrade failed on a node; it keeps the old one', { node: n.name, error: describeError(e).message });
      }
    }
  }

  // ---- bring-up ----

  private ambitArgs(...args: string[]): { command: string; args: string[] } {
    return { command: this.spec.ambit.node, args: [this.spec.ambit.script, ...args] };
  }

  private async startControlPlane(): Promise<void> {
    const { command, args } = this.ambitArgs('control-plane', '--ca', this.paths.ca, '--node-tokens', this.paths.tokens,
      '--admin-token-file', this.paths.adminToken, '--proxy-key', this.paths.proxyKey,
      '--nodes', String(this.spec.nodes.length), '--xds', this.spec.xdsAddress, '--admin', this.spec.adminAddress,
      '--trust-domain', this.spec.trustDomain, ...this.spec.configPaths.flatMap((p) => ['-f', p]));
    await this.supervisor.spawn({ name: 'control-plane', command, args, logFile: this.paths.log('control-plane'), restart: 'always', backoff: { initialMs: 500, maxMs: 10_000 } });
    await waitUntil(async () => (await fetchOk(`http://${this.spec.adminAddress}/ready`)), 30_000, 'the control plane did not become ready (see logs/control-plane.log)');
  }

  /**
   * The node agent (Istio's istio-cni agent) of a node: it puts ambit-cni into the node's CNI
   * chain and listens for it; ready once its control socket answers.
   */
  private async startNodeAgent(n: NodeInfo): Promise<void> {
    const dir = nodeDir(this.spec.stateDir, n.name);
    const conflist = ensureNodeConfList(this.spec.stateDir, n.name);
    const { command, args } = this.ambitArgs('node-agent', '--node', n.name, '--dir', dir, '--control-plane', `http://${this.spec.adminAddress}`,
      '--admin-token-file', this.paths.adminToken, '--cni-conf', conflist, '--node-netns', `/var/run/netns/${nodeNetnsName(this.spec.prefix, n.name)}`,
      '--dns-capture', this.spec.dnsCapture === false ? 'off' : 'on');
    await this.supervisor.spawn({ name: `node-agent-${n.name}`, command, args, logFile: this.paths.log(`node-agent-${n.name}`), restart: 'always', backoff: { initialMs: 200, maxMs: 5_000 } });
    await waitUntil(() => agentGet(`${dir}/agent.sock`, '/healthz').then(() => true, () => false), 30_000, `the node agent of ${n.name} did not start (see logs/node-agent-${n.name}.log)`);
  }

  private async startZtunnel(n: NodeInfo): Promise<void> {
    const { command, args } = this.ztunnelCommand(n);
    // Profiling hook (bench/README.md): extra node flags for the ztunnels only, e.g. AMBIT_ZTUNNEL_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/p'.
    const nodeArgs = (process.env.AMBIT_ZTUNNEL_NODE_ARGS ?? '').split(' ').filter(Boolean);
    await this.supervisor.spawn({ name: `ztunnel-${n.name}`, command, args: [...nodeArgs, ...args], logFile: this.paths.log(`ztunnel-${n.name}`), restart: 'always', backoff: { initialMs: 200, maxMs: 5_000 } });
  }

  /** A node's ztunnel: pods from its node agent (ZDS), admin endpoints shareable with a successor. */
  private ztunnelCommand(n: NodeInfo): { command: string; args: string[] } {
    const host = ztunnelAdminHost(this.spec, n.index);
    return this.ambitArgs('ztunnel', '--node', n.name, '--xds', this.spec.xdsAddress,
      '--token-file', this.paths.tokenFile(n.name), '--root-cert', this.paths.root, '--zds', `${nodeDir(this.spec.stateDir, n.name)}/ztunnel.sock`,
      '--admin', `${host}:15000`, '--metrics', `${host}:15020`, '--readiness', `${host}:15021`, '--admin-reuse-port',
      '--drain-ms', String(MAX_DRAIN_MS), '--trust-domain', this.spec.trustDomain,
      '--dns-capture', this.spec.dnsCapture === false ? 'off' : 'on', ...(this.spec.outside ? ['--dns-upstream', this.spec.outside.ip] : []));
  }

  /**
   * A waypoint replica runs `ambit waypoint` in the node's namespace (it reaches the control
   * plane there, like the ztunnel) with its listeners and upstream sockets made inside its
   * pod's namespace; its own credential (proxyToken) authenticates it. Admin/metrics on NET.<200+k>:15020.
   */
  private waypointSpec(w: MeshStatus['workloads'][number], netns: string, base: ProcessSpec): ProcessSpec {
    const k = this.adminIndex(w.uid);
    const { command, args } = this.ambitArgs('waypoint', '--gateway', `${w.waypointOf!.namespace}/${w.waypointOf!.name}`,
      '--netns', netns, '--pod-ip', w.ip, '--node', w.node, '--service-account', w.serviceAccount,
      '--xds', this.spec.xdsAddress, '--token-file', this.proxyToken(w), '--root-cert', this.paths.root,
      '--admin', `${waypointAdminHost(this.spec, k)}:15020`, '--trust-domain', this.spec.trustDomain,
      ...(this.spec.outside ? ['--dns-upstream', this.spec.outside.ip] : []));
    // Profiling hook, as for the ztunnels: AMBIT_WAYPOINT_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/p'.
    const nodeArgs = (process.env.AMBIT_WAYPOINT_NODE_ARGS ?? '').split(' ').filter(Boolean);
    return { ...base, command, args: [...nodeArgs, ...args], netns: undefined, sandbox: undefined, backoff: { initialMs: 200, maxMs: 5_000 } };
  }

  /** An ingress gateway replica: `ambit gateway`, placed and credentialed like a waypoint replica. */
  private gatewaySpec(w: MeshStatus['workloads'][number], netns: string, base: ProcessSpec): ProcessSpec {
    const { command, args } = this.ambitArgs('gateway', '--gateway', `${w.gatewayOf!.namespace}/${w.gatewayOf!.name}`,
      '--netns', netns, '--pod-ip', w.ip, '--node', w.node, '--service-account', w.serviceAccount,
      '--xds', this.spec.xdsAddress, '--token-file', this.proxyToken(w), '--root-cert', this.paths.root,
      '--admin', `${waypointAdminHost(this.spec, this.adminIndex(w.uid))}:15020`, '--trust-domain', this.spec.trustDomain);
    const nodeArgs = (process.env.AMBIT_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
    return { ...base, command, args: [...nodeArgs, ...args], netns: undefined, sandbox: undefined, backoff: { initialMs: 200, maxMs: 5_000 } };
  }

  // ---- reconcile ----

  private async reconcile(s: MeshStatus): Promise<void> {
    const desired = new Map(s.workloads.map((w) => [w.uid, w]));
    // Removed or moved pods.
    for (const [uid, st] of [...this.pods]) {
      const w = desired.get(uid);
      if (!w || w.ip !== st.info.ip || w.node !== st.info.node) await this.removePodNow(uid, st);
    }
    // New pods: a sandbox each through the node's CNI chain (the agent captures ambient ones
    // during ADD), then DNS, processes, sidecar capture. A pod whose ADD failed waits for the
    // next tick.
    const fresh = s.workloads.filter((w) => !this.pods.has(w.uid));
    this.retry = false;
    const made = await mapLimit(fresh, SANDBOX_PARALLEL, async (w) => {
      try {
        await this.sandboxes!.create({ node: w.node, namespace: w.namespace, name: w.name, ip: w.ip });
        // Before any proxy serves it: proxies connect to apps with the client's address.
        const netns = podNetnsName(this.spec.prefix, w.namespace, w.name);
        await installSourceRouting(netns);
        await preparePodNetns(netns);
        return true;
      } catch (e: unknown) {
        this.retry = true;
        this.logger.warn('pod sandbox not created; retrying', { pod: `${w.namespace}/${w.name}`, error: describeError(e).message });
        return false;
      }
    });
    fresh.forEach((w, i) => {
      if (made[i]) this.pods.set(w.uid, { info: w, netns: podNetnsName(this.spec.prefix, w.namespace, w.name), captured: false, sidecar: false, containersJson: '', started: [], problems: [] });
    });
    await this.syncDns(s, fresh.length > 0);
    for (const w of s.workloads) {
      const st = this.pods.get(w.uid);
      if (!st) continue;
      st.info = w;
      await this.syncSidecar(st);
      const containersJson = JSON.stringify([w.containers, w.securityContext ?? null]);
      if (st.containersJson !== containersJson) {
        for (const c of st.started) await this.supervisor.stop(processName(w, c.name), 3000);
        st.containersJson = containersJson;
        st.started = w.containers;
        st.problems = [];
        for (const plan of containerPlans(w, st.netns, this.spec.ambit, (c) => this.paths.podLog(w.namespace, w.name, c), [this.spec.stateDir])) {
          if (plan.ok && w.waypointOf) await this.supervisor.spawn(this.waypointSpec(w, st.netns, plan.spec));
          else if (plan.ok && w.gatewayOf) await this.supervisor.spawn(this.gatewaySpec(w, st.netns, plan.spec));
          else if (plan.ok) await this.supervisor.spawn(plan.spec);
          else {
            st.problems.push(`${plan.container}: ${plan.reason}`);
            this.logger.error('container cannot run', { pod: `${w.namespace}/${w.name}`, container: plan.container, reason: plan.reason });
          }
        }
      }
    }
    await Promise.all(s.workloads.filter((w) => this.pods.has(w.uid)).map((w) => this.syncCapture(this.pods.get(w.uid)!)));
    const rules = serviceRules(s);
    await Promise.all(this.nodes.map((n) => syncServiceRules(this.spec.prefix, n.name, rules)));
    this.version = s.version;
    this.logger.info('reconciled', { version: s.version, pods: this.pods.size });
    await this.writeStatus();
  }

  /**
   * Adding or removing a pod's sidecar restarts that pod, as injection does in Istio: its
   * containers stop, the capture rules go, the sidecar starts (or stops), and the containers
   * start again (the caller's loop, seeing no containers) with capture installed once the new
   * proxy serves the pod. No other pod is touched.
   */
  private async syncSidecar(st: PodState): Promise<void> {
    const w = st.info;
    const want = w.mode === 'sidecar' && !w.waypointOf;
    if (want === st.sidecar) return;
    if (st.containersJson) {
      for (const c of st.started) await this.supervisor.stop(processName(w, c.name), 3000);
      st.containersJson = '';
      st.started = [];
    }
    if (st.captured) {
      await removeCapture(st.netns);
      st.captured = false;
    }
    if (st.sidecar) await this.supervisor.stop(sidecarProcessName(w), 3000);
    if (want) await this.supervisor.spawn(this.sidecarSpec(w, st.netns));
    st.sidecar = want;
    this.logger.info(want ? 'pod restarted with a sidecar' : 'pod restarted without its sidecar', { pod: `${w.namespace}/${w.name}`, mode: w.mode });
  }

  /** `ambit sidecar` for a sidecar-mode pod: like a waypoint replica, in the node's namespace. */
  private sidecarSpec(w: MeshStatus['workloads'][number], netns: string): ProcessSpec {
    const k = this.adminIndex(w.uid);
    const { command, args } = this.ambitArgs('sidecar', '--pod', `${w.namespace}/${w.name}`,
      '--netns', netns, '--pod-ip', w.ip, '--node', w.node, '--service-account', w.serviceAccount,
      '--xds', this.spec.xdsAddress, '--token-file', this.proxyToken(w), '--root-cert', this.paths.root,
      '--admin', `${waypointAdminHost(this.spec, k)}:15020`, '--trust-domain', this.spec.trustDomain, '--labels', JSON.stringify(w.labels));
    const nodeArgs = (process.env.AMBIT_SIDECAR_NODE_ARGS ?? '').split(' ').filter(Boolean);
    return {
      name: sidecarProcessName(w), command, args: [...nodeArgs, ...args], logFile: this.paths.podLog(w.namespace, w.name, 'istio-proxy'),
      restart: 'always', backoff: { initialMs: 200, maxMs: 5_000 },
    };
  }

  /** A credential for the proxy of one pod (waypoint replica, sidecar): it gets that pod's identity only. */
  private proxyToken(w: { namespace: string; name: string }): string {
    const file = this.paths.proxyTokenFile(w.namespace, w.name);
    writeFileSync(file, mintProxyToken(this.proxyKey, w) + '\n', { mode: 0o600 });
    return file;
  }

  private adminIndex(uid: string): number {
    let k = this.waypointAdmin.get(uid);
    if (k === undefined) {
      k = this.waypointAdmin.size + 1;
      this.waypointAdmin.set(uid, k);
    }
    return k;
  }

  /** Capture of sidecar-mode pods (the injection path). Ambient pods are the node agents'. */
  private async syncCapture(st: PodState): Promise<void> {
    const want = st.info.mode === 'sidecar' && !st.info.waypointOf;
    if (want === st.captured) return;
    if (want) {
      const host = waypointAdminHost(this.spec, this.adminIndex(st.info.uid));
      const ready = await waitUntil(() => fetchOk(`http://${host}:15020/healthz/ready`), 10_000, '').then(() => true, () => false);
      if (!ready) this.logger.warn('the sidecar is not ready yet; capturing anyway (its connections fail closed until it is)', { pod: `${st.info.namespace}/${st.info.name}` });
    }
    // A sidecar pod's DNS is not captured: its ztunnel does not serve it, and no sidecar listens on 15053.
    if (want) await installCapture(st.netns, { dns: this.spec.dnsCapture === false || st.info.mode === 'sidecar' ? false : undefined });
    else await removeCapture(st.netns);
    st.captured = want;
    this.logger.info(want ? 'pod enrolled: traffic captured' : 'pod un-enrolled: capture removed', { pod: `${st.info.namespace}/${st.info.name}` });
  }

  private async syncDns(s: MeshStatus, force: boolean): Promise<void> {
    const services: DnsService[] = s.services.filter((x) => x.vip).map((x) => ({ namespace: x.namespace, name: x.name, vip: x.vip! }));
    const pods = s.workloads.map((w) => ({ namespace: w.namespace, name: w.name, ip: w.ip }));
    const key = JSON.stringify([services, pods]);
    if (!force && key === this.servicesKey) return;
    this.servicesKey = key;
    await Promise.all([...this.pods.values()].map((st) => writePodDns({
      prefix: this.spec.prefix, netns: st.netns, namespace: st.info.namespace, name: st.info.name, ip: st.info.ip, services, pods,
      ...podNameserver(this.spec),
    })));
  }

  private async removePodNow(uid: string, st: PodState): Promise<void> {
    for (const c of st.info.containers) await this.supervisor.stop(processName(st.info, c.name), 3000);
    if (st.sidecar) await this.supervisor.stop(sidecarProcessName(st.info), 3000);
    await this.sandboxes!.remove({ namespace: st.info.namespace, name: st.info.name });
    await removePodDns({ netns: st.netns });
    this.pods.delete(uid);
    this.logger.info('pod removed', { pod: `${st.info.namespace}/${st.info.name}` });
  }

  // ---- health and status ----

  private async waitHealthy(timeoutMs: number): Promise<void> {
    await waitUntil(async () => {
      await this.refreshHealth();
      return this.phase === 'ready';
    }, timeoutMs, 'the cluster did not become ready').catch(async () => {
      await this.setPhase('degraded', this.message);
    });
  }

  private async refreshHealth(): Promise<void> {
    // Without node agents (--no-node-agent) a ztunnel has no pods to serve until a person runs
    // one: it counts as ready when it runs.
    const ztunnels = await Promise.all(this.nodes.map(async (n) => this.spec.nodeAgents === false || fetchOk(`http://${ztunnelAdminHost(this.spec, n.index)}:15021/healthz/ready`)));
    await this.refreshAgentPods();
    const procs = this.supervisor.status();
    const down = procs.filter((p) => p.state !== 'running').map((p) => p.name);
    const problems = [...this.pods.values()].flatMap((p) => p.problems);
    const notReady = this.nodes.filter((_, i) => !ztunnels[i]).map((n) => `ztunnel-${n.name}`);
    if (down.length === 0 && notReady.length === 0 && problems.length === 0) {
      await this.setPhase('ready', `${this.nodes.length} nodes, ${this.pods.size} pods`);
    } else if (this.phase === 'ready' || this.phase === 'degraded') {
      await this.setPhase('degraded', [...down.map((d) => `${d} not running`), ...notReady.map((z) => `${z} not ready`), ...problems].join('; '));
    } else {
      this.message = [...down, ...notReady].join(', ') || this.message;
      await this.writeStatus();
    }
  }

  /** What the node agents say about their pods (captured, `ambient.istio.io/redirection`). */
  private async refreshAgentPods(): Promise<void> {
    const next = new Map<string, { captured: boolean; annotations: Record<string, string> }>();
    await Promise.all(this.nodes.map(async (n) => {
      try {
        const pods = await agentGet<Array<{ namespace: string; name: string; captured: boolean; annotations: Record<string, string> }>>(`${nodeDir(this.spec.stateDir, n.name)}/agent.sock`, '/pods', 2000);
        for (const p of pods) next.set(`${p.namespace}/${p.name}`, { captured: p.captured, annotations: p.annotations });
      } catch {
        // an agent away: keep what it said last
        for (const [k, v] of this.agentPods) if (!next.has(k)) next.set(k, v);
      }
    }));
    this.agentPods = next;
  }

  private async setPhase(phase: Phase, message: string): Promise<void> {
    const changed = phase !== this.phase || message !== this.message;
    this.phase = phase;
    this.message = message;
    if (changed) this.logger.info('phase', { phase, message });
    await this.writeStatus();
  }

  private async writeStatus(): Promise<void> {
    const procs = new Map(this.supervisor.status().map((p) => [p.name, p]));
    const status: ClusterStatusFile = {
      crypto: cryptoMode(),
      phase: this.phase,
      message: this.message,
      updatedAt: new Date().toISOString(),
      configVersion: this.version,
      pods: [...this.pods.values()].map((st) => ({
        namespace: st.info.namespace, name: st.info.name, node: st.info.node, ip: st.info.ip, mode: st.info.waypointOf ? 'waypoint' : st.info.gatewayOf ? 'gateway' : st.info.mode,
        captured: st.info.mode === 'sidecar' ? st.captured : (this.agentPods.get(`${st.info.namespace}/${st.info.name}`)?.captured ?? false),
        annotations: this.agentPods.get(`${st.info.namespace}/${st.info.name}`)?.annotations ?? {},
        user: podUser(st.info),
        processes: st.info.containers.map((c) => {
          const p = procs.get(processName(st.info, c.name));
          return { name: c.name, state: p?.state ?? (st.problems.length ? 'cannot-run' : 'pending'), restarts: p?.restarts ?? 0, pid: p?.pid };
        }),
      })),
      components: [...procs.values()].filter((p) => !p.name.startsWith('pod.')).map((p) => ({ name: p.name, state: p.state, restarts: p.restarts, pid: p.pid, log: p.logFile })),
      error: this.lastError,
    };
    await writeJsonAtomic(this.paths.status, status);
  }

  private async fetchStatus(): Promise<MeshStatus> {
    const res = await fetch(`http://${this.spec.adminAddress}/api/status`, { signal: AbortSignal.timeout(10_000), headers: { authorization: `Bearer ${this.adminToken}` } });
    if (!res.ok) throw new Error(`the control plane answered ${res.status} to /api/status`);
    return (await res.json()) as MeshStatus;
  }
}

/** The user `ambit exec` runs as in a pod: its first container's (waypoints: root, they are ours). */
function podUser(w: MeshStatus['workloads'][number]): { uid: number; gid: number } {
  const s = sandboxFor(w.securityContext ?? undefined, w.containers[0]?.securityContext, []);
  return w.waypointOf || w.gatewayOf || !s.ok ? { uid: 0, gid: 0 } : { uid: s.sandbox.uid, gid: s.sandbox.gid };
}

export function sidecarProcessName(pod: { namespace: string; name: string }): string {
  return `sidecar.${pod.namespace}.${pod.name}`.replace(/[^a-zA-Z0-9._-]/g, '_');
}

export function serviceRules(s: MeshStatus): ServiceRule[] {
  const byUid = new Map(s.workloads.map((w) => [w.uid, w]));
  return s.services.filter((x) => x.vip).map((svc) => ({
    vip: svc.vip!,
    name: `${svc.namespace}/${svc.name}`,
    ports: svc.ports.map((p) => ({
      port: p.port,
      endpoints: svc.endpoints.flatMap((uid) => {
        const w = byUid.get(uid);
        const target = w?.servicePorts[`${svc.namespace}/${svc.hostname}`]?.find((x) => x.servicePort === p.port)?.targetPort;
        return w && target ? [{ ip: w.ip, port: target }] : [];
      }),
    })),
  }));
}

async function fetchOk(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await r.text();
    return r.ok;
  } catch {
    return false;
  }
}

export async function waitUntil(cond: () => Promise<boolean> | boolean, timeoutMs: number, message: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(message || 'timed out');
    await sleep(100);
  }
}

/**
 * The nameserver of a pod's resolv.conf: the outside host's resolver when there is one; else,
 * with the DNS proxy on, an address that is not loopback (the pod's gateway), so an enrolled
 * pod's queries are captured and its ztunnel answers Services and ServiceEntry hosts (and fails
 * the rest at once: there is no upstream), while an un-enrolled pod's are refused by the node at
 * once; with the proxy off, loopback (nothing listens: unknown names fail at once).
 */
function podNameserver(spec: ClusterSpec): { nameserver?: string } {
  if (spec.outside) return { nameserver: spec.outside.ip };
  return spec.dnsCapture === false ? {} : { nameserver: POD_GATEWAY };
}
