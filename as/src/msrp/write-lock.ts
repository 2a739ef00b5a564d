/**
 * One writer at a time on an MSRP connection: a streamed chunk must reach the wire whole,
 * nothing else between its head and its end-line. Waiters are served in arrival order.
 */
export class WriteLock {
  private tail: Promise<void> = Promise.resolve();

  /** Resolves with the release function once every earlier holder released. */
  acquire(): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const before = this.tail;
    this.tail = before.then(() => mine);
    return before.then(() => release);
  }
}
