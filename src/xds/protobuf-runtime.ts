// The parts of @bufbuild/protobuf's runtime Ambit uses: the binary codec (create, fromBinary,
// toBinary) and the four well-known types our .proto files import (Any, Struct, Duration,
// Empty). Every other file imports them from here, the generated code included (its
// `@bufbuild/protobuf/wkt` imports are rewritten to this file by scripts/proto-gen.mjs).
//
// Why not the package's entry points: its main entry re-exports the JSON (de)serializers, and
// `@bufbuild/protobuf/wkt` every well-known type, which between them load and hydrate all of
// them (descriptor.proto, compiler/plugin.proto, api, type, ...): measured here, a proxy's
// resident memory grew ~13 MB with them. Its exports map has no entry for the binary codec
// alone, so those modules are imported by URL, next to the main entry; the types still come
// from the package's declarations.
//
// Invariants: exactly these modules are loaded (top-level await, once, at import); their
// exports have the types of the package's public API.
import type * as Pb from '@bufbuild/protobuf';
import type * as Wkt from '@bufbuild/protobuf/wkt';

const esm = import.meta.resolve('@bufbuild/protobuf');
const load = (path: string): Promise<unknown> => import(new URL(path, esm).href);

const [createMod, fromBinaryMod, toBinaryMod, anyMod, structMod, durationMod, emptyMod] = await Promise.all([
  load('./create.js'), load('./from-binary.js'), load('./to-binary.js'),
  load('./wkt/google/protobuf/any_pb.js'), load('./wkt/google/protobuf/struct_pb.js'),
  load('./wkt/google/protobuf/duration_pb.js'), load('./wkt/google/protobuf/empty_pb.js'),
]);

export const { create } = createMod as Pick<typeof Pb, 'create'>;
export const { fromBinary } = fromBinaryMod as Pick<typeof Pb, 'fromBinary'>;
export const { toBinary } = toBinaryMod as Pick<typeof Pb, 'toBinary'>;
export const { file_google_protobuf_any } = anyMod as Pick<typeof Wkt, 'file_google_protobuf_any'>;
export const { file_google_protobuf_struct } = structMod as Pick<typeof Wkt, 'file_google_protobuf_struct'>;
export const { file_google_protobuf_duration } = durationMod as Pick<typeof Wkt, 'file_google_protobuf_duration'>;
export const { file_google_protobuf_empty } = emptyMod as Pick<typeof Wkt, 'file_google_protobuf_empty'>;
export type { Any, Duration, Empty } from '@bufbuild/protobuf/wkt';
