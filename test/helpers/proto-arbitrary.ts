// fast-check arbitraries of protobuf messages, driven by the schema (a protobufjs Type): each
// field gets values of its wire type — strings that look like names and hostnames, bytes that
// are sometimes an IPv4 or IPv6 address, enum numbers this build knows and some it does not,
// integers past the ranges the decoder checks, maps and repeated fields, nested messages to a
// bounded depth, oneofs with none, one or (rarely) two members set.
import fc from 'fast-check';
import type protobuf from 'protobufjs';

const text = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('', 'default', 'ns1', 'pod-1', 'Kubernetes//Pod/ns1/pod-1', 'ns1/echo.ns1.svc.cluster.local', 'echo.ns1.svc.cluster.local', 'cluster.local', 'spiffe://cluster.local/ns/a/sa/b', 'HBONE', '*') },
  { weight: 2, arbitrary: fc.string({ maxLength: 16 }) },
);
const bytes = fc.oneof(
  fc.uint8Array({ minLength: 4, maxLength: 4 }),
  fc.uint8Array({ minLength: 16, maxLength: 16 }),
  fc.uint8Array({ maxLength: 20 }),
);
const uint32 = fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.constantFrom(0, 80, 15008, 65535, 65536, 0xffffffff));
const int32 = fc.oneof(fc.integer({ min: -5, max: 200 }), fc.integer());

function scalar(type: string): fc.Arbitrary<unknown> {
  switch (type) {
    case 'string': return text;
    case 'bytes': return bytes;
    case 'bool': return fc.boolean();
    case 'uint32': case 'fixed32': return uint32;
    case 'int32': case 'sint32': case 'sfixed32': return int32;
    case 'uint64': case 'int64': case 'sint64': case 'fixed64': case 'sfixed64': return fc.nat();
    case 'double': case 'float': return fc.double({ noNaN: true });
    default: throw new Error(`no arbitrary for protobuf type ${type}`);
  }
}

function fieldValue(f: protobuf.Field, depth: number): fc.Arbitrary<unknown> {
  const t = f.resolvedType;
  if (t && 'values' in t) {
    const known = Object.values((t as protobuf.Enum).values);
    return fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: fc.integer({ min: -1, max: 40 }) });
  }
  if (t) return message(t as protobuf.Type, depth + 1);
  return scalar(f.type);
}

/** Plain objects that `type.encode()` turns into bytes of that message. */
export function message(type: protobuf.Type, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  if (depth > 4) return fc.constant({});
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of type.fieldsArray) {
    const value = fieldValue(f, depth);
    if (f.map) {
      const key = (f as unknown as protobuf.MapField).keyType === 'string' ? text.filter((k) => k !== '__proto__') : fc.nat().map(String);
      fields[f.name] = fc.dictionary(key, value, { maxKeys: 3 });
    } else if (f.repeated) fields[f.name] = fc.array(value, { maxLength: 3 });
    else fields[f.name] = value;
  }
  const oneofs = type.oneofsArray.map((o) => o.fieldsArray.map((f) => f.name));
  return fc.record(fields, { requiredKeys: [] }).chain((o) => {
    if (oneofs.length === 0) return fc.constant(o);
    // A oneof usually has at most one member set; sometimes the wire carries two.
    return fc.array(fc.nat(), { minLength: oneofs.length, maxLength: oneofs.length }).map((picks) => {
      const out = { ...o };
      oneofs.forEach((names, i) => {
        const keep = picks[i]! % 8 === 0 ? names : [names[picks[i]! % names.length]!];
        for (const n of names) if (!keep.includes(n)) delete out[n];
      });
      return out;
    });
  });
}
