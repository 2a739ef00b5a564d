import type { Logger } from '../log/logger.js';

/** Something that holds a timer, socket, worker or pending work and lets it go in `close()`. */
export interface Closeable {
  close(): void | Promise<void>;
}

/** What a subsystem factory returns: the parts it built (what it serves) and one close for all it owns. */
export type Subsystem<T extends object> = T & Closeable;

/**
 * An ownership tree: parts are kept in the order they were built and closed in the reverse
 * order, so nothing closes before a part that still uses it. A close that fails is logged and
 * the others still close (a stop must not leave timers behind because one part threw); the
 * close then rejects naming them, so the owner above (or main's exit code) knows.
 */
export class Owner {
  private readonly parts: { name: string; part: Closeable }[] = [];
  private closing: Promise<void> | undefined;

  /** `name` says whose parts these are in the owner above's log (e.g. "im"). */
  constructor(
    private readonly log: Logger,
    readonly name = 'application',
  ) {}

  /** Takes `part` into this owner's care; returns it, so a factory's result can be kept in one line. */
  own<T extends Closeable>(name: string, part: T): T {
    if (this.closing) throw new Error(`${name}: built after its owner started closing`);
    this.parts.push({ name, part });
    return part;
  }

  /** Names of what is owned, in creation order (for logs and tests). */
  get names(): string[] {
    return this.parts.map((p) => p.name);
  }

  /** Closes every part, last built first; rejects after the last one when any failed. */
  close(): Promise<void> {
    this.closing ??= this.closeAll();
    return this.closing;
  }

  /**
   * Runs `build` with this owner: when it throws, what was already owned is closed (the same
   * path as a stop) and the error goes on to the caller.
   */
  async building<T>(build: (owner: Owner) => Promise<T>): Promise<T> {
    try {
      return await build(this);
    } catch (err) {
      this.log.error({ err: (err as Error).message, built: this.names }, 'start failed: closing what was built');
      // (a part that fails to close is logged there; the cause the caller needs is the build's)
      await this.close().catch(() => undefined);
      throw err;
    }
  }

  private async closeAll(): Promise<void> {
    const failed: string[] = [];
    for (const { name, part } of [...this.parts].reverse()) {
      try {
        await part.close();
      } catch (err) {
        failed.push(name);
        this.log.error({ err, part: `${this.name}/${name}` }, 'not closed cleanly; closing the others');
      }
    }
    if (failed.length > 0) throw new Error(`${this.name}: not closed cleanly: ${failed.join(', ')}`);
  }
}
