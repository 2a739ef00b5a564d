import { getPath, setPath, SETTINGS, type AsConfig } from './config.js';

/** One setting whose value differs between the running configuration and the one just read. */
export interface SettingChange {
  path: string;
  env: string;
  from: unknown;
  to: unknown;
}

/** What a reload does: changes applied at once, and changes that wait for a restart. */
export interface ReloadPlan {
  applied: SettingChange[];
  needRestart: SettingChange[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Sorts every changed setting by the `reloadable` mark of the settings table. */
export function planReload(running: AsConfig, next: AsConfig): ReloadPlan {
  const plan: ReloadPlan = { applied: [], needRestart: [] };
  for (const s of SETTINGS) {
    const from = getPath(running, s.path);
    const to = getPath(next, s.path);
    if (same(from, to)) continue;
    const secret = /secret|token/i.test(s.path);
    const change = { path: s.path, env: s.env, from: secret ? '***' : from, to: secret ? '***' : to };
    (s.reloadable ? plan.applied : plan.needRestart).push(change);
  }
  return plan;
}

/**
 * Writes the reloadable changes into the running configuration object, which the services
 * hold and read at use time; lists are replaced (never edited in place) so readers that
 * cache a derived form can notice by identity.
 */
export function applyPlan(running: AsConfig, next: AsConfig, plan: ReloadPlan): void {
  for (const c of plan.applied)
    setPath(running as unknown as Record<string, unknown>, c.path, structuredClone(getPath(next, c.path)));
}
