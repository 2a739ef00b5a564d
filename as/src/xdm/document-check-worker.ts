/**
 * The worker thread of {@link DocumentChecker}: parses and checks whole documents, and applies
 * node operations to large stored ones, off the main thread, one job at a time, answering each
 * with its id.
 */
import { parentPort } from 'node:worker_threads';
import { applyNodeOp, mergedRlsServices, parseAndCheck, type NodeOp, type ParseLimits } from './document-check.js';
import type { NodeSelector } from './xcap-uri.js';
import type { ValidationContext } from './usages/usage.js';

/** A whole document to check, or a node operation on a stored document. */
export type CheckJob = { id: number; auid: string; ctx: ValidationContext } & (
  | { kind: 'check'; body: Uint8Array; limits: ParseLimits }
  | { kind: 'node'; stored: string; sel: NodeSelector; op: NodeOp }
  | { kind: 'merge-rls'; bodies: string[] }
);

function run(job: CheckJob): unknown {
  switch (job.kind) {
    case 'check':
      return parseAndCheck(job.auid, job.body, job.limits, job.ctx);
    case 'node':
      return applyNodeOp(job.auid, job.stored, job.sel, job.op, job.ctx);
    default:
      return mergedRlsServices(job.bodies);
  }
}

parentPort?.on('message', (job: CheckJob) => {
  try {
    parentPort!.postMessage({ id: job.id, outcome: run(job) });
  } catch (err) {
    parentPort!.postMessage({ id: job.id, error: err instanceof Error ? err.message : String(err) });
  }
});
