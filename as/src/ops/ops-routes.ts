import Router from 'koa-router';
import type { Metrics } from './metrics.js';

export interface HealthCheck {
  name: string;
  check(): Promise<string>;
}

/** A dependency that does not answer within this is reported failing (a MongoDB that is unreachable hangs for 30 s). */
const CHECK_TIMEOUT_MS = 2000;

function withinDeadline(check: Promise<string>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  return Promise.race([check, late]).finally(() => clearTimeout(timer));
}

/** Runs every check with its deadline: the /health body (and the operator page's health table). */
export async function checkAll(
  checks: HealthCheck[],
): Promise<{ ok: boolean; checks: Record<string, { ok: boolean; detail: string }> }> {
  const results = await Promise.all(
    checks.map(async (c) => {
      try {
        return [c.name, { ok: true, detail: await withinDeadline(c.check()) }] as const;
      } catch (err) {
        return [c.name, { ok: false, detail: (err as Error).message }] as const;
      }
    }),
  );
  return { ok: results.every(([, r]) => r.ok), checks: Object.fromEntries(results) };
}

/**
 * /health: 200 when every dependency answers, 503 naming the failing one otherwise;
 * /metrics: Prometheus text. Neither needs the ISC secret: they reveal no user data.
 */
export function opsRoutes(deps: { checks: HealthCheck[]; metrics: Metrics; version: string; startedAt: Date }): Router {
  const router = new Router();
  router.get('/health', async (ctx) => {
    const { ok, checks } = await checkAll(deps.checks);
    ctx.status = ok ? 200 : 503;
    ctx.body = {
      status: ok ? 'ok' : 'degraded',
      version: deps.version,
      uptimeSeconds: Math.round((Date.now() - deps.startedAt.getTime()) / 1000),
      checks,
    };
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = 'text/plain; version=0.0.4';
    ctx.body = await deps.metrics.scrape();
  });
  return router;
}
