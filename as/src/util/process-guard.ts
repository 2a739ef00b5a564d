/**
 * The last line of defence for work started without `contain`: by default Node ends the
 * process on an unhandled rejection, so one forgotten `.catch` during a store outage
 * would take every SIP client of this AS down with it. Installed once, by main.
 *
 * - An unhandled rejection is a bug, not a state the process cannot trust: it is logged
 *   with its cause, counted, and the AS goes on.
 * - An uncaught exception left a synchronous call half done (a dialog's CSeq, a stream
 *   window may be inconsistent now), and Node documents that resuming is unsafe: it is
 *   logged and counted, the AS stops the way SIGTERM stops it (decisions in flight
 *   answered, CDRs flushed) within `stopWithinMs`, and exits with status 70 so that the
 *   supervisor restarts it.
 */
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';

export const UNHANDLED_REJECTIONS = 'ims_as_process_unhandled_rejections_total';
export const UNCAUGHT_EXCEPTIONS = 'ims_as_process_uncaught_exceptions_total';
/** EX_SOFTWARE of sysexits.h: an internal error, not a configuration problem. */
export const UNCAUGHT_EXIT_CODE = 70;

export interface ProcessGuardOptions {
  log: Logger;
  metrics: Metrics;
  /** Orderly stop after an uncaught exception (the same as on SIGTERM). */
  stop: () => Promise<void>;
  stopWithinMs?: number;
  exit?: (code: number) => void;
  /** Where the two events come from (the process; an emitter in unit tests). */
  source?: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
}

/** Installs the handlers; returns a function that removes them (for tests). */
export function guardProcess(opts: ProcessGuardOptions): () => void {
  const { log, metrics } = opts;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  metrics
    .describe(UNHANDLED_REJECTIONS, 'promises rejected with no handler (a bug: logged with the cause, the AS goes on)')
    .describe(
      UNCAUGHT_EXCEPTIONS,
      'exceptions no code caught (the AS stops in order and exits for its supervisor to restart it)',
    );
  const onRejection = (reason: unknown) => {
    metrics.count(UNHANDLED_REJECTIONS);
    log.error({ err: reason }, 'unhandled rejection; the AS goes on');
  };
  let failing = false;
  const onException = (err: Error) => {
    metrics.count(UNCAUGHT_EXCEPTIONS);
    log.fatal({ err }, 'uncaught exception: stopping in order, then exiting for a restart');
    if (failing) return;
    failing = true;
    const timer = setTimeout(() => exit(UNCAUGHT_EXIT_CODE), opts.stopWithinMs ?? 5000);
    opts
      .stop()
      .then(
        () => exit(UNCAUGHT_EXIT_CODE),
        (stopErr: unknown) => {
          log.error({ err: stopErr }, 'stop after an uncaught exception failed');
          exit(UNCAUGHT_EXIT_CODE);
        },
      )
      .finally(() => clearTimeout(timer));
  };
  const source = opts.source ?? process;
  source.on('unhandledRejection', onRejection);
  source.on('uncaughtException', onException);
  return () => {
    source.off('unhandledRejection', onRejection);
    source.off('uncaughtException', onException);
  };
}
