import type { Middleware } from 'koa';
import { sameSecret } from '../http/secrets.js';
import { liveSet } from '../util/live-set.js';

/** The peer address without the IPv4-mapped IPv6 prefix Node reports on dual-stack sockets. */
export function peerAddress(remote: string | undefined): string {
  return (remote ?? '').replace(/^::ffff:/, '');
}

/**
 * Whoever reaches the ISC endpoint can speak for any user, so it answers only the
 * configured Kamailio addresses presenting the shared secret (HTTP basic auth, user
 * "kamailio", as http_client sends it from the httpcon URL).
 */
export function iscGuard(opts: {
  secret: string;
  trustedAddresses: readonly string[] | (() => readonly string[]);
}): Middleware {
  const expected = Buffer.from(`Basic ${Buffer.from(`kamailio:${opts.secret}`).toString('base64')}`);
  // (a function: the running configuration's list, which a reload replaces)
  const trusted = liveSet(opts.trustedAddresses);
  return async (ctx, next) => {
    const peer = peerAddress(ctx.req.socket.remoteAddress);
    if (!trusted().has(peer)) {
      ctx.status = 403;
      ctx.body = { error: `address ${peer} is not a trusted Kamailio` };
      return;
    }
    if (!sameSecret(ctx.get('authorization'), expected)) {
      ctx.status = 401;
      ctx.set('WWW-Authenticate', 'Basic realm="isc"');
      ctx.body = { error: 'missing or wrong ISC secret' };
      return;
    }
    await next();
  };
}
