// A pod's containers as supervised processes: `command` + `args` run unmodified inside the
// pod's network namespace, with the pod's environment, in the pod's sandbox (its user, no
// capabilities, the cluster's state hidden: pod-sandbox.ts). `ambit ...` means this Ambit (so
// the built-in apps work without installation); a container with only an image runs the
// image's Ambit equivalent when there is one (ambit/echo), else it cannot run here.
import type { Container, SecurityContext } from '../config/resources.js';
import { sandboxFor } from './pod-sandbox.js';
import type { ProcessSpec } from './supervisor.js';

export interface PodInfo {
  namespace: string;
  name: string;
  node: string;
  ip: string;
  serviceAccount: string;
  labels: Record<string, string>;
  containers: Container[];
  securityContext?: SecurityContext | null;
}

const BUILTIN_IMAGES: Record<string, string[]> = {
  'ambit/echo': ['ambit', 'app', 'echo', '--port', '8080'],
};

export type ContainerPlan = { ok: true; spec: ProcessSpec } | { ok: false; container: string; reason: string };

/** `hide`: paths the pod's processes must not see (the cluster's state directory). */
export function containerPlans(pod: PodInfo, netns: string, ambit: { node: string; script: string }, logFile: (container: string) => string, hide: readonly string[]): ContainerPlan[] {
  return pod.containers.map((c): ContainerPlan => {
    const sandbox = sandboxFor(pod.securityContext ?? undefined, c.securityContext, hide);
    if (!sandbox.ok) return { ok: false, container: c.name, reason: sandbox.reason };
    let argv = [...(c.command ?? []), ...(c.args ?? [])];
    if (!c.command?.length) {
      const builtin = c.image ? BUILTIN_IMAGES[c.image.split(':')[0]!] : undefined;
      if (!builtin) {
        return { ok: false, container: c.name, reason: `image "${c.image ?? ''}" cannot run on the local cluster; give the container a command (e.g. ["python3", "-m", "http.server", "8080"])` };
      }
      argv = [...builtin, ...(c.args ?? [])];
    }
    if (argv[0] === 'ambit') argv = [ambit.node, ambit.script, ...argv.slice(1)];
    const env: Record<string, string> = {
      POD_NAME: pod.name,
      POD_NAMESPACE: pod.namespace,
      POD_IP: pod.ip,
      NODE_NAME: pod.node,
      SERVICE_ACCOUNT: pod.serviceAccount,
      POD_LABELS: JSON.stringify(pod.labels),
      HOSTNAME: pod.name,
    };
    for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
    return {
      ok: true,
      spec: {
        name: processName(pod, c.name),
        command: argv[0]!,
        args: argv.slice(1),
        env,
        netns,
        sandbox: sandbox.sandbox,
        cwd: c.workingDir,
        logFile: logFile(c.name),
        restart: 'always',
        backoff: { initialMs: 500, maxMs: 30_000, resetAfterMs: 10_000 },
      },
    };
  });
}

export function processName(pod: { namespace: string; name: string }, container: string): string {
  return `pod.${pod.namespace}.${pod.name}.${container}`.replace(/[^a-zA-Z0-9._-]/g, '_');
}
