/**
 * Fixed one-minute windows for per-user counters: every AS instance derives the same window
 * from the clock alone, so instances sharing a store count into the same document without
 * talking to each other. Pure: no I/O, no clock of its own.
 */

export const WINDOW_MS = 60_000;

/** What a user's requests are counted as. */
export type LimitedKind = 'message' | 'subscribe' | 'group';

export interface MinuteWindow {
  /** Minutes since the epoch: the same number on every instance during that minute. */
  index: number;
  startsAt: number;
  endsAt: number;
}

export function minuteWindow(nowMs: number): MinuteWindow {
  const index = Math.floor(nowMs / WINDOW_MS);
  return { index, startsAt: index * WINDOW_MS, endsAt: (index + 1) * WINDOW_MS };
}

/** The counter document's `_id`: one per kind, user and minute. */
export function counterId(kind: LimitedKind, user: string, window: MinuteWindow): string {
  return `${kind}|${window.index}|${user}`;
}

/** Whole seconds until the window ends (at least 1): what Retry-After says. */
export function secondsLeft(window: MinuteWindow, nowMs: number): number {
  return Math.max(1, Math.ceil((window.endsAt - nowMs) / 1000));
}
