/** setTimeout's longest delay; later deadlines are re-checked by their callback. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One pending callback per key at an absolute time (expiry of subscriptions,
 * publications ...). Setting a key again replaces its deadline; timers never keep the
 * process alive.
 */
export class Deadlines {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  set(key: string, at: Date, fire: () => void): void {
    this.clear(key);
    const ms = Math.min(Math.max(0, at.getTime() - Date.now()), MAX_TIMER_MS);
    const t = setTimeout(() => {
      this.timers.delete(key);
      fire();
    }, ms);
    t.unref();
    this.timers.set(key, t);
  }

  has(key: string): boolean {
    return this.timers.has(key);
  }

  clear(key: string): void {
    const t = this.timers.get(key);
    if (t) clearTimeout(t);
    this.timers.delete(key);
  }

  clearAll(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
