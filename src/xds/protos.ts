// Loads the control plane's .proto files (proto/ at the package root) at run time.
//
// Two views of the same files:
// - grpcDefinitions(): proto-loader's package definition, used for the gRPC services (ADS, CA).
//   Options: keepCase false (fields are camelCase in JS: `typeUrl`, `responseNonce`), longs as
//   Number, enums as names, defaults filled in, oneofs named. One exception, because
//   protobufjs defines the well-known types from bundled JSON rather than by parsing:
//   google.protobuf.Any keeps its snake_case field `type_url` (and `value`).
// - workloadRoot(): a protobufjs Root with istio.workload and istio.security, used by the codec
//   to encode and decode Any.value bytes.
//
// Invariants:
// - The proto directory is found by walking up from this file to the first directory holding
//   proto/istio/workload.proto, so the code runs from src/xds/ (ts) and dist/src/xds/ alike.
// - The directory and both loads are cached: they are immutable schema, found and parsed once.
// - google/protobuf/{any,struct,empty,duration}.proto come from protobufjs's bundled copies;
//   nothing is fetched.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { AmbitError } from '../core/errors.js';

export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const ADS_DELTA_PATH = `/${ADS_SERVICE}/DeltaAggregatedResources`;
export const CA_SERVICE = 'istio.v1.auth.IstioCertificateService';
export const CA_CREATE_PATH = `/${CA_SERVICE}/CreateCertificate`;

const GRPC_FILES = ['envoy/service/discovery/v3/ads.proto', 'istio/ca.proto'];
const WORKLOAD_FILES = ['istio/workload.proto', 'istio/authorization.proto', 'ambit/config.proto'];

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

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

const grpcCache = new Map<string, protoLoader.PackageDefinition>();
const rootCache = new Map<string, protobuf.Root>();

/** proto-loader's definition of the ADS and CA services and their messages. */
export function grpcDefinitions(dir: string = protoDir()): protoLoader.PackageDefinition {
  let def = grpcCache.get(dir);
  if (!def) {
    try {
      def = protoLoader.loadSync(GRPC_FILES, { ...LOADER_OPTIONS, includeDirs: [dir] });
    } catch (e: unknown) {
      throw new AmbitError('AMBIT_ERR_XDS', `cannot load the xDS/CA protos from ${dir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    grpcCache.set(dir, def);
  }
  return def;
}

/** protobufjs types of the workload API (istio.workload, istio.security). */
export function workloadRoot(dir: string = protoDir()): protobuf.Root {
  let root = rootCache.get(dir);
  if (!root) {
    root = new protobuf.Root();
    // Bundled well-known types keep their short names; our files resolve under dir.
    root.resolvePath = (_origin: string, target: string): string =>
      target.startsWith('google/protobuf/') ? target : join(dir, target);
    try {
      root.loadSync(WORKLOAD_FILES, { keepCase: false });
      root.resolveAll();
    } catch (e: unknown) {
      throw new AmbitError('AMBIT_ERR_XDS', `cannot load the workload API protos from ${dir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    rootCache.set(dir, root);
  }
  return root;
}
