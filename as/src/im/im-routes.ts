import Router from 'koa-router';
import type { Context } from 'koa';
import { emptyBody } from '../http/empty-body.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { ConversationHistory, HistoryEntry } from './history.js';
import type { ImPolicies } from './im-policies.js';
import type { MessageStore, StoredMessage } from './message-store.js';

const PAGE_DEFAULT = 50;
const PAGE_MAX = 500;

/**
 * The user's own IM data over HTTP, behind the same authentication as XCAP (the caller's
 * identity is ctx.state.identity): stored (deferred) messages and conversation history.
 *
 *   GET    /im/users/<xui>/deferred[?after=<id>&limit=N]   list, oldest first
 *   GET    /im/users/<xui>/deferred/<id>                   one message, with its body
 *   DELETE /im/users/<xui>/deferred/<id>
 *   GET    /im/users/<xui>/history[?before=<id>&peer=<uri>&limit=N]   newest first
 *   GET    /im/users/<xui>/history/<id>
 *   DELETE /im/users/<xui>/history/<id>
 *   DELETE /im/users/<xui>/history                         everything
 */
export function imRoutes(deps: {
  store: MessageStore;
  history: ConversationHistory;
  policies: ImPolicies;
  domain: LocalDomain;
}): Router {
  const router = new Router({ prefix: '/im/users/:xui' });
  /** Runs `handler` for the mailbox owner when the caller is that user; 404/403 otherwise. */
  const own =
    (handler: (ctx: Context, xui: string) => Promise<void>) =>
    async (ctx: Context): Promise<void> => {
      const xui = deps.domain.canonical(ctx.params.xui ?? '');
      if (!xui) return emptyBody(ctx, 404);
      // a user reads and deletes only their own messages
      if (ctx.state.identity !== xui) return emptyBody(ctx, 403);
      await handler(ctx, xui);
    };

  router.get(
    '/deferred',
    own(async (ctx, xui) => {
      const page = await deps.store.list(xui, { limit: limitOf(ctx), after: query(ctx, 'after') });
      ctx.body = { messages: page.map((m) => storedSummary(m)) };
    }),
  );
  router.get(
    '/deferred/:id',
    own(async (ctx, xui) => {
      const m = await deps.store.get(xui, ctx.params.id ?? '');
      if (!m) return emptyBody(ctx, 404);
      ctx.body = { ...storedSummary(m), body: m.body };
    }),
  );
  router.delete(
    '/deferred/:id',
    own(async (ctx, xui) => {
      emptyBody(ctx, (await deps.store.remove(ctx.params.id ?? '', xui)) ? 204 : 404);
    }),
  );

  router.get(
    '/history',
    own(async (ctx, xui) => {
      const page = await deps.history.list(xui, {
        limit: limitOf(ctx),
        before: query(ctx, 'before'),
        peer: query(ctx, 'peer'),
      });
      ctx.body = { entries: page.map((e) => historySummary(e)) };
    }),
  );
  router.get(
    '/history/:id',
    own(async (ctx, xui) => {
      const e = await deps.history.get(xui, ctx.params.id ?? '');
      if (!e) return emptyBody(ctx, 404);
      ctx.body = { ...historySummary(e), body: e.body };
    }),
  );
  router.delete(
    '/history/:id',
    own(async (ctx, xui) => {
      const policy = await deps.policies.of(xui);
      const gone = await deps.history.remove(xui, ctx.params.id ?? '', policy.history.maxMessages);
      emptyBody(ctx, gone ? 204 : 404);
    }),
  );
  router.delete(
    '/history',
    own(async (ctx, xui) => {
      ctx.body = { deleted: await deps.history.clear(xui) };
    }),
  );
  return router;
}

function query(ctx: Context, name: string): string | undefined {
  const v = ctx.query[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function limitOf(ctx: Context): number {
  const n = Number(query(ctx, 'limit') ?? PAGE_DEFAULT);
  return Number.isInteger(n) && n >= 1 ? Math.min(n, PAGE_MAX) : PAGE_DEFAULT;
}

function storedSummary(m: StoredMessage) {
  return {
    id: m._id,
    from: m.fromHeader,
    sentAt: m.sentAt.toISOString(),
    expiresAt: m.expiresAt.toISOString(),
    contentType: m.contentType,
    size: m.size,
    state: m.state === 'kept' ? 'delivered' : 'waiting',
    attempts: m.attempts,
    kind: m.kind,
    ...(m.via ? { via: m.via } : {}),
  };
}

function historySummary(e: HistoryEntry) {
  return {
    id: e._id,
    direction: e.direction,
    peer: e.peer,
    at: e.at.toISOString(),
    contentType: e.contentType,
    size: e.size,
    // a message to another domain: the final status it got there
    ...(typeof e.status === 'number' ? { status: e.status } : {}),
  };
}
