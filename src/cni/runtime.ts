// The runtime's side of CNI (what containerd's or CRI-O's libcni does): run a network
// configuration list's plugins for one container, as the spec says.
//
//   ADD   each plugin in order; plugin i gets plugin i-1's result as prevResult; the last
//         result is cached (<cacheDir>/<network>-<container>-<ifname>.json) with the list used
//   CHECK each plugin in order with the cached result as prevResult
//   DEL   each plugin in reverse order with the cached result as prevResult and the cached
//         list (a conflist edited since ADD still tears down what ADD made); the cache entry
//         goes once every plugin succeeded
//
// Invariants:
//  - A plugin gets exactly the spec's environment (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
//    CNI_IFNAME, CNI_ARGS, CNI_PATH) plus PATH, and on stdin its own configuration with
//    `name` and `cniVersion` of the list, `runtimeConfig` holding the capability arguments it
//    declared, and `prevResult` — never the `capabilities` map itself.
//  - Plugins run inside `execNetns` when given (nsenter --net): interface plugins such as ptp
//    put the host end of the pod's veth in the namespace they run in.
//  - A plugin failing (non-zero exit) throws AMBIT_ERR_CNI carrying its error JSON (or what it
//    printed); a plugin that does not answer in timeoutMs is killed. DEL tries every plugin even
//    when one fails, then throws the first failure.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { AmbitError } from '../core/errors.js';
import { runCommand } from '../sys/exec.js';
import { formatCniArgs, SUPPORTED_VERSIONS, type CniCommand, type CniErrorJson } from './spec.js';

export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface ConfList {
  cniVersion: string;
  name: string;
  plugins: PluginConf[];
  disableCheck?: boolean;
}

export interface RuntimeConf {
  containerId: string;
  /** Path of the container's network namespace (empty on a DEL after it is gone). */
  netns: string;
  ifName: string;
  args: ReadonlyArray<readonly [string, string]>;
  /** Capability arguments (e.g. { ips: ['10.244.1.5/24'] }), given to plugins that declare them. */
  capabilityArgs?: Record<string, unknown>;
}

export interface CniRuntimeOptions {
  confList: ConfList;
  /** Where plugin binaries are looked up, in order (CNI_PATH). */
  binDirs: string[];
  /** The result cache (libcni: /var/lib/cni/results). */
  cacheDir: string;
  /** Network namespace path the plugins run in (default: this process's). */
  execNetns?: string;
  timeoutMs?: number;
}

export type CniResult = Record<string, unknown>;

interface CacheEntry {
  kind: 'cniCacheV1';
  containerId: string;
  ifName: string;
  networkName: string;
  cniArgs: string;
  config: ConfList;
  result: CniResult;
}

