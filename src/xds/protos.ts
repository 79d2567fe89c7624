// Loads the control plane's .proto files (proto/ at the package root) at run time.
//
// Three views of the same files:
// - grpcDefinitions(): proto-loader's package definition, used for the gRPC services (ADS, CA)
//   by the server side (grpc-js). Options: keepCase false (fields are camelCase in JS:
//   `typeUrl`, `responseNonce`), longs as Number, enums as names, defaults filled in, oneofs
//   named. One exception, because protobufjs defines the well-known types from bundled JSON
//   rather than by parsing: google.protobuf.Any keeps its snake_case field `type_url` (and
//   `value`). proto-loader is loaded on first use only, so the proxies never load it.
// - serviceMessageCodec(): the same messages (de)serialized the same way (same object shapes)
//   with protobufjs directly, for the clients on grpc-lite.ts.
// - workloadRoot(): a protobufjs Root with istio.workload and istio.security, used by the codec
//   to encode and decode Any.value bytes. It is the same Root as serviceRoot() (all files
//   loaded once, the shared well-known types defined once).
//
// Invariants:
// - The proto directory is found by walking up from this file to the first directory holding
//   proto/istio/workload.proto, so the code runs from src/xds/ (ts) and dist/src/xds/ alike.
// - The directory and both loads are cached: they are immutable schema, found and parsed once.
// - google/protobuf/{any,struct,empty,duration}.proto come from protobufjs's bundled copies;
//   nothing is fetched.
// - protobufjs is loaded on first use, without long.js when this file loads it first: long.js
//   instantiates a WebAssembly module when it loads, which costs a proxy about 7 MB of resident
//   memory for nothing (every 64-bit field here is read as a Number, as LOADER_OPTIONS asks;
//   protobufjs without Long decodes 64-bit integers to Numbers itself). If something else
//   loaded protobufjs first, its Long stays.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as protoLoader from '@grpc/proto-loader';
import type protobuf from 'protobufjs';
import { AmbitError } from '../core/errors.js';

export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const ADS_DELTA_PATH = `/${ADS_SERVICE}/DeltaAggregatedResources`;
export const CA_SERVICE = 'istio.v1.auth.IstioCertificateService';
export const CA_CREATE_PATH = `/${CA_SERVICE}/CreateCertificate`;

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

/** protobufjs toObject options giving the objects proto-loader gives with LOADER_OPTIONS. */
const TO_OBJECT_OPTIONS: protobuf.IConversionOptions = CONVERSIONS;

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

/** protobufjs types of the workload API (istio.workload, istio.security). Same Root as serviceRoot(). */
export function workloadRoot(dir: string = protoDir()): protobuf.Root {
  return messageRoot(dir);
}

/** protobufjs types of the ADS and CA services' messages (the files grpcDefinitions() loads). */
export function serviceRoot(dir: string = protoDir()): protobuf.Root {
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

export interface MessageCodec<Out, In> {
  serialize(value: Out): Buffer;
  deserialize(bytes: Uint8Array): In;
}

/**
 * Serializes and deserializes one message of serviceRoot() exactly as proto-loader's method
 * definitions do (fromObject + encode; decode + toObject with LOADER_OPTIONS' conversions).
 */
export function serviceMessageCodec<Out, In>(typeName: string, dir: string = protoDir()): MessageCodec<Out, In> {
  const type = serviceRoot(dir).lookupType(typeName);
  return {
    serialize: (value: Out): Buffer => Buffer.from(type.encode(type.fromObject(value as Record<string, unknown>)).finish()),
    deserialize: (bytes: Uint8Array): In => type.toObject(type.decode(bytes), TO_OBJECT_OPTIONS) as In,
  };
}

export function loadRoot(dir: string, files: string[], what: string): protobuf.Root {
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
