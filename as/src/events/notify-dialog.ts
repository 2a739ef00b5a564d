import type { EndReason, Subscription } from './event-package.js';

/** What a NOTIFY is wanted for. */
export interface Wish {
  final?: EndReason;
  full?: boolean;
  force?: boolean;
}

/** A NOTIFY being sent on a dialog, and what is wanted once it completes. */
export interface Flight {
  /** Another NOTIFY is wanted once the one in flight completes. */
  again: boolean;
  /** The one wanted is the final one. */
  final?: EndReason;
  /** The one wanted must carry the full state (first NOTIFY, refresh, authorization change). */
  full: boolean;
  /** The one wanted leaves even if nothing changed (a max-interval keep-alive). */
  force: boolean;
  /**
   * The subscription as the store returned it by the write that asked for this NOTIFY:
   * the first NOTIFY uses it instead of reading it again (later ones read the store).
   */
  fresh?: Subscription;
}

/**
 * The dialog's NOTIFY numbering, counted in memory: the store keeps a ceiling (`reserved`)
 * written only when the count reaches it.
 */
export interface CseqWindow {
  cseq: number;
  reserved: number;
  notifies: number;
}

/** setTimeout's longest delay; a later deadline fires early and its owner re-checks the store. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One subscription dialog as this instance holds it at run time: the CSeq window, the
 * package data of the last NOTIFY, the NOTIFY in flight, a wish held back by a minimum
 * interval (RFC 6446), and its three timers (expiry, end of the held interval,
 * keep-alive). `disarm()` stops the timers; `close()` forgets everything. What survives a
 * restart lives in the store, not here.
 */
export class NotifyDialog {
  /** Unknown until the first NOTIFY since this instance took the dialog (then read from the store). */
  window?: CseqWindow;
  /** The package data of the last rendering (the store holds it only for persistData packages). */
  data?: Record<string, unknown>;
  /** When the last NOTIFY left (ms), and the recent ones (adaptive rate), for rate control. */
  lastSentAt?: number;
  recent?: number[];
  flight?: Flight;
  /** Wishes that arrived while a NOTIFY was held back: sent together when the interval ends. */
  heldWish?: Wish;
  private expiry?: NodeJS.Timeout;
  private heldTimer?: NodeJS.Timeout;
  private keepAliveTimer?: NodeJS.Timeout;

  armExpiry(at: Date, fire: () => void): void {
    clearTimeout(this.expiry);
    this.expiry = timer(at.getTime(), () => {
      this.expiry = undefined;
      fire();
    });
  }

  get held(): boolean {
    return this.heldTimer !== undefined;
  }

  /** Keeps `wish` until `at` (merged with any held before); `fire` gets them all then. */
  holdUntil(at: number, wish: Wish, fire: (held: Wish) => void): void {
    this.heldWish = mergeWishes(this.heldWish, wish);
    if (this.heldTimer) return;
    this.heldTimer = timer(at, () => {
      this.heldTimer = undefined;
      const held = this.heldWish ?? {};
      this.heldWish = undefined;
      fire(held);
    });
  }

  /** The wishes held back, released now (the interval is cut short by a NOTIFY that may not wait). */
  releaseHeld(): Wish | undefined {
    const held = this.heldWish;
    clearTimeout(this.heldTimer);
    this.heldTimer = undefined;
    this.heldWish = undefined;
    return held;
  }

  keepAlive(at: number, fire: () => void): void {
    clearTimeout(this.keepAliveTimer);
    this.keepAliveTimer = timer(at, () => {
      this.keepAliveTimer = undefined;
      fire();
    });
  }

  /** No timer of this dialog fires any more; its counts and a NOTIFY in flight stay. */
  disarm(): void {
    clearTimeout(this.expiry);
    clearTimeout(this.keepAliveTimer);
    this.expiry = this.keepAliveTimer = undefined;
    this.releaseHeld();
  }

  /** Forgets what was counted here: the store's state is newer (the dialog came back from another instance). */
  forget(): void {
    this.window = undefined;
    this.data = undefined;
    this.lastSentAt = undefined;
    this.recent = undefined;
  }

  /** Nothing here any more: the dialog ended, or another instance holds it now. */
  close(): void {
    this.disarm();
    this.forget();
  }

  /** Whether the object holds nothing (its map entry can go). */
  get idle(): boolean {
    return (
      this.window === undefined &&
      this.flight === undefined &&
      this.expiry === undefined &&
      this.heldTimer === undefined &&
      this.keepAliveTimer === undefined
    );
  }
}

export function mergeWishes(a: Wish | undefined, b: Wish): Wish {
  if (!a) return { ...b };
  return { final: b.final ?? a.final, full: a.full || b.full, force: a.force || b.force };
}

/** A timer that never keeps the process alive. */
function timer(atMs: number, fire: () => void): NodeJS.Timeout {
  const t = setTimeout(fire, Math.min(Math.max(0, atMs - Date.now()), MAX_TIMER_MS));
  t.unref();
  return t;
}
