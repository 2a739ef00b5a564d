/**
 * The operator's view of group chat in the admin API (same bearer token as the other /admin
 * routes; docs/conference.md "Ending by the operator"):
 *   GET    /admin/conferences        the conferences live on this instance, with their participants
 *   DELETE /admin/conferences/:uri   ends one (a conference URI, or a room's or group's name):
 *                                    the focus BYEs every participant; 404 when none is live here
 * `ims-ctl conferences` and `ims-ctl conference-end URI` call them.
 */
import Router from 'koa-router';
import { bearerGuard } from '../http/secrets.js';
import type { ConferenceFocus } from './focus.js';

/** Why the records and the conference-info say the participants left. */
export const ENDED_BY_OPERATOR = 'ended by the operator';

export function conferenceAdminRoutes(deps: {
  focus: Pick<ConferenceFocus, 'liveConferences' | 'endConference'>;
  /** The domain a bare name (`lobby`) is completed with. */
  domain: string;
  token: string;
}): Router {
  const router = new Router({ prefix: '/admin' });
  router.use(bearerGuard(deps.token, 'admin'));
  router.get('/conferences', (ctx) => {
    ctx.body = deps.focus.liveConferences().map((c) => ({
      uri: c.uri,
      kind: c.kind,
      owner: c.owner,
      startedAt: c.startedAt.toISOString(),
      participants: c.participants,
    }));
  });
  router.delete('/conferences/:uri', async (ctx) => {
    const uri = conferenceUriOf(ctx.params.uri ?? '', deps.domain);
    if (!uri) {
      ctx.status = 400;
      ctx.body = { error: 'give a conference URI (sip:name@domain) or a name' };
      return;
    }
    const ended = await deps.focus.endConference(uri, ENDED_BY_OPERATOR);
    if (!ended) {
      ctx.status = 404;
      ctx.body = { error: `no conference ${uri} is live on this instance` };
      return;
    }
    ctx.body = {
      uri,
      participants: ended.byes.length,
      // a BYE that failed (the participant's UA gone) still ended its participation here
      byesAnswered: ended.byes.filter((b) => b.code < 300).length,
    };
  });
  return router;
}

/** `sip:lobby@example.com`, `lobby@example.com` or `lobby` as the conference URI; undefined when none of these. */
export function conferenceUriOf(given: string, domain: string): string | undefined {
  const s = given.trim();
  const m = /^(?:sips?:)?([^@:;?\s/]+)(?:@([^;?\s/]+))?$/i.exec(s);
  if (!m) return undefined;
  return `sip:${m[1]!.toLowerCase()}@${(m[2] ?? domain).toLowerCase()}`;
}
