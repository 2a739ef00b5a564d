/**
 * The worker thread of {@link DocumentChecker}: parses and checks whole documents off the main
 * thread, one job at a time, answering each with its id.
 */
import { parentPort } from 'node:worker_threads';
import { parseAndCheck, type ParseLimits } from './document-check.js';
import type { ValidationContext } from './usages/usage.js';

export interface CheckJob {
  id: number;
  auid: string;
  body: Uint8Array;
  limits: ParseLimits;
  ctx: ValidationContext;
}

parentPort?.on('message', (job: CheckJob) => {
  try {
    parentPort!.postMessage({ id: job.id, outcome: parseAndCheck(job.auid, job.body, job.limits, job.ctx) });
  } catch (err) {
    parentPort!.postMessage({ id: job.id, error: err instanceof Error ? err.message : String(err) });
  }
});
