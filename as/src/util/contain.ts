/**
 * Reactions that run beside the request that caused them (a NOTIFY fan-out after a PUBLISH,
 * a charging record after a subscription ends) must never become unhandled rejections: one
 * store error would otherwise stop the whole AS. `contain` is the one way such work is
 * started: its failure is logged with its cause and counted, and the AS goes on.
 */
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';

export const REACTION_FAILURES = 'ims_as_reaction_failures_total';

export interface FailureSink {
  log: Logger;
  metrics?: Metrics;
}

/**
 * Runs `work` in the background; a failure is logged (with `context`, e.g. the dialog it
 * was for) and counted under `reaction`.
 */
export function contain(
  sink: FailureSink,
  reaction: string,
  work: Promise<unknown> | (() => Promise<unknown>),
  context?: Record<string, unknown>,
): void {
  survive(sink, reaction, work, context).catch(() => {
    // survive() handles every failure of the work; only its own reporting failing (a logger
    // that throws) lands here, and there is nothing left to report it with but the counter
    sink.metrics?.count(REACTION_FAILURES, { reaction });
  });
}

/**
 * Awaits `work` and contains its failure the same way: for work that must be done before
 * an answer leaves, but whose failure must not change an answer already decided (the CDR
 * of a message that is stored: the client is told 202 either way).
 */
export async function survive(
  sink: FailureSink,
  reaction: string,
  work: Promise<unknown> | (() => Promise<unknown>),
  context?: Record<string, unknown>,
): Promise<void> {
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (err) {
    failed(sink, reaction, err, context);
  }
}

function failed(sink: FailureSink, reaction: string, err: unknown, context?: Record<string, unknown>): void {
  sink.metrics?.count(REACTION_FAILURES, { reaction });
  sink.log.error({ ...context, err, reaction }, 'reaction failed; the AS goes on');
}
