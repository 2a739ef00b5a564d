/**
 * Values loaded from the store and kept in memory until told they changed (the reactions of
 * as/src/reactions.ts forget them on every instance), bounded in count and optionally in age.
 *
 * Callers asking while a load is under way share it. A load that fails is not kept (the next
 * caller loads again), and neither is one that was under way when its key was forgotten: it
 * read the old state, so it serves the callers that were waiting and nobody after them.
 */
export class LoadingCache<V> {
  private readonly entries = new Map<string, { value: Promise<V>; at: number }>();

  constructor(private readonly opts: { maxEntries: number; maxAgeMs?: number }) {}

  get(key: string, load: () => Promise<V>): Promise<V> {
    const kept = this.entries.get(key);
    if (kept && (this.opts.maxAgeMs === undefined || Date.now() - kept.at < this.opts.maxAgeMs)) return kept.value;
    const value = load();
    const entry = { value, at: Date.now() };
    this.entries.delete(key); // re-inserted last: the oldest entry is the first in the map
    this.entries.set(key, entry);
    if (this.entries.size > this.opts.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    value.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return value;
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
