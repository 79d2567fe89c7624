// `ambit install`, `ambit uninstall` (Kubernetes) and the node-side `ambit x cni-cleanup`.
import { sleep } from '../../core/clock.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { AmbitError } from '../../core/errors.js';
import { MeshCA } from '../../identity/ca.js';
import { loadKubeConfig } from '../../kubernetes/kube-client.js';
import { applyObjects, checkGatewayApi, deleteObjects } from '../../kubernetes/install/apply.js';
import { cleanupNode } from '../../kubernetes/install/cni-cleanup.js';
import { cniCleanup, installManifests, installObjects, NODE_AGENT } from '../../kubernetes/install/manifests.js';
import { renderJson, renderYaml } from '../../kubernetes/install/render.js';
import { resolveValues, type InstallValues } from '../../kubernetes/install/values.js';
import { messageOf } from '../../kubernetes/informers.js';
import { list, parseCommandArgs, usageError, type CliIO, type Command } from '../command.js';
import { CNI_CLEANUP, INSTALL, UNINSTALL } from './specs.js';

const SETTINGS = `Settings (a values file with -f, and --set key=value; defaults shown):
  namespace: istio-system            the install namespace (also the mesh's root namespace)
  trustDomain: cluster.local
  image: {repository: ambit, tag: 0.1.0, pullPolicy: IfNotPresent}
                                     one image for every component (see Containerfile)
  controlPlane:
    replicas: 1                      (a PodDisruptionBudget keeps one when more)
    certTtlSeconds: 86400            workload certificate lifetime (600 .. 30 days)
    waypoints: true                  make a Deployment for each waypoint Gateway
    resources: {requests: {cpu: 500m, memory: 512Mi}, limits: {memory: 2Gi}}
  ztunnel: {resources: ...}
  nodeAgent: {resources: ...}
  cni: {binDir: /opt/cni/bin, confDir: /etc/cni/net.d}
                                     where the node's CNI plugins and configuration live`;

async function values(io: CliIO, v: { values?: string; set?: (string | boolean)[] | string | boolean }): Promise<InstallValues> {
  const file = v.values;
  const text = file ? await readFile(join(io.cwd, file), 'utf8').catch((e: unknown) => { throw new AmbitError('AMBIT_ERR_CONFIG_READ', `cannot read ${file}: ${messageOf(e)}`); }) : undefined;
  return resolveValues(text, list(v.set), file ?? 'values');
}

const ACCESS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  values: { type: 'string', short: 'f' },
  set: { type: 'string', multiple: true },
} as const;

function kubeAccess(io: CliIO, v: { kubeconfig?: string; context?: string }) {
  return loadKubeConfig({ kubeconfig: v.kubeconfig ?? io.env.KUBECONFIG?.split(':')[0] ?? (io.env.KUBERNETES_SERVICE_HOST ? undefined : join(io.env.HOME ?? '/root', '.kube/config')), context: v.context });
}

export const installCommand: Command = {
  ...INSTALL,
  help: `Usage: ambit install [--dry-run -o yaml|json] [-f values.yaml] [--set key=value...]
                     [--kubeconfig FILE] [--context NAME] [--ca DIR]

Installs Ambit's ambient mode on a Kubernetes cluster, like
\`istioctl install --set profile=ambient\`: the namespace, CustomResourceDefinitions for the
Istio kinds Ambit serves (generated from the same schemas \`ambit validate\` checks), least-
privilege RBAC, the control plane (Deployment, Service, PodDisruptionBudget; xDS and the CA
on 15012 over TLS, monitoring on 15014), the ztunnel DaemonSet, the node agent DaemonSet
(copies ambit-cni into the node's CNI bin directory and chains it into the node's first
.conflist), and the GatewayClass istio-waypoint. Objects are server-side applied (field
manager ambit-install); running it again updates them.

The Gateway API CRDs (gateway.networking.k8s.io v1) are a prerequisite, as for Istio; install
checks them first. The mesh CA is the Secret cacerts in the namespace (Istio's layout): when
it is missing, install creates it from --ca DIR, or from a new root CA (\`ambit ca init\`).

  --dry-run             print the manifests instead of applying them (no cluster needed)
  -o, --output FORMAT   yaml (default) or json, with --dry-run
  -f, --values FILE     settings (YAML)
  --set KEY=VALUE       one setting (repeatable; a.b=c; true/false and numbers are typed)
  --kubeconfig FILE     default: $KUBECONFIG, ~/.kube/config, or the in-cluster config
  --context NAME        a kubeconfig context
  --ca DIR              the CA for the cacerts Secret when it does not exist yet

${SETTINGS}

Examples:
  ambit install --dry-run -o yaml > ambit.yaml
  ambit install --set image.repository=registry.example/ambit --set image.tag=0.1.0
`,
  async run(argv, io) {
    const { values: v } = parseCommandArgs(this, argv, { ...ACCESS, 'dry-run': { type: 'boolean', default: false }, output: { type: 'string', short: 'o' }, ca: { type: 'string' } });
    if (v.output && !v['dry-run']) throw usageError(this, '-o goes with --dry-run');
    if (v.output && v.output !== 'yaml' && v.output !== 'json') throw usageError(this, `-o ${v.output}: use yaml or json`);
    const vals = await values(io, v);
    if (v['dry-run']) {
      const objs = installManifests(vals);
      io.out(v.output === 'json' ? renderJson(objs) : renderYaml(objs, `Ambit ambient install (namespace ${vals.namespace}, image ${vals.image.repository}:${vals.image.tag}).\nPrerequisite: the Gateway API CRDs. The mesh CA: Secret cacerts in ${vals.namespace} (ambit ca init; kubectl create secret generic cacerts -n ${vals.namespace} --from-file=DIR).`));
      return 0;
    }
    const kc = kubeAccess(io, v);
    await checkGatewayApi(kc);
    const objs = installObjects(vals) as k8s.KubernetesObject[];
    await applyObjects(kc, objs.slice(0, 1), io.err);
    await ensureCaSecret(kc, vals.namespace, v.ca, io);
    await applyObjects(kc, objs.slice(1), io.err);
    io.err(`ambit installed in ${vals.namespace}; enrol a namespace: kubectl label namespace NS istio.io/dataplane-mode=ambient\n`);
    return 0;
  },
};

