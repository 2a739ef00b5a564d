import Router from 'koa-router';
import { jsonBody } from '../http/json-body.js';
import { bearerGuard } from '../http/secrets.js';
import type { ChatRooms } from '../conference/chat-rooms.js';
import type { ServiceMessenger } from '../im/service-messages.js';
import { UserError, type UserDirectory } from '../users/user-directory.js';
import type { ReloadOutcome } from '../ops/reloader.js';

/**
 * Admin API for provisioning while the AS runs (the embedded store belongs to one process,
 * so the CLI goes through here). Bearer token; off when no token is configured.
 */
export function adminRoutes(deps: {
  users: UserDirectory;
  messenger: ServiceMessenger;
  token: string;
  reload?: () => ReloadOutcome;
  rooms?: ChatRooms;
}): Router {
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
    const b = await jsonBody<{ user?: string; password?: string; tel?: unknown }>(ctx, 4096);
    if (!b) return;
    if (b.tel !== undefined && typeof b.tel !== 'string')
      throw new UserError('tel must be a string such as "+15551234"', 'invalid');
    const rec = await deps.users.add(b.user ?? '', b.password ?? '', b.tel);
    ctx.status = 201;
    ctx.body = { uri: `sip:${rec.user}@${rec.domain}`, ...(b.tel ? await deps.users.identitiesOf(rec.user) : {}) };
  });
  // A user's public identities besides their name: {"tel": "+15551234", "aliases": ["sip:..."]}
  router.get('/users/:user/identities', async (ctx) => {
    const user = ctx.params.user ?? '';
    if (!(await deps.users.exists(user))) throw new UserError(`no user ${user}`, 'missing');
    ctx.body = await deps.users.identitiesOf(user);
  });
  // {"tel": "+15551234"} gives the number (409 when another user has it); DELETE takes it away
  router.put('/users/:user/tel', async (ctx) => {
    const b = await jsonBody<{ tel?: unknown }>(ctx, 4096);
    if (!b) return;
    if (typeof b.tel !== 'string') throw new UserError('body must be {"tel": "+15551234"}', 'invalid');
    await deps.users.setTel(ctx.params.user ?? '', b.tel);
    ctx.status = 204;
  });
  router.delete('/users/:user/tel', async (ctx) => {
    await deps.users.setTel(ctx.params.user ?? '', undefined);
    ctx.status = 204;
  });
  // {"alias": "alice.smith"}: sip:alice.smith@<domain> reaches the user and counts as them
  router.post('/users/:user/aliases', async (ctx) => {
    const b = await jsonBody<{ alias?: unknown }>(ctx, 4096);
    if (!b) return;
    if (typeof b.alias !== 'string') throw new UserError('body must be {"alias": "alice.smith"}', 'invalid');
    ctx.status = 201;
    ctx.body = { uri: await deps.users.addAlias(ctx.params.user ?? '', b.alias) };
  });
  router.delete('/users/:user/aliases/:alias', async (ctx) => {
    await deps.users.removeAlias(ctx.params.user ?? '', ctx.params.alias ?? '');
    ctx.status = 204;
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
  // chat rooms (docs/conference.md): sip:<name>@<domain>, answered by the conference focus
  router.get('/rooms', async (ctx) => {
    ctx.body = deps.rooms ? (await deps.rooms.list()).map(roomView) : [];
  });
  router.post('/rooms', async (ctx) => {
    if (!deps.rooms) throw new UserError('chat rooms are not served', 'invalid');
    const b =
      (await jsonBody<{ name?: unknown; owner?: unknown; subject?: unknown; max?: unknown; private?: unknown }>(
        ctx,
        4096,
      )) ?? {};
    if (typeof b.name !== 'string' || typeof b.owner !== 'string')
      throw new UserError('name and owner are required strings', 'invalid');
    if (b.subject !== undefined && typeof b.subject !== 'string')
      throw new UserError('subject must be a string', 'invalid');
    if (b.max !== undefined && typeof b.max !== 'number') throw new UserError('max must be a number', 'invalid');
    const room = await deps.rooms.add({
      name: b.name,
      owner: b.owner,
      private: b.private === true,
      ...(b.subject !== undefined ? { subject: b.subject as string } : {}),
      ...(b.max !== undefined ? { maxParticipants: b.max as number } : {}),
    });
    ctx.status = 201;
    ctx.body = roomView(room);
  });
  router.delete('/rooms/:name', async (ctx) => {
    if (!deps.rooms) throw new UserError('chat rooms are not served', 'invalid');
    await deps.rooms.remove(ctx.params.name ?? '');
    ctx.status = 204;
  });
  router.delete('/users/:user', async (ctx) => {
    await deps.users.remove(ctx.params.user ?? '');
    ctx.status = 204;
  });
  return router;
}

function roomView(r: Awaited<ReturnType<ChatRooms['list']>>[number]) {
  return {
    uri: r._id,
    name: r.name,
    owner: r.owner,
    private: r.private,
    ...(r.subject !== undefined ? { subject: r.subject } : {}),
    ...(r.maxParticipants !== undefined ? { max: r.maxParticipants } : {}),
  };
}
