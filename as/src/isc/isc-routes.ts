import Router from 'koa-router';
import { jsonBody } from '../http/json-body.js';
import type { UserDirectory } from '../users/user-directory.js';
import type { IscDispatcher } from './dispatcher.js';
import { iscGuard } from './guard.js';

/** The ISC endpoint Kamailio calls: decisions on requests, events, digest credentials. */
export function iscRoutes(deps: {
  dispatcher: IscDispatcher;
  users: UserDirectory;
  secret: string;
  trustedAddresses: readonly string[] | (() => readonly string[]);
  bodyLimit: number;
}): Router {
  const router = new Router({ prefix: '/isc' });
  router.use(iscGuard(deps));

  router.post('/request', async (ctx) => {
    const req = await jsonBody<unknown>(ctx, deps.bodyLimit);
    if (!req) return;
    ctx.body = await deps.dispatcher.request(req);
  });

  router.post('/event', async (ctx) => {
    const ev = await jsonBody<unknown>(ctx, deps.bodyLimit);
    if (!ev) return;
    if (await deps.dispatcher.event(ev)) {
      ctx.status = 204;
      return;
    }
    ctx.status = 400;
    ctx.body = { error: 'event does not match schemas/isc-event.schema.json' };
  });

  router.get('/credentials', async (ctx) => {
    const user = typeof ctx.query.user === 'string' ? ctx.query.user : '';
    const rec = user ? await deps.users.get(user) : null;
    if (!rec) {
      ctx.status = 404;
      ctx.body = { error: 'no such user' };
      return;
    }
    ctx.body = { ha1: rec.ha1 };
  });

  return router;
}
