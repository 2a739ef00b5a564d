import Router from 'koa-router';
import type { Context } from 'koa';
import { answerUserView, type OpsAdminDeps } from '../admin/ops-admin-routes.js';
import { sameSecret } from '../http/secrets.js';
import { LOGIN_PAGE, OPERATOR_PAGE } from './operator-page.js';
import { checkAll, type HealthCheck } from './ops-routes.js';
import type { OpsSampler } from './ops-sampler.js';

/** The token from `Authorization: Bearer` or the page's cookie (set by the login form). */
function presentedToken(ctx: Context): string {
  const auth = ctx.get('authorization');
  if (auth.startsWith('Bearer ')) return auth.slice(7);
  const cookie = /(?:^|;\s*)ims_admin=([^;]*)/.exec(ctx.get('cookie'));
  try {
    return cookie ? decodeURIComponent(cookie[1]!) : '';
  } catch {
    return '';
  }
}

/**
 * The operator page on the admin (ISC) port, behind the admin token: /admin/ui (the page,
 * or the token form), /admin/ui/overview (counts, rates, the last hour, health),
 * /admin/ui/users/:user (one user). Off, like the admin API, when no token is configured.
 */
export function operatorPageRoutes(
  deps: OpsAdminDeps & {
    sampler: OpsSampler;
    sampleSeconds: number;
    checks: HealthCheck[];
    version: string;
    node: string;
  },
): Router {
  const router = new Router({ prefix: '/admin/ui' });
  const expected = Buffer.from(deps.token);
  const allowed = (ctx: Context) => deps.token !== '' && sameSecret(presentedToken(ctx), expected);
  const noStore = (ctx: Context) => ctx.set('Cache-Control', 'no-store');

  router.get('/', (ctx) => {
    if (!deps.token) {
      ctx.status = 404;
      return;
    }
    noStore(ctx);
    ctx.type = 'text/html; charset=utf-8';
    // a page that runs no script from elsewhere and cannot be framed
    ctx.set(
      'Content-Security-Policy',
      "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
    );
    if (!allowed(ctx)) {
      ctx.status = 401;
      ctx.body = LOGIN_PAGE;
      return;
    }
    ctx.body = OPERATOR_PAGE;
  });

  router.use(async (ctx, next) => {
    if (ctx.path === '/admin/ui' || ctx.path === '/admin/ui/') return next();
    if (!allowed(ctx)) {
      ctx.status = 401;
      ctx.body = { error: 'admin token required' };
      return;
    }
    noStore(ctx);
    await next();
  });

  router.get('/overview', async (ctx) => {
    const ring = deps.sampler.ring;
    if (!ring.latest) await deps.sampler.sampleNow();
    const series = ring.series();
    const latest = ring.latest;
    ctx.body = {
      version: deps.version,
      node: deps.node,
      sampleSeconds: deps.sampleSeconds,
      // the "now" rates and latency over the last minute: one interval is too short to read
      counts: latest?.counts,
      totals: latest?.totals,
      rates: ring.recent(60_000),
      series,
      health: await checkAll(deps.checks),
    };
  });

  router.get('/users/:user', (ctx) => answerUserView(deps, ctx));
  return router;
}
