// Micro-benchmark of the authorization engine (src/rbac) with 10,000 policies, as the ztunnel
// uses it per connection: select the policies that apply to the destination workload
// (policiesForZtunnel, a linear scan over every policy it received) and evaluate them.
// Beside it, simpler/alternative shapes measured in the same run:
//   - "indexed": the same evaluate() over a per-workload list selected once in advance (what an
//     applicable-policy index keyed by namespace + named policies would give);
//   - "select only": the linear selection alone, to show where the time goes;
//   - "naive": a hand-written evaluator of the same policies (ALLOW-by-principal / DENY-by-port)
//     that skips the engine's generality (no sort, no dry-run/audit, no attribute parsing).
//
//   node dist/bench/micro/authz.js [--policies 10000] [--ms 1000]
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import type { AuthorizationPolicyResource } from '../../src/config/resources.js';
import { compilePolicy, evaluate, policiesForZtunnel, type CompiledPolicy, type RequestAttributes } from '../../src/rbac/index.js';
import { fmtOps, opsPerSecond } from './bench-loop.js';

const ROOT_NS = 'istio-system';

function policy(ns: string, name: string, spec: AuthorizationPolicyResource['spec']): AuthorizationPolicyResource {
  return { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace: ns }, spec };
}

/** nNs namespaces x 10 policies: 1 namespace-wide ALLOW, 8 selector ALLOWs, 1 namespace-wide DENY. */
function makePolicies(total: number): { resources: AuthorizationPolicyResource[]; namespaces: string[] } {
  const resources: AuthorizationPolicyResource[] = [];
  const namespaces: string[] = [];
  const nNs = Math.ceil(total / 10);
  for (let i = 0; i < nNs; i++) {
    const ns = `ns-${i}`;
    namespaces.push(ns);
    resources.push(policy(ns, 'allow-ns', { action: 'ALLOW', rules: [{ from: [{ source: { principals: [`cluster.local/ns/ns-${(i + 1) % nNs}/sa/client`, `cluster.local/ns/${ns}/sa/*`] } }] }] }));
    for (let k = 0; k < 8; k++) {
      resources.push(policy(ns, `allow-app-${k}`, {
        action: 'ALLOW', selector: { matchLabels: { app: `app-${k}` } },
        rules: [{ from: [{ source: { namespaces: [`ns-${(i + k) % nNs}`] } }], to: [{ operation: { ports: [String(8000 + k)] } }] }],
      }));
    }
    resources.push(policy(ns, 'deny-admin', { action: 'DENY', rules: [{ to: [{ operation: { ports: ['9999'] } }] }] }));
  }
  return { resources: resources.slice(0, total), namespaces };
}

interface Case { workload: { namespace: string; authorizationPolicies: string[] }; attrs: RequestAttributes }

function makeCases(namespaces: string[], n: number): Case[] {
  const cases: Case[] = [];
  for (let i = 0; i < n; i++) {
    const d = (i * 7919) % namespaces.length;
    const ns = namespaces[d]!;
    const app = i % 8;
    const srcNs = i % 3 === 0 ? namespaces[(d + 1) % namespaces.length]! : namespaces[(d + app) % namespaces.length]!;
    cases.push({
      workload: { namespace: ns, authorizationPolicies: [`${ns}/allow-app-${app}`] },
      attrs: {
        sourceIp: `10.1.${i % 250}.${(i >> 8) % 250}`, sourcePrincipal: `cluster.local/ns/${srcNs}/sa/client`,
        destinationIp: `10.2.${d % 250}.${app}`, destinationPort: i % 11 === 0 ? 9999 : 8000 + app,
      },
    });
  }
  return cases;
}

