/**
 * Which resources the live subscription dialogs this instance holds are about, in memory.
 *
 * Why: every change to a resource asks the store for the dialogs to notify, and most changes
 * have none here (a new watcher changes the presentity's watcher info, which nobody may
 * watch). An empty answer costs nothing when it comes from here. It is a superset of the
 * truth: an entry is added before its dialog is stored or taken over, and removed only when
 * this instance lets the dialog go, so "none" is always right; "some" is then read from the store.
 */
export class LiveDialogs {
  /** `event resource` and `event *member` (a list member) -> dialog ids. */
  private readonly byKey = new Map<string, Set<string>>();
  private readonly keysOf = new Map<string, string[]>();
  private readonly eventOf = new Map<string, string>();

  add(id: string, event: string, resource: string, watches: readonly string[] = []): void {
    this.eventOf.set(id, event);
    this.index(id, [`${event} ${resource}`, ...watches.map((m) => `${event} *${m}`)]);
  }

  /** More list members watched by a dialog held here (none: it is not held here). */
  extend(id: string, watches: readonly string[]): void {
    const event = this.eventOf.get(id);
    if (event !== undefined)
      this.index(
        id,
        watches.map((m) => `${event} *${m}`),
      );
  }

  private index(id: string, keys: string[]): void {
    const had = this.keysOf.get(id);
    for (const key of keys) {
      if (had?.includes(key)) continue;
      let ids = this.byKey.get(key);
      if (!ids) this.byKey.set(key, (ids = new Set()));
      ids.add(id);
    }
    this.keysOf.set(id, had ? [...new Set([...had, ...keys])] : keys);
  }

  remove(id: string): void {
    for (const key of this.keysOf.get(id) ?? []) {
      const ids = this.byKey.get(key);
      ids?.delete(id);
      if (ids?.size === 0) this.byKey.delete(key);
    }
    this.keysOf.delete(id);
    this.eventOf.delete(id);
  }

  /** Whether a dialog held here may be about `resource` directly. */
  about(event: string, resource: string): boolean {
    return this.byKey.has(`${event} ${resource}`);
  }

  /** Whether a dialog held here may watch `member` among others (a list). */
  watching(event: string, member: string): boolean {
    return this.byKey.has(`${event} *${member}`);
  }

  has(id: string): boolean {
    return this.keysOf.has(id);
  }

  get size(): number {
    return this.keysOf.size;
  }
}
