#!/usr/bin/env node
// Keeps the rooms of src/ in their order: a room may import only the rooms listed for it.
// (conventions: "lower rooms never import higher ones"). Run by `npm run lint`.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const ALLOWED = {
  core: [],
  sys: ['core'],
  xds: ['core'],
  cni: ['core', 'sys'],
  config: ['core'],
  model: ['core', 'config'],
  identity: ['core'],
  telemetry: ['core'],
  dns: ['core', 'telemetry'],
  rbac: ['core', 'config', 'model', 'xds'],
  hbone: ['core', 'identity', 'telemetry', 'sys'],
  controlplane: ['core', 'config', 'model', 'identity', 'rbac', 'telemetry', 'xds'],
  kubernetes: ['core', 'config', 'model', 'identity', 'rbac', 'telemetry', 'xds', 'controlplane'],
  // What every proxy shares: the mesh view, pod networks, certificates, route and inbound
  // decisions, the L4 forwarding routine, refusal kinds (istio/ztunnel's `state` beside `proxy`).
  dataplane: ['core', 'dns', 'identity', 'rbac', 'telemetry', 'xds', 'hbone', 'sys'],
  ztunnel: ['core', 'dns', 'identity', 'rbac', 'telemetry', 'xds', 'hbone', 'sys', 'dataplane'],
  waypoint: ['core', 'dns', 'config', 'model', 'identity', 'rbac', 'telemetry', 'xds', 'hbone', 'sys', 'dataplane'],
  sidecar: ['core', 'dns', 'config', 'model', 'identity', 'rbac', 'telemetry', 'xds', 'hbone', 'sys', 'dataplane', 'waypoint'],
  gateway: ['core', 'dns', 'config', 'model', 'identity', 'rbac', 'telemetry', 'xds', 'hbone', 'sys', 'dataplane', 'waypoint'],
  nodeagent: ['core', 'config', 'model', 'sys', 'xds', 'cni', 'dataplane'],
  cluster: ['core', 'dns', 'config', 'model', 'identity', 'rbac', 'telemetry', 'xds', 'hbone', 'sys', 'controlplane', 'dataplane', 'ztunnel', 'waypoint', 'sidecar', 'gateway', 'cni', 'nodeagent'],
  cli: ['core', 'dns', 'config', 'model', 'identity', 'rbac', 'telemetry', 'xds', 'hbone', 'sys', 'controlplane', 'kubernetes', 'dataplane', 'ztunnel', 'waypoint', 'sidecar', 'gateway', 'cni', 'nodeagent', 'cluster'],
};

const root = resolve(new URL('..', import.meta.url).pathname, 'src');
const problems = [];

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.ts')) check(p);
  }
}

function check(file) {
  const room = relative(root, file).split('/')[0];
  const allowed = ALLOWED[room];
  if (!allowed) {
    problems.push(`${relative(process.cwd(), file)}: room '${room}' is not listed in scripts/check-layers.mjs`);
    return;
  }
  const text = readFileSync(file, 'utf8');
  const re = /^\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]/gms;
  for (const m of text.matchAll(re)) {
    const spec = m[1];
    if (!spec.startsWith('.')) continue;
    const target = resolve(dirname(file), spec);
    const rel = relative(root, target);
    if (rel.startsWith('..')) {
      problems.push(`${relative(process.cwd(), file)}: imports '${spec}' from outside src/`);
      continue;
    }
    const targetRoom = rel.split('/')[0];
    if (targetRoom !== room && !allowed.includes(targetRoom)) {
      problems.push(`${relative(process.cwd(), file)}: room '${room}' may not import room '${targetRoom}' ('${spec}')`);
    }
  }
}

walk(root);
if (problems.length) {
  for (const p of problems) console.error(p);
  console.error(`layer check: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log('layer check: ok');
