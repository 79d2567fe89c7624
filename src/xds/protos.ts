// The reference decoders: proto/'s .proto files loaded at run time by protobufjs and
// proto-loader, implementations independent of the generated code (src/xds/gen) that Ambit
// itself encodes and decodes with. Nothing in src/ calls them at run time; the tests do, to
// check the generated path against another implementation byte for byte (the workload API
// codec, the ADS server's hand-assembled responses, a grpc-js client that speaks to the
// control plane as a third party would).
//
// Two views of the same files:
// - grpcDefinitions(): proto-loader's package definition of the ADS and CA services. Options:
//   keepCase false (fields are camelCase in JS: `typeUrl`, `responseNonce`), longs as Number,
//   enums as names, defaults filled in, oneofs named. One exception, because protobufjs defines
//   the well-known types from bundled JSON rather than by parsing: google.protobuf.Any keeps
//   its snake_case field `type_url` (and `value`).
// - workloadRoot(): a protobufjs Root with every file (istio.workload, istio.security, Ambit's
//   ConfigResource, the xDS and CA messages).
//
// Invariants:
// - The proto directory is found by walking up from this file to the first directory holding
//   proto/istio/workload.proto, so the code runs from src/xds/ (ts) and dist/src/xds/ alike.
// - The directory and both loads are cached: they are immutable schema, found and parsed once.
// - google/protobuf/{any,struct,empty,duration}.proto come from protobufjs's bundled copies;
//   nothing is fetched.
// - protobufjs is loaded on first use, without long.js when this file loads it first (long.js
//   instantiates a WebAssembly module when it loads; every 64-bit field here is read as a
//   Number, as LOADER_OPTIONS asks). If something else loaded protobufjs first, its Long stays.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as protoLoader from '@grpc/proto-loader';
import type protobuf from 'protobufjs';
import { AmbitError } from '../core/errors.js';

export { ADS_DELTA_PATH, ADS_SERVICE, CA_CREATE_PATH, CA_SERVICE } from './messages.js';

const GRPC_FILES = ['envoy/service/discovery/v3/ads.proto', 'istio/ca.proto'];
const WORKLOAD_FILES = ['istio/workload.proto', 'istio/authorization.proto', 'ambit/config.proto'];

/** How decoded messages look (longs as Number, enums as names, defaults, named oneofs). */
const CONVERSIONS = {
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
} as const;

export const LOADER_OPTIONS: protoLoader.Options = { keepCase: false, ...CONVERSIONS };

const dirCache = new Map<string, string>();

/** The directory holding Ambit's .proto files (found once per start directory). */
export function protoDir(start: string = dirname(fileURLToPath(import.meta.url))): string {
  const known = dirCache.get(start);
  if (known) return known;
  const found = findProtoDir(start);
  dirCache.set(start, found);
  return found;
}

function findProtoDir(start: string): string {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, 'proto', 'istio', 'workload.proto'))) return join(dir, 'proto');
    const up = dirname(dir);
    if (up === dir) {
      throw new AmbitError('AMBIT_ERR_XDS', `cannot find the proto/ directory above ${start}`, {
        hint: 'proto/ ships at the package root next to package.json; reinstall or rebuild Ambit',
      });
    }
    dir = up;
  }
}

const requireHere = createRequire(import.meta.url);
let protobufjsModule: typeof protobuf | undefined;

/** The protobufjs module, loaded (once) without long.js if nothing loaded it before. */
function protobufjs(): typeof protobuf {
  if (protobufjsModule) return protobufjsModule;
  // protobufjs takes globalThis.Long instead of require('long') when one is set: a placeholder
  // during the load keeps long.js out, then protobufjs is told there is no Long.
  const g = globalThis as { Long?: unknown };
  const placeholder = { noLong: true };
  const hadLong = Object.prototype.hasOwnProperty.call(g, 'Long');
  const previous = g.Long;
  if (!previous) g.Long = placeholder;
  let pb: typeof protobuf;
  try {
    pb = requireHere('protobufjs') as typeof protobuf;
  } finally {
    if (hadLong) g.Long = previous;
    else delete g.Long;
  }
  if ((pb.util.Long as unknown) === placeholder) {
    (pb.util as { Long: unknown }).Long = null;
    pb.configure();
  }
  protobufjsModule = pb;
  return pb;
}

const grpcCache = new Map<string, protoLoader.PackageDefinition>();
const rootCache = new Map<string, protobuf.Root>();

/** proto-loader's definition of the ADS and CA services and their messages. */
export function grpcDefinitions(dir: string = protoDir()): protoLoader.PackageDefinition {
  let def = grpcCache.get(dir);
  if (!def) {
    try {
      // Loaded here, not at the top: only the control plane (the gRPC server side) needs it.
      protobufjs();
      const loader = requireHere('@grpc/proto-loader') as typeof protoLoader;
      def = loader.loadSync(GRPC_FILES, { ...LOADER_OPTIONS, includeDirs: [dir] });
    } catch (e: unknown) {
      throw new AmbitError('AMBIT_ERR_XDS', `cannot load the xDS/CA protos from ${dir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    grpcCache.set(dir, def);
  }
  return def;
}

/** protobufjs types of every message (istio.workload, istio.security, ambit.config.v1, xDS, CA). */
export function workloadRoot(dir: string = protoDir()): protobuf.Root {
  return messageRoot(dir);
}

/** One Root for every file: the well-known types they share are defined once. */
function messageRoot(dir: string): protobuf.Root {
  let root = rootCache.get(dir);
  if (!root) {
    root = loadRoot(dir, [...WORKLOAD_FILES, ...GRPC_FILES], 'workload API, xDS and CA');
    rootCache.set(dir, root);
  }
  return root;
}

function loadRoot(dir: string, files: string[], what: string): protobuf.Root {
  const root = new (protobufjs().Root)();
  // Bundled well-known types keep their short names; our files resolve under dir.
  root.resolvePath = (_origin: string, target: string): string =>
    target.startsWith('google/protobuf/') ? target : join(dir, target);
  try {
    root.loadSync(files, { keepCase: false });
    root.resolveAll();
  } catch (e: unknown) {
    throw new AmbitError('AMBIT_ERR_XDS', `cannot load the ${what} protos from ${dir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  return root;
}
