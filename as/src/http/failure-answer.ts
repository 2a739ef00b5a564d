import type { Context } from 'koa';
import { errorSummary } from './client-fault.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { STORE_RETRY_AFTER_SECONDS, type StoreOutages } from '../store/store-fault.js';
import { emptyBody } from './empty-body.js';

export const STORE_UNAVAILABLE_ANSWERS = 'ims_as_store_unavailable_answers_total';

/**
 * Answers an HTTP request whose handler failed: 503 with Retry-After while the store is
 * down (the client should come back, nothing is wrong with its request), 500 otherwise.
 */
export interface FailureAnswerDeps {
  log: Logger;
  metrics: Metrics;
  outages: StoreOutages;
  /** Label of the API in the metric. */
  api: string;
}

export function answerFailure(ctx: Context, err: unknown, deps: FailureAnswerDeps): void {
  if (deps.outages.note(err)) {
    deps.metrics.count(STORE_UNAVAILABLE_ANSWERS, { api: deps.api });
    deps.log.warn({ ...errorSummary(err), path: ctx.path, method: ctx.method }, 'store unavailable: 503');
    ctx.set('Retry-After', String(STORE_RETRY_AFTER_SECONDS));
    emptyBody(ctx, 503);
    return;
  }
  deps.log.error({ ...errorSummary(err), path: ctx.path, method: ctx.method }, 'HTTP handler failed: 500');
  emptyBody(ctx, 500);
}

/** Outermost middleware of an HTTP API: no failure escapes to koa's default handler. */
export function failureAnswers(deps: FailureAnswerDeps) {
  return async (ctx: Context, next: () => Promise<unknown>): Promise<void> => {
    try {
      await next();
    } catch (err) {
      answerFailure(ctx, err, deps);
    }
  };
}