async function ensureCaSecret(kc: k8s.KubeConfig, namespace: string, caDir: string | undefined, io: CliIO): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  try {
    await core.readNamespacedSecret({ name: 'cacerts', namespace });
    io.err(`Secret ${namespace}/cacerts exists; the mesh keeps its CA\n`);
    return;
  } catch (e: unknown) {
    if ((e as { code?: number }).code !== 404) throw new AmbitError('AMBIT_ERR_KUBERNETES', `cannot read Secret ${namespace}/cacerts: ${messageOf(e)}`);
  }
  let dir = caDir;
  let made: string | undefined;
  if (!dir) {
    made = await mkdtemp(join(tmpdir(), 'ambit-ca-'));
    await (await MeshCA.create({})).save(made);
    dir = made;
  }
  try {
    const files = ['ca-cert.pem', 'ca-key.pem', 'root-cert.pem', 'cert-chain.pem'];
    const data: Record<string, string> = {};
    for (const f of files) data[f] = Buffer.from(await readFile(join(dir, f))).toString('base64');
    await core.createNamespacedSecret({ namespace, body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'cacerts', namespace, labels: { 'app.kubernetes.io/part-of': 'ambit' } }, type: 'Opaque', data } });
    io.err(`Secret ${namespace}/cacerts created from ${caDir ? caDir : 'a new root CA'}\n`);
  } finally {
    if (made) await rm(made, { recursive: true, force: true });
  }
}

export const uninstallCommand: Command = {
  ...UNINSTALL,
  help: `Usage: ambit uninstall [-f values.yaml] [--set key=value...] [--kubeconfig FILE] [--context NAME]
                       [--keep-crds] [--cni-timeout SECONDS]

Removes what \`ambit install\` made (the same values name the same objects), in reverse
order. First the node agents stop and a short-lived DaemonSet takes ambit-cni out of every
node's CNI configuration and removes the binary (waiting up to --cni-timeout, default 120 s),
so no new pod goes through a plugin whose agent is gone. The CRDs go too (and with them every
Istio object of those kinds) unless --keep-crds. The Secret cacerts and waypoint Deployments
made for Gateways stay (delete the Gateways to remove those).
`,
  async run(argv, io) {
    const { values: v } = parseCommandArgs(this, argv, { ...ACCESS, 'keep-crds': { type: 'boolean', default: false }, 'cni-timeout': { type: 'string', default: '120' } });
    const vals = await values(io, v);
    const kc = kubeAccess(io, v);
    const objs = (installObjects(vals) as k8s.KubernetesObject[]).filter((o) => !(v['keep-crds'] && o.kind === 'CustomResourceDefinition'));
    const agent = objs.find((o) => o.kind === 'DaemonSet' && o.metadata?.name === NODE_AGENT)!;
    await deleteObjects(kc, [agent], io.err);
    await restoreCni(kc, vals, Number(v['cni-timeout']) * 1000, io);
    await deleteObjects(kc, objs.filter((o) => o !== agent), io.err);
    io.err(`ambit uninstalled from ${vals.namespace}\n`);
    return 0;
  },
};

async function restoreCni(kc: k8s.KubeConfig, vals: InstallValues, timeoutMs: number, io: CliIO): Promise<void> {
  const ds = cniCleanup(vals);
  await applyObjects(kc, [ds], io.err);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const cur = await apps.readNamespacedDaemonSet({ name: ds.metadata!.name!, namespace: vals.namespace });
    const s = cur.status;
    if (s && s.desiredNumberScheduled > 0 && s.numberReady >= s.desiredNumberScheduled && (s.observedGeneration ?? 0) >= (cur.metadata?.generation ?? 1)) break;
    if (Date.now() > deadline) {
      io.err(`ambit uninstall: the CNI cleanup did not finish on every node within ${timeoutMs / 1000} s (ready ${s?.numberReady ?? 0}/${s?.desiredNumberScheduled ?? '?'}); check those nodes' ${vals.cni.confDir}\n`);
      break;
    }
    await sleep(1000);
  }
  await deleteObjects(kc, [ds], io.err);
}

export const cniCleanupCommand: Command = {
  ...CNI_CLEANUP,
  help: `Usage: ambit x cni-cleanup --conf-dir DIR --bin-dir DIR [--then-wait]

Removes every ambit-cni entry from the .conflist files in --conf-dir (the rest of each list
is kept) and the ambit-cni binary from --bin-dir. With --then-wait it then writes
/tmp/cni-cleanup-done and waits to be stopped (a DaemonSet pod's readiness).
`,
  async run(argv, io) {
    const { values: v } = parseCommandArgs(this, argv, { 'conf-dir': { type: 'string' }, 'bin-dir': { type: 'string' }, 'then-wait': { type: 'boolean', default: false } });
    if (!v['conf-dir'] || !v['bin-dir']) throw usageError(this, '--conf-dir and --bin-dir are required');
    for (const p of cleanupNode(v['conf-dir'], v['bin-dir'])) io.err(`restored ${p}\n`);
    if (!v['then-wait']) return 0;
    const { writeFile } = await import('node:fs/promises');
    await writeFile('/tmp/cni-cleanup-done', '');
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
    return 0;
  },
};
