// `ambit node-agent`: the per-node agent that captures enrolled pods and hands them to the
// node's ztunnel (src/nodeagent/node-agent.ts).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { systemClock } from '../../core/clock.js';
import { Logger } from '../../core/logger.js';
import { NodeAgent } from '../../nodeagent/node-agent.js';
import type { PodSource } from '../../nodeagent/pod-source.js';
import { parseCommandArgs, usageError, type Command } from '../command.js';
import { NODE_AGENT } from './specs.js';

export const nodeAgentCommand: Command = {
  ...NODE_AGENT,
  help: `Usage: ambit node-agent --node NAME --dir DIR --control-plane URL [--cni-conf FILE]
       ambit node-agent --kubernetes [--kubeconfig FILE] [--node NAME] --dir DIR [--cni-conf FILE]

Runs the node agent of one node, as Istio's istio-cni agent: the chained CNI plugin
\`ambit-cni\` tells it about every new pod sandbox; it decides enrolment with the control
plane's labels (istio.io/dataplane-mode on the pod or its namespace; kube-system never),
installs the in-pod capture rules, holds the pod's listening sockets on 15001/15006/15008 and
hands the pod's network namespace (and those sockets) to the node's ztunnel over ZDS. Label
changes capture or release running pods without a restart. Needs root.

Where it learns the pods of its node and their namespaces' labels:
  local cluster (--control-plane)  polls the control plane's admin API (needs its token)
  Kubernetes (--kubernetes)        watches the API server as Istio's node agent does: Pods
                                   with spec.nodeName=NODE and Namespaces (list, watch with
                                   bookmarks, relist on 410 Gone, back-off). It needs get, list,
                                   watch on pods and namespaces and patch on pods: it marks each
                                   captured pod with ambient.istio.io/redirection=enabled and
                                   removes the mark when it releases the pod.

Options:
  --node NAME            the node it serves (pods with spec.nodeName NAME); with --kubernetes
                         the NODE_NAME environment variable by default (the downward API)
  --dir DIR              its sockets and records: DIR/cni.sock (ambit-cni), DIR/ztunnel.sock
                         (ZDS, SOCK_SEQPACKET), DIR/agent.sock (GET /pods, /ztunnels), DIR/pods/
  --control-plane URL    the control plane's admin API, e.g. http://127.0.0.1:15014
  --admin-token-file F   the admin API's bearer token (\`ambit up\` keeps it in its state dir)
  --kubernetes           read pods and namespaces from the Kubernetes API (in-cluster config
                         unless --kubeconfig)
  --kubeconfig FILE      a kubeconfig (implies --kubernetes)
  --context NAME         a kubeconfig context
  --cluster-id ID        the mesh's cluster id, first part of workload uids (default Kubernetes)
  --node-netns PATH      the node's network namespace, when the agent runs outside it (the local
                         cluster): pods found without a CNI ADD (they ran before the agent) are
                         looked for only behind this namespace's veths
  --dns-capture on|off   send pods' port-53 traffic to the ztunnel's DNS proxy (default on)
  --cni-conf FILE        the node's CNI network configuration list; ambit-cni is appended to its
                         chain (idempotent) and stays when the agent stops, so no pod starts
                         uncaptured while it is away

Example:
  ambit node-agent --node node-1 --dir /var/run/ambit/nodes/node-1 --control-plane http://127.0.0.1:15014 \\
    --cni-conf /var/run/ambit/nodes/node-1/net.d/10-ambit.conflist
  NODE_NAME=node-1 ambit node-agent --kubernetes --dir /var/run/ambit --cni-conf /host/etc/cni/net.d/10-calico.conflist
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      node: { type: 'string' }, dir: { type: 'string' }, 'control-plane': { type: 'string' }, 'cni-conf': { type: 'string' },
      'admin-token-file': { type: 'string' }, 'node-netns': { type: 'string' }, 'dns-capture': { type: 'string', default: 'on' },
      kubernetes: { type: 'boolean', default: false }, kubeconfig: { type: 'string' }, context: { type: 'string' }, 'cluster-id': { type: 'string' },
    });
    const onKube = values.kubernetes || values.kubeconfig !== undefined;
    if (onKube && values['control-plane']) throw usageError(this, '--control-plane and --kubernetes are two pod sources; use one');
    if (onKube) values.node ??= process.env.NODE_NAME || undefined;
    if (!values.node || !values.dir) throw usageError(this, onKube ? '--dir is required, and --node (or NODE_NAME)' : '--node and --dir are required');
    if (!onKube && !values['control-plane']) throw usageError(this, '--control-plane URL is required (or --kubernetes)');
    if (values['dns-capture'] !== 'on' && values['dns-capture'] !== 'off') throw usageError(this, '--dns-capture is on or off');
    const tokenFile = values['admin-token-file'] ? resolve(io.cwd, values['admin-token-file']) : undefined;
    const logger = new Logger({ component: 'node-agent' }).child({ node: values.node });
    let podSource: PodSource | undefined;
    if (onKube) {
      // Loaded only on Kubernetes: the client library is large.
      const { kubePodSource } = await import('../../kubernetes/kube-node-agent-wiring.js');
      podSource = kubePodSource({
        access: { kubeconfig: values.kubeconfig ? resolve(io.cwd, values.kubeconfig) : undefined, context: values.context },
        node: values.node, clusterId: values['cluster-id'], logger, clock: systemClock,
      });
    }
    const agent = new NodeAgent({
      node: values.node, dir: resolve(io.cwd, values.dir), podSource, controlPlaneUrl: values['control-plane']?.replace(/\/$/, ''),
      nodeNetns: values['node-netns'], dnsCapture: values['dns-capture'] !== 'off',
      controlPlaneToken: tokenFile ? () => readFileSync(tokenFile, 'utf8').trim() : undefined,
      cniConfList: values['cni-conf'] ? resolve(io.cwd, values['cni-conf']) : undefined, clock: systemClock, logger,
    });
    await agent.start();
    io.err(`node agent ${values.node}: CNI ${agent.paths.cniSocket}, ZDS ${agent.paths.zdsSocket}, status ${agent.paths.controlSocket}\n`);
    await new Promise<void>((done) => {
      const stop = (sig: string) => {
        logger.info('shutting down; captured pods stay captured', { signal: sig });
        void agent.close().then(done);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    return 0;
  },
};
