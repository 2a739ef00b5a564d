import Router from 'koa-router';
import { BodyTooLargeError, readBody } from '../http/read-body.js';
import { bearerGuard } from '../http/secrets.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { UserDirectory } from '../users/user-directory.js';
import { PidfError, parsePidf } from './pidf/index.js';
import { PIDF_CONTENT_TYPE } from './presence-package.js';
import type { PresenceState } from './presence-state.js';
import type { Publications } from './publications.js';
import { headerValueOnly } from '../sip/index.js';

/**
 * The external presence source (a calendar, another network): a trusted agent publishes a
 * presentity's state over HTTP with a bearer token; each source name keeps its own
 * publication, composed with the SIP ones. Also lets the operator read a composed document.
 *   PUT    /presence/<presentity>/sources/<name>   PIDF body, Expires header (seconds, 0 removes)
 *   DELETE /presence/<presentity>/sources/<name>
 *   GET    /presence/<presentity>                  the full composed document
 */
export function externalPresenceRoutes(deps: {
  token: string;
  users: UserDirectory;
  domain: LocalDomain;
  publications: Publications;
  state: PresenceState;
  maxBodyBytes: number;
}): Router {
  const router = new Router({ prefix: '/presence' });
  router.use(bearerGuard(deps.token, 'presence source'));
  router.use(async (ctx, next) => {
    const entity = deps.domain.canonical(decodeURIComponent(ctx.path.split('/')[2] ?? ''));
    if (!entity || !(await deps.users.exists(entity))) {
      ctx.status = 404;
      ctx.body = { error: 'no such presentity' };
      return;
    }
    ctx.state.entity = entity;
    await next();
  });
  const sourceId = (name: string) => `ext:${name}`;
  router.put('/:entity/sources/:name', async (ctx) => {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(ctx.params.name ?? '')) {
      ctx.status = 400;
      ctx.body = { error: 'source name: letters, digits, . _ - (up to 64)' };
      return;
    }
    if (headerValueOnly(ctx.get('content-type')) !== PIDF_CONTENT_TYPE) {
      ctx.status = 415;
      ctx.body = { error: `Content-Type must be ${PIDF_CONTENT_TYPE}` };
      return;
    }
    const expiresHeader = ctx.get('expires');
    const expires = expiresHeader === '' ? 3600 : Number(expiresHeader);
    if (!Number.isInteger(expires) || expires < 0) {
      ctx.status = 400;
      ctx.body = { error: 'Expires must be a whole number of seconds' };
      return;
    }
    let body: string;
    try {
      body = (await readBody(ctx.req, deps.maxBodyBytes)).toString('utf8');
      parsePidf(body);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        ctx.status = 413;
        return;
      }
      if (err instanceof PidfError) {
        ctx.status = 400;
        ctx.body = { error: err.reason };
        return;
      }
      throw err;
    }
    await deps.publications.setSource(
      ctx.state.entity as string,
      'presence',
      sourceId(ctx.params.name!),
      body,
      PIDF_CONTENT_TYPE,
      expires,
    );
    ctx.status = 204;
  });
  router.delete('/:entity/sources/:name', async (ctx) => {
    await deps.publications.setSource(
      ctx.state.entity as string,
      'presence',
      sourceId(ctx.params.name ?? ''),
      '',
      PIDF_CONTENT_TYPE,
      0,
    );
    ctx.status = 204;
  });
  router.get('/:entity', async (ctx) => {
    ctx.type = PIDF_CONTENT_TYPE;
    ctx.body = await deps.state.view(ctx.state.entity as string);
  });
  return router;
}
