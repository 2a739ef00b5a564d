import Router from 'koa-router';
import type { Metrics } from './metrics.js';

export interface HealthCheck {
  name: string;
  check(): Promise<string>;
}

/**
 * /health: 200 when every dependency answers, 503 naming the failing one otherwise;
 * /metrics: Prometheus text. Neither needs the ISC secret: they reveal no user data.
 */
export function opsRoutes(deps: { checks: HealthCheck[]; metrics: Metrics; version: string; startedAt: Date }): Router {
  const router = new Router();
  router.get('/health', async (ctx) => {
    const results = await Promise.all(deps.checks.map(async (c) => {
      try {
        return [c.name, { ok: true, detail: await c.check() }] as const;
      } catch (err) {
        return [c.name, { ok: false, detail: (err as Error).message }] as const;
      }
    }));
    const ok = results.every(([, r]) => r.ok);
    ctx.status = ok ? 200 : 503;
    ctx.body = {
      status: ok ? 'ok' : 'degraded',
      version: deps.version,
      uptimeSeconds: Math.round((Date.now() - deps.startedAt.getTime()) / 1000),
      checks: Object.fromEntries(results),
    };
  });
  router.get('/metrics', (ctx) => {
    ctx.type = 'text/plain; version=0.0.4';
    ctx.body = deps.metrics.render();
  });
  return router;
}