/** Parses and checks a .conflist file's JSON; every problem in one AMBIT_ERR_CNI. */
export function parseConfList(text: string, file = 'conflist'): ConfList {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e: unknown) {
    throw new AmbitError('AMBIT_ERR_CNI', `${file}: not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const problems: string[] = [];
  const c = v as Partial<ConfList>;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) problems.push('not a JSON object');
  else {
    if (typeof c.name !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(c.name)) problems.push('"name" must be a network name (letters, digits, _ . -)');
    if (typeof c.cniVersion !== 'string' || !(SUPPORTED_VERSIONS as readonly string[]).includes(c.cniVersion)) problems.push(`"cniVersion" must be one of ${SUPPORTED_VERSIONS.join(', ')}`);
    if (!Array.isArray(c.plugins) || c.plugins.length === 0) problems.push('"plugins" must be a non-empty list');
    else {
      c.plugins.forEach((p, i) => {
        if (typeof p !== 'object' || p === null || typeof (p as PluginConf).type !== 'string' || !/^[a-zA-Z0-9_.-]+$/.test((p as PluginConf).type)) {
          problems.push(`plugins[${i}].type must be a plugin name`);
        }
      });
    }
  }
  if (problems.length) throw new AmbitError('AMBIT_ERR_CNI', `${file}: ${problems.join('; ')}`, { hint: 'see the CNI spec, "Network configuration lists"' });
  return c as ConfList;
}

/** The stdin of plugin `index` of `list` (pure; the spec's "deriving execution configuration"). */
export function pluginStdin(list: ConfList, index: number, prevResult: CniResult | undefined, capabilityArgs: Record<string, unknown> = {}): Record<string, unknown> {
  const { capabilities, ...plugin } = list.plugins[index]!;
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  const runtimeConfig: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(capabilities ?? {})) {
    if (on && capabilityArgs[cap] !== undefined) runtimeConfig[cap] = capabilityArgs[cap];
  }
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return conf;
}

export class CniRuntime {
  constructor(private readonly opts: CniRuntimeOptions) {}

  get networkName(): string {
    return this.opts.confList.name;
  }

  async add(rt: RuntimeConf): Promise<CniResult> {
    const list = this.opts.confList;
    let prev: CniResult | undefined;
    for (let i = 0; i < list.plugins.length; i++) {
      prev = await this.exec('ADD', list, i, rt, prev);
    }
    const result = prev ?? {};
    await this.writeCache(rt, list, result);
    return result;
  }

  async check(rt: RuntimeConf): Promise<void> {
    const cached = await this.readCache(rt);
    if (!cached) throw new AmbitError('AMBIT_ERR_CNI', `no cached ADD result for container ${rt.containerId} (${rt.ifName})`, { hint: 'CHECK needs a container that was ADDed' });
    if (cached.config.disableCheck) return;
    for (let i = 0; i < cached.config.plugins.length; i++) await this.exec('CHECK', cached.config, i, rt, cached.result);
  }

  async del(rt: RuntimeConf): Promise<void> {
    const cached = await this.readCache(rt);
    const list = cached?.config ?? this.opts.confList;
    let first: unknown;
    for (let i = list.plugins.length - 1; i >= 0; i--) {
      try {
        await this.exec('DEL', list, i, rt, cached?.result);
      } catch (e: unknown) {
        first ??= e;
      }
    }
    if (first) throw first;
    await rm(this.cachePath(rt), { force: true });
  }

  /** The result cached by ADD, if any. */
  async cachedResult(rt: Pick<RuntimeConf, 'containerId' | 'ifName'>): Promise<CniResult | undefined> {
    return (await this.readCache(rt))?.result;
  }

  private async exec(command: CniCommand, list: ConfList, index: number, rt: RuntimeConf, prev: CniResult | undefined): Promise<CniResult> {
    const plugin = list.plugins[index]!;
    const binary = findPlugin(plugin.type, this.opts.binDirs);
    const stdin = JSON.stringify(pluginStdin(list, index, prev, rt.capabilityArgs));
    const env = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: rt.containerId,
      CNI_NETNS: rt.netns,
      CNI_IFNAME: rt.ifName,
      CNI_ARGS: formatCniArgs(rt.args),
      CNI_PATH: this.opts.binDirs.join(':'),
    };
    const [cmd, args] = this.opts.execNetns ? ['nsenter', [`--net=${this.opts.execNetns}`, '--', binary]] : [binary, []];
    const r = await runCommand(cmd, args, {
      env, input: stdin, timeoutMs: this.opts.timeoutMs ?? 60_000, okExitCodes: EVERY_EXIT_CODE, errorCode: 'AMBIT_ERR_CNI',
      hint: `the CNI plugin ${plugin.type} did not finish; is it hanging on a lock?`,
    });
    if (r.exitCode !== 0) {
      let error: CniErrorJson | undefined;
      try {
        const e = JSON.parse(r.stdout) as CniErrorJson;
        if (typeof e.code === 'number' && typeof e.msg === 'string') error = e;
      } catch {
        // not the spec's error JSON: report what it printed
      }
      const what = error ? `${error.msg}${error.details ? ` (${error.details})` : ''} [code ${error.code}]` : (r.stderr.trim() || r.stdout.trim() || `exit ${r.exitCode}`);
      throw new AmbitError('AMBIT_ERR_CNI', `CNI ${command} of ${plugin.type} failed for container ${rt.containerId}: ${what}`, {
        details: { plugin: plugin.type, command, exitCode: r.exitCode, cniError: error, stderr: r.stderr.slice(0, 2000) },
        hint: error?.code === 11 ? 'the plugin asks to try again later' : undefined,
      });
    }
    if (command !== 'ADD') return prev ?? {};
    try {
      const result = JSON.parse(r.stdout) as unknown;
      if (typeof result !== 'object' || result === null || Array.isArray(result)) throw new Error('not a JSON object');
      return result as CniResult;
    } catch (e: unknown) {
      throw new AmbitError('AMBIT_ERR_CNI', `CNI ADD of ${plugin.type} printed no result object: ${e instanceof Error ? e.message : String(e)}`, { details: { stdout: r.stdout.slice(0, 2000) } });
    }
  }

  private cachePath(rt: Pick<RuntimeConf, 'containerId' | 'ifName'>): string {
    return join(this.opts.cacheDir, `${this.opts.confList.name}-${rt.containerId}-${rt.ifName}.json`);
  }

  private async writeCache(rt: RuntimeConf, list: ConfList, result: CniResult): Promise<void> {
    await mkdir(this.opts.cacheDir, { recursive: true, mode: 0o700 });
    const entry: CacheEntry = {
      kind: 'cniCacheV1', containerId: rt.containerId, ifName: rt.ifName, networkName: list.name, cniArgs: formatCniArgs(rt.args), config: list, result,
    };
    const path = this.cachePath(rt);
    await writeFile(`${path}.tmp`, JSON.stringify(entry) + '\n', { mode: 0o600 });
    await rename(`${path}.tmp`, path);
  }

  private async readCache(rt: Pick<RuntimeConf, 'containerId' | 'ifName'>): Promise<CacheEntry | undefined> {
    try {
      const e = JSON.parse(await readFile(this.cachePath(rt), 'utf8')) as CacheEntry;
      return e.kind === 'cniCacheV1' ? e : undefined;
    } catch {
      return undefined;
    }
  }
}

const EVERY_EXIT_CODE = Array.from({ length: 256 }, (_, i) => i);

/** The first executable `type` in dirs (CNI_PATH order). */
export function findPlugin(type: string, dirs: readonly string[]): string {
  for (const d of dirs) {
    const p = join(d, type);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  throw new AmbitError('AMBIT_ERR_CNI', `CNI plugin "${type}" not found in ${dirs.join(':')}`, {
    hint: type === 'ambit-cni' ? 'run `npm run setup` (it builds native/build/ambit-cni)' : 'install the Debian package containernetworking-plugins (`npm run setup` does)',
  });
}
