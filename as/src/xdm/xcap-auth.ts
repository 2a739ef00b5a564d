import type { Middleware } from 'koa';
import { DigestAuthenticator, parseDigestHeader } from '../http/digest.js';
import { emptyBody } from '../http/empty-body.js';
import { peerAddress } from '../isc/guard.js';
import { liveSet } from '../util/live-set.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { UserDirectory } from '../users/user-directory.js';

/**
 * Ut-interface authentication for XCAP: HTTP Digest with the same users and HA1s as SIP,
 * or an identity asserted by an authenticating aggregation proxy (3GPP TS 33.222), taken
 * only from the configured proxy addresses. Sets ctx.state.identity to sip:user@domain.
 */
export function xcapAuth(deps: {
  digest: DigestAuthenticator;
  users: UserDirectory;
  domain: LocalDomain;
  /** (a function: the running configuration's list, which a reload replaces) */
  trustedProxies: readonly string[] | (() => readonly string[]);
  assertedIdentityHeader: string;
}): Middleware {
  const proxies = liveSet(deps.trustedProxies);
  const challenge = (ctx: Parameters<Middleware>[0], stale = false) => {
    ctx.set('WWW-Authenticate', deps.digest.challenge(stale));
    emptyBody(ctx, 401);
  };
  return async (ctx, next) => {
    const asserted = ctx.get(deps.assertedIdentityHeader);
    if (asserted && proxies().has(peerAddress(ctx.req.socket.remoteAddress))) {
      const identity = deps.domain.canonical(asserted.replace(/^\s*"?|"?\s*$/g, ''));
      if (!identity) {
        emptyBody(ctx, 403);
        return;
      }
      ctx.state.identity = identity;
      return next();
    }
    const creds = parseDigestHeader(ctx.get('authorization'));
    if (!creds) return challenge(ctx);
    // the credentials must be for this request's URI (RFC 7616 3.4)
    if (creds.uri !== ctx.req.url) return challenge(ctx);
    const user = await deps.users.get(creds.username);
    const verdict = deps.digest.verify(creds, ctx.method, user?.ha1);
    if (verdict === 'stale') return challenge(ctx, true);
    if (verdict !== 'ok' || !user) return challenge(ctx);
    ctx.state.identity = `sip:${user.user}@${user.domain}`;
    return next();
  };
}
