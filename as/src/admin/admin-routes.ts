import Router from 'koa-router';
import { jsonBody } from '../http/json-body.js';
import { bearerGuard } from '../http/secrets.js';
import type { ServiceMessenger } from '../im/service-messages.js';
import { UserError, type UserDirectory } from '../users/user-directory.js';
import type { ReloadOutcome } from '../ops/reloader.js';

/**
 * Admin API for provisioning while the AS runs (the embedded store belongs to one process,
 * so the CLI goes through here). Bearer token; off when no token is configured.
 */
export function adminRoutes(deps: { users: UserDirectory; messenger: ServiceMessenger; token: string; reload?: () => ReloadOutcome }): Router {
  const router = new Router({ prefix: '/admin' });
  router.use(bearerGuard(deps.token, 'admin'));
  router.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      ctx.status = err.code === 'exists' ? 409 : err.code === 'missing' ? 404 : 400;
      ctx.body = { error: err.message };
    }
  });
  router.get('/users', async (ctx) => {
    ctx.body = (await deps.users.list()).map((u) => ({ uri: `sip:${u.user}@${u.domain}`, createdAt: u.createdAt }));
  });
  router.post('/users', async (ctx) => {
    const b = await jsonBody<{ user?: string; password?: string }>(ctx, 4096);
    if (!b) return;
    const rec = await deps.users.add(b.user ?? '', b.password ?? '');
    ctx.status = 201;
    ctx.body = { uri: `sip:${rec.user}@${rec.domain}` };
  });
  router.put('/users/:user/password', async (ctx) => {
    const b = await jsonBody<{ password?: string }>(ctx, 4096);
    if (!b) return;
    await deps.users.setPassword(ctx.params.user ?? '', b.password ?? '');
    ctx.status = 204;
  });
  // Operator barring of a user's outgoing instant messages: {"barred": true|false}
  router.put('/users/:user/im-barred', async (ctx) => {
    const b = await jsonBody<{ barred?: unknown }>(ctx, 4096);
    if (!b) return;
    if (typeof b.barred !== 'boolean') {
      ctx.status = 400;
      ctx.body = { error: 'body must be {"barred": true|false}' };
      return;
    }
    await deps.users.setImBarred(ctx.params.user ?? '', b.barred);
    ctx.status = 204;
  });
  // A MESSAGE from the service to a user; answers with the delivery's final outcome.
  router.post('/messages', async (ctx) => {
    const b = await jsonBody<{ to?: string; text?: string }>(ctx, 64 * 1024);
    if (!b) return;
    if (typeof b.to !== 'string' || typeof b.text !== 'string' || !b.text) {
      ctx.status = 400;
      ctx.body = { error: 'to and text are required' };
      return;
    }
    try {
      const outcome = await deps.messenger.send(b.to, b.text);
      ctx.body = { code: outcome.code, reason: outcome.reason, timedOut: outcome.timedOut };
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      ctx.status = 400;
      ctx.body = { error: err.message };
    }
  });
  // Same as SIGHUP: re-read the settings, apply the reloadable ones, name those needing a restart
  router.post('/reload', (ctx) => {
    if (!deps.reload) {
      ctx.status = 404;
      return;
    }
    const outcome = deps.reload();
    // an invalid file: the running settings are kept, the problems are named
    ctx.status = outcome.ok ? 200 : 422;
    ctx.body = outcome;
  });
  router.delete('/users/:user', async (ctx) => {
    await deps.users.remove(ctx.params.user ?? '');
    ctx.status = 204;
  });
  return router;
}
