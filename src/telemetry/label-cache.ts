// Metric label sets kept for reuse: a mesh has few distinct (source, destination, service,
// outcome) combinations, so a finished connection or request looks its labels up by a short
// key instead of building and joining two dozen strings.
//
// Invariants:
// - Peers enter a key by object identity (PeerInfo objects are shared per workload, see
//   ztunnel/peer-info.ts) plus the identity string the record carries.
// - Past `maxEntries` the cache starts over: a churning mesh costs rebuilds, never memory.
import { prepareLabels, type LabelValues, type PreparedLabels } from './metrics.js';

export class LabelCache<L extends string> {
  private readonly cache = new Map<string, PreparedLabels<L>>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;

  constructor(private readonly names: readonly L[], private readonly maxEntries = 10_000) {}

  /** A number standing for `o` in keys (0 for none). */
  id(o: object | undefined): number {
    if (!o) return 0;
    let id = this.ids.get(o);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(o, id);
    }
    return id;
  }

  /** The endpoint part of a key: its workload's PeerInfo and the identity it carried. */
  endpoint(e: { workload?: object; identity?: string } | undefined): string {
    return e ? `${this.id(e.workload)}/${e.identity ?? ''}` : '-';
  }

  get(key: string, build: () => LabelValues<L>): PreparedLabels<L> {
    let labels = this.cache.get(key);
    if (!labels) {
      if (this.cache.size >= this.maxEntries) this.cache.clear();
      labels = prepareLabels(this.names, build());
      this.cache.set(key, labels);
    }
    return labels;
  }
}
