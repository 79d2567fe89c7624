// An immutable set of validated resources, keyed by `Kind/namespace/name`. Updates return a
// new set; the old one keeps serving until the new one has been validated as a whole.
import type { Located, Resource, ResourceKind } from './resources.js';

export function resourceKey(r: { kind: string; metadata: { name: string; namespace?: string } }): string {
  return r.kind === 'Namespace' ? `Namespace//${r.metadata.name}` : `${r.kind}/${r.metadata.namespace ?? 'default'}/${r.metadata.name}`;
}

type ByKind = { [K in ResourceKind]: Extract<Resource, { kind: K }> };

export class ConfigSet {
  private readonly byKey: ReadonlyMap<string, Located>;

  constructor(items: Iterable<Located> = []) {
    const m = new Map<string, Located>();
    for (const it of items) m.set(resourceKey(it.resource), it);
    this.byKey = m;
  }

  get size(): number {
    return this.byKey.size;
  }

  all(): Located[] {
    return [...this.byKey.values()];
  }

  get(key: string): Located | undefined {
    return this.byKey.get(key);
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  keys(): string[] {
    return [...this.byKey.keys()];
  }

  /** Resources of one kind, with their locations. */
  located<K extends ResourceKind>(kind: K): Located<ByKind[K]>[] {
    return this.all().filter((l): l is Located<ByKind[K]> => l.resource.kind === kind);
  }

  ofKind<K extends ResourceKind>(kind: K): ByKind[K][] {
    return this.located(kind).map((l) => l.resource);
  }

  /** A new set with these resources added or replaced. */
  upsert(items: Iterable<Located>): ConfigSet {
    const m = new Map(this.byKey);
    for (const it of items) m.set(resourceKey(it.resource), it);
    return new ConfigSet(m.values());
  }

  /** A new set without these keys. */
  remove(keys: Iterable<string>): ConfigSet {
    const m = new Map(this.byKey);
    for (const k of keys) m.delete(k);
    return new ConfigSet(m.values());
  }
}