function main(): void {
  const { values } = parseArgs({ options: { policies: { type: 'string', default: '10000' }, ms: { type: 'string', default: '1000' } } });
  const total = Number(values.policies);
  const ms = Number(values.ms);
  const t0 = performance.now();
  const { resources, namespaces } = makePolicies(total);
  const compiled: CompiledPolicy[] = resources.map((r) => compilePolicy(r, { rootNamespace: ROOT_NS }));
  const compileMs = performance.now() - t0;
  const cases = makeCases(namespaces, 4096);

  // The simple index an alternative would keep: applicable list per (namespace, named policies).
  const t1 = performance.now();
  const byNs = new Map<string, CompiledPolicy[]>();
  const byKey = new Map<string, CompiledPolicy>();
  const global: CompiledPolicy[] = [];
  for (const p of compiled) {
    byKey.set(p.key, p);
    if (p.scope.kind === 'GLOBAL') global.push(p);
    else if (p.scope.kind === 'NAMESPACE') { const l = byNs.get(p.namespace) ?? []; l.push(p); byNs.set(p.namespace, l); }
  }
  const indexed = cases.map((c) => [...global, ...(byNs.get(c.workload.namespace) ?? []), ...c.workload.authorizationPolicies.map((k) => byKey.get(k)).filter((p): p is CompiledPolicy => p !== undefined)]);
  const indexMs = performance.now() - t1;

  // Sanity: both shapes decide the same.
  let allowed = 0;
  cases.forEach((c, i) => {
    const a = evaluate(policiesForZtunnel(compiled, c.workload), c.attrs, { enforcer: 'ztunnel' }).decision;
    const b = evaluate(indexed[i]!, c.attrs, { enforcer: 'ztunnel' }).decision;
    if (a !== b) throw new Error(`indexed and linear decisions differ for case ${i}`);
    if (a === 'ALLOW') allowed++;
  });

  // A naive evaluator of exactly these policy shapes: principals / namespaces / ports, no generality.
  type Naive = { action: 'ALLOW' | 'DENY'; principals?: string[]; namespaces?: string[]; ports?: number[] };
  const naive = new Map<string, Naive>();
  for (const r of resources) {
    const rule = r.spec.rules?.[0];
    const src = rule?.from?.[0]?.source;
    naive.set(`${r.metadata.namespace}/${r.metadata.name}`, {
      action: r.spec.action === 'DENY' ? 'DENY' : 'ALLOW', principals: src?.principals, namespaces: src?.namespaces,
      ports: rule?.to?.[0]?.operation?.ports?.map(Number),
    });
  }
  const naiveDecide = (c: Case): boolean => {
    const ns = c.workload.namespace;
    const list = [naive.get(`${ns}/allow-ns`), naive.get(`${ns}/deny-admin`), ...c.workload.authorizationPolicies.map((k) => naive.get(k))];
    const principal = c.attrs.sourcePrincipal ?? '';
    const srcNs = principal.split('/')[2] ?? '';
    const matches = (p: Naive) => (!p.principals || p.principals.some((x) => (x.endsWith('*') ? principal.startsWith(x.slice(0, -1)) : x === principal)))
      && (!p.namespaces || p.namespaces.includes(srcNs)) && (!p.ports || p.ports.includes(c.attrs.destinationPort));
    let anyAllow = false;
    for (const p of list) { if (p && p.action === 'DENY' && matches(p)) return false; }
    for (const p of list) { if (p && p.action === 'ALLOW') { anyAllow = true; if (matches(p)) return true; } }
    return !anyAllow;
  };
  let naiveAllowed = 0;
  for (const c of cases) if (naiveDecide(c)) naiveAllowed++;

  const idx = cases.map((_, i) => i);
  const linear = opsPerSecond(idx, (i) => evaluate(policiesForZtunnel(compiled, cases[i]!.workload), cases[i]!.attrs, { enforcer: 'ztunnel' }).decision === 'ALLOW', ms);
  const withIndex = opsPerSecond(idx, (i) => evaluate(indexed[i]!, cases[i]!.attrs, { enforcer: 'ztunnel' }).decision === 'ALLOW', ms);
  const selectOnly = opsPerSecond(idx, (i) => policiesForZtunnel(compiled, cases[i]!.workload).length, ms);
  const naiveRun = opsPerSecond(cases, naiveDecide, ms);

  const cpu = cpus()[0]?.model ?? 'unknown';
  process.stdout.write(`authorization engine, ${compiled.length} policies in ${namespaces.length} namespaces (node ${process.version}, ${cpus().length} x ${cpu}, ${new Date().toISOString()})\n`);
  process.stdout.write(`  compile: ${compileMs.toFixed(0)} ms; building a per-namespace index: ${indexMs.toFixed(1)} ms; ${allowed}/${cases.length} allowed (naive: ${naiveAllowed})\n`);
  const rows: [string, number][] = [
    ['ztunnel today: policiesForZtunnel (linear) + evaluate', linear.opsPerSec],
    ['indexed: pre-selected applicable list + evaluate', withIndex.opsPerSec],
    ['selection alone (linear scan of all policies)', selectOnly.opsPerSec],
    ['naive hand-written evaluator (index + no generality)', naiveRun.opsPerSec],
  ];
  for (const [name, v] of rows) process.stdout.write(`  ${name.padEnd(56)} ${fmtOps(v).padStart(10)}   x${(v / linear.opsPerSec).toFixed(2)} vs today\n`);
}

main();
