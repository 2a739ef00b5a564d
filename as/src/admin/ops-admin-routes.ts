import Router from 'koa-router';
import type { Charging } from '../charging/charging.js';
import type { Notifier } from '../events/notifier.js';
import type { Subscription } from '../events/event-package.js';
import type { ConversationHistory } from '../im/history.js';
import type { MessageStore } from '../im/message-store.js';
import type { StoreAndForward } from '../im/store-and-forward.js';
import { bearerGuard } from '../http/secrets.js';
import type { Registrations } from '../registrations/registrations.js';
import type { LocalDomain } from '../users/local-domain.js';

/** Most stored messages and subscriptions one answer lists (counts are always complete). */
const LIST_LIMIT = 200;
/** CDRs one tail answer carries at most. */
const CDR_LIMIT = 1000;

export interface OpsAdminDeps {
  token: string;
  domain: LocalDomain;
  registrations: Registrations;
  notifier: Notifier;
  messages: MessageStore;
  forward: StoreAndForward;
  history: ConversationHistory;
  charging: Charging;
}

/** A subscription as an operator reads it (no dialog internals). */
export function subscriptionView(s: Subscription): Record<string, unknown> {
  return {
    id: s._id,
    event: s.event,
    watcher: s.watcher,
    resource: s.resource,
    state: s.state,
    expiresAt: s.expiresAt,
    notifies: s.notifyCount,
    createdAt: s.createdAt,
  };
}

/** `alice`, `alice@domain` or `sip:alice@domain`: the canonical identity, or undefined when not ours. */
/** Answers GET …/users/:user with the user's view, or 404 for a name that is not a user of the domain. */
export async function answerUserView(
  deps: OpsAdminDeps,
  ctx: { params: Record<string, string | undefined>; status: number; body: unknown },
): Promise<void> {
  const aor = identityOf(deps.domain, ctx.params.user ?? '');
  if (!aor) {
    ctx.status = 404;
    ctx.body = { error: `${ctx.params.user} is not a user of ${deps.domain.domain}` };
    return;
  }
  ctx.body = await userView(deps, aor);
}

export function identityOf(domain: LocalDomain, user: string): string | undefined {
  const uri = /^sips?:/.test(user) ? user : user.includes('@') ? `sip:${user}` : `sip:${user}@${domain.domain}`;
  return domain.canonical(uri);
}

/** What the AS holds about one user: the operator's view (ims-ctl user, the operator page). */
export async function userView(deps: OpsAdminDeps, aor: string): Promise<Record<string, unknown>> {
  const live = { state: { $ne: 'terminated' } };
  const [contacts, subscriptions, watchers, stored, storedCount, historySize] = await Promise.all([
    deps.registrations.contacts(aor),
    deps.notifier.find({ watcher: aor, ...live }),
    deps.notifier.find({ resource: aor, ...live }),
    deps.messages.list(aor, { limit: LIST_LIMIT }),
    deps.messages.count(aor),
    deps.history.count(aor),
  ]);
  return {
    aor,
    registrations: contacts.map((c) => ({
      contact: c.uri,
      expires: new Date(c.expires * 1000).toISOString(),
      received: c.received,
      // what the device registered it can do (RFC 3840 feature tags, methods, instance)
      params: c.params ?? {},
    })),
    subscriptions: subscriptions.map(subscriptionView),
    watchers: watchers.map(subscriptionView),
    storedMessages: {
      count: storedCount,
      messages: stored.map((m) => ({
        id: m._id,
        from: m.sender,
        kind: m.kind,
        state: m.state,
        size: m.size,
        sentAt: m.sentAt,
        expiresAt: m.expiresAt,
        attempts: m.attempts,
      })),
    },
    historySize,
  };
}

/**
 * The operator's read and repair API behind the admin token: one user's state, live
 * subscriptions by package, ending a subscription, expiring a mailbox, the latest CDRs.
 */
export function opsAdminRoutes(deps: OpsAdminDeps): Router {
  const router = new Router({ prefix: '/admin' });
  router.use(bearerGuard(deps.token, 'admin'));

  router.get('/users/:user/state', (ctx) => answerUserView(deps, ctx));

  router.get('/subscriptions', async (ctx) => {
    const pkg = typeof ctx.query.package === 'string' ? ctx.query.package : undefined;
    // counted by the store; only the first LIST_LIMIT are read
    const counts = await deps.notifier.liveCounts();
    const byPackage = Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));
    const total = pkg ? (counts[pkg] ?? 0) : Object.values(counts).reduce((a, b) => a + b, 0);
    const listed = await deps.notifier.find(
      { state: { $ne: 'terminated' }, ...(pkg ? { event: pkg } : {}) },
      LIST_LIMIT,
    );
    ctx.body = { byPackage, total, subscriptions: listed.map(subscriptionView) };
  });

  // Ends a live subscription with a final NOTIFY (Subscription-State: terminated;reason=deactivated)
  router.delete('/subscriptions/:id', async (ctx) => {
    const id = ctx.params.id ?? '';
    const [sub] = await deps.notifier.find({ _id: id, state: { $ne: 'terminated' } });
    if (!sub) {
      ctx.status = 404;
      ctx.body = { error: 'no live subscription with this id' };
      return;
    }
    await deps.notifier.end(id, 'deactivated');
    ctx.status = 204;
  });

  // Expires every message waiting in a mailbox now: each gets its CDR and failure notification, as at its expiry
  router.post('/users/:user/mailbox/expire', async (ctx) => {
    const aor = identityOf(deps.domain, ctx.params.user ?? '');
    if (!aor) {
      ctx.status = 404;
      ctx.body = { error: `${ctx.params.user} is not a user of ${deps.domain.domain}` };
      return;
    }
    ctx.body = { aor, expired: await deps.forward.expireMailbox(aor) };
  });

  // This instance's latest CDRs (?limit=N), or those after a sequence number (?after=SEQ: follow)
  router.get('/cdrs', async (ctx) => {
    const limit = Math.min(CDR_LIMIT, Math.max(1, Number(ctx.query.limit ?? 20) || 20));
    const after = ctx.query.after === undefined ? undefined : Number(ctx.query.after);
    if (after !== undefined && !Number.isInteger(after)) {
      ctx.status = 400;
      ctx.body = { error: 'after must be a sequence number' };
      return;
    }
    const { nextSeq } = deps.charging.metrics();
    const fromSeq = after !== undefined ? after + 1 : Math.max(1, nextSeq - limit);
    ctx.body = { nextSeq, cdrs: await deps.charging.query({ nodeId: deps.charging.nodeId, fromSeq, limit }) };
  });
  return router;
}
