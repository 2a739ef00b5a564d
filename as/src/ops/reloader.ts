import { ConfigError, type AsConfig } from '../config/config.js';
import { applyPlan, planReload, type ReloadPlan } from '../config/reload-plan.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from './metrics.js';

export type ReloadOutcome = ({ ok: true } & ReloadPlan) | { ok: false; problems: string[] };

/**
 * Re-reads the settings (file and environment, as at start) and applies to the running AS
 * those the settings table marks reloadable; logs which changed settings wait for a restart.
 * An invalid file changes nothing: the AS keeps running on what it has.
 */
export class ConfigReloader {
  constructor(
    private readonly deps: {
      running: AsConfig;
      reread: () => AsConfig;
      log: Logger;
      metrics: Metrics;
      /** Side effects of applied changes that a plain value change does not carry (log level, CDR rotation). */
      afterApply: (plan: ReloadPlan) => void;
    },
  ) {
    deps.metrics.describe(
      'ims_as_config_reloads_total',
      'reloads of the settings (SIGHUP, POST /admin/reload) by result',
    );
  }

  reload(trigger: string): ReloadOutcome {
    const { log, metrics } = this.deps;
    let next: AsConfig;
    try {
      next = this.deps.reread();
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
      log.error({ trigger, problems }, 'reload refused: the configuration is invalid; running settings kept');
      metrics.count('ims_as_config_reloads_total', { result: 'refused' });
      return { ok: false, problems };
    }
    const plan = planReload(this.deps.running, next);
    // the reload's own lines are written at the more verbose of the two log levels: before
    // a change to a quieter level, after a change to a chattier one
    const rank = (level: string) => log.levels.values[level] ?? Infinity;
    const quieter = rank(next.log.level) > rank(this.deps.running.log.level);
    const report = () => {
      log.info({ trigger, applied: plan.applied }, `settings reloaded: ${plan.applied.length} applied`);
      if (plan.needRestart.length) {
        log.warn(
          { trigger, needRestart: plan.needRestart },
          `changed settings that take effect only after a restart: ${plan.needRestart.map((c) => c.path).join(', ')}`,
        );
      }
    };
    if (quieter) report();
    applyPlan(this.deps.running, next, plan);
    this.deps.afterApply(plan);
    if (!quieter) report();
    metrics.count('ims_as_config_reloads_total', { result: 'applied' });
    return { ok: true, ...plan };
  }
}
