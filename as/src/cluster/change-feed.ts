/**
 * The change feed: how a change made by one AS instance reaches the reactions of every
 * instance sharing the store. Engines are injected behind this interface (as aedes does with
 * its persistence); test/contract/change-feed.contract.test.ts is the suite each passes.
 */
import type { Change } from './changes.js';

/** 'local': this instance made the change; 'remote': another instance did. */
export type ChangeOrigin = 'local' | 'remote';

export interface ChangeListener {
  /**
   * One change, called in feed order; the promise settles when the reactions to it are done
   * (they never reject: failures are contained where they happen).
   */
  change(change: Change, origin: ChangeOrigin): Promise<void>;
  /**
   * Changes of other instances may have been missed (a writer died between taking a number
   * and writing, or this instance fell behind the trimmed feed): forget every cached state.
   */
  resync(): void;
}

export interface ChangeFeed {
  listen(listener: ChangeListener): void;
  /**
   * Records a change for every instance. This instance's listeners hear it at once (no
   * polling on the local path); the promise settles when they are done and the change is
   * recorded for the others, and rejects when it could not be recorded.
   */
  publish(change: Change): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The listeners of one feed, told in the order they listened. */
export class Listeners {
  private readonly all: ChangeListener[] = [];

  add(listener: ChangeListener): void {
    this.all.push(listener);
  }

  async change(change: Change, origin: ChangeOrigin): Promise<void> {
    await Promise.all(this.all.map((l) => l.change(change, origin)));
  }

  resync(): void {
    for (const l of this.all) l.resync();
  }
}

/** One instance alone on its store: changes go to its own listeners and nowhere else. */
export class LocalChangeFeed implements ChangeFeed {
  private readonly listeners = new Listeners();

  listen(listener: ChangeListener): void {
    this.listeners.add(listener);
  }

  publish(change: Change): Promise<void> {
    return this.listeners.change(change, 'local');
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}
}
