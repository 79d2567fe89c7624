// google.protobuf.Struct <-> plain JSON values, in the shape proto-loader uses
// (keepCase false, oneofs true): Struct{fields: {k: Value}}, Value{nullValue | numberValue |
// stringValue | boolValue | structValue | listValue, kind: <member name>}.
//
// Invariants: fromStruct(toStruct(v)) deep-equals v for JSON values; undefined members of an
// object are dropped; a Value with no member set decodes as null.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface PbValue {
  nullValue?: string | number | null;
  numberValue?: number | null;
  stringValue?: string | null;
  boolValue?: boolean | null;
  structValue?: PbStruct | null;
  listValue?: { values?: PbValue[] | null } | null;
  kind?: string;
}

export interface PbStruct {
  fields?: Record<string, PbValue> | null;
}

export function toValue(v: JsonValue): PbValue {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  return { structValue: toStruct(v) };
}

export function toStruct(o: { [key: string]: JsonValue | undefined }): PbStruct {
  const fields: Record<string, PbValue> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) fields[k] = toValue(v);
  return { fields };
}

export function fromValue(v: PbValue | null | undefined): JsonValue {
  if (!v) return null;
  const kind = v.kind ?? (['stringValue', 'numberValue', 'boolValue', 'structValue', 'listValue'] as const).find((k) => v[k] != null);
  switch (kind) {
    case 'stringValue': return v.stringValue ?? '';
    case 'numberValue': return v.numberValue ?? 0;
    case 'boolValue': return v.boolValue ?? false;
    case 'structValue': return fromStruct(v.structValue);
    case 'listValue': return (v.listValue?.values ?? []).map(fromValue);
    default: return null;
  }
}

export function fromStruct(s: PbStruct | null | undefined): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = fromValue(v);
  return out;
}
