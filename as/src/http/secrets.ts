import { timingSafeEqual } from 'node:crypto';
import type { Middleware } from 'koa';

/** Compares a presented secret with the expected one in constant time. */
export function sameSecret(given: string, expected: Buffer): boolean {
  const g = Buffer.from(given);
  return g.length === expected.length && timingSafeEqual(g, expected);
}

/**
 * Lets through only requests carrying `Authorization: Bearer <token>`; answers 401 with
 * `{ error: "<what> token required" }` otherwise. An empty token turns the API off.
 */
export function bearerGuard(token: string, what: string): Middleware {
  const expected = Buffer.from(`Bearer ${token}`);
  return async (ctx, next) => {
    if (!token || !sameSecret(ctx.get('authorization'), expected)) {
      ctx.status = 401;
      ctx.body = { error: `${what} token required` };
      return;
    }
    await next();
  };
}
