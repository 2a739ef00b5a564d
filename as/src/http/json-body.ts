import type { Context } from 'koa';
import { BodyTooLargeError, readBody } from './read-body.js';

/** Reads and parses a JSON request body; answers 413/400 itself and returns undefined then. */
export async function jsonBody<T>(ctx: Context, limit: number): Promise<T | undefined> {
  let raw: Buffer;
  try {
    raw = await readBody(ctx.req, limit);
  } catch (err) {
    if (err instanceof BodyTooLargeError) {
      ctx.status = 413;
      ctx.body = { error: err.message };
      return undefined;
    }
    throw err;
  }
  try {
    return JSON.parse(raw.toString('utf8')) as T;
  } catch {
    ctx.status = 400;
    ctx.body = { error: 'body is not JSON' };
    return undefined;
  }
}
