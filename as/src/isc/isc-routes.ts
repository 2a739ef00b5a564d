import Router from 'koa-router';
import { jsonBody } from '../http/json-body.js';
import type { LocalDomain } from '../users/local-domain.js';
import { identityKey } from '../users/public-identity.js';
import type { UserDirectory } from '../users/user-directory.js';
import { associatedUriHeader } from '../registrations/associated-uris.js';
import type { IscDispatcher } from './dispatcher.js';
import { iscGuard } from './guard.js';

/** The ISC endpoint Kamailio calls: decisions on requests, events, digest credentials. */
export function iscRoutes(deps: {
  dispatcher: IscDispatcher;
  users: UserDirectory;
  domain: LocalDomain;
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

  // Which user a Request-URI (or a P-Preferred-Identity) names, for Kamailio's routing (route
  // RESOLVE_TARGET): {"user":"alice"} for a provisioned number or alias, or for a user's own
  // name; 404 for an unknown number, a name that is nobody's, or a URI not of our domain.
  // Read from the store, not the in-memory index: Kamailio caches the answer for a minute.
  router.get('/identity', async (ctx) => {
    // ('+' reaches us unescaped, which a query string reads as a space: a URI has no spaces)
    const uri = typeof ctx.query.uri === 'string' ? ctx.query.uri.replace(/ /g, '+') : '';
    const key = identityKey(uri, (h) => deps.domain.isLocalHost(h));
    let user: string | undefined;
    try {
      user = key ? await deps.users.holderOf(key) : undefined;
      if (!user && key?.startsWith('sip:') && (await deps.users.get(key.slice(4)))) user = key.slice(4);
    } catch {
      // store outage: the in-memory index (as of the last change) still routes numbers and
      // aliases; a name is taken as it is (the services answer for it)
      user = deps.domain.userOf(uri);
    }
    if (!user) {
      ctx.status = 404;
      ctx.body = { error: 'no such identity' };
      return;
    }
    ctx.body = { user };
  });

  // The user's public identities for the P-Associated-URI of a 200 to REGISTER (RFC 7315 4.2,
  // the IMS implicit registration set): their name first, then aliases and number. Kamailio
  // caches it in htable ident (emptied on every identity change), as the lookups above.
  router.get('/associated', async (ctx) => {
    const user = typeof ctx.query.user === 'string' ? ctx.query.user : '';
    if (!user || !(await deps.users.get(user))) {
      ctx.status = 404;
      ctx.body = { error: 'no such user' };
      return;
    }
    const aor = `sip:${user}@${deps.domain.domain}`;
    ctx.body = { uris: associatedUriHeader(aor, await deps.users.identitiesOf(aor)) };
  });

  return router;
}
