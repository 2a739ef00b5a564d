import type { Logger } from '../log/logger.js';
import type { Publications } from '../presence/publications.js';
import { PIDF_CONTENT_TYPE } from '../presence/pidf-body.js';
import { IM_ACTIVITY_SOURCE } from '../presence/server-sources.js';
import type { ImPolicy } from '../xdm/usages/im-policy.js';
import { imActivityPidf } from './formats/im-activity-pidf.js';

/** What the IM server says a user is doing: in a chat, or nothing. */
export type ImActivityState = 'chat' | 'none';

/**
 * The IM server as a presence source on the user's behalf (OMA IM: the server may publish
 * presence for its users): while a user has an IM session the user's presence gets a tuple
 * "in a chat" (source "im-activity", as/src/presence/server-sources.ts), unless the user
 * switched it off in their IM policy (<publish-im-activity enabled="false"/>). The session
 * code calls {@link ImActivity.imActivity} when a user's first session opens ('chat') and when
 * their last one ends ('none').
 */
export class ImActivity {
  constructor(
    private readonly deps: {
      publications: Pick<Publications, 'setSource'>;
      policyOf: (user: string) => Promise<ImPolicy>;
      log: Logger;
    },
  ) {}

  /**
   * Publishes (or removes) the user's IM activity. `expiresSeconds`: how long a 'chat' stays
   * without being said again (a crashed session must not keep the user in a chat forever);
   * default: until 'none'. A user who opted out gets nothing published, and what was
   * published before is removed.
   */
  async imActivity(
    user: string,
    state: ImActivityState,
    opts: { expiresSeconds?: number } = {},
  ): Promise<'published' | 'removed' | 'opted-out'> {
    if (state === 'chat') {
      if (!(await this.deps.policyOf(user)).publishImActivity) {
        await this.remove(user);
        return 'opted-out';
      }
      await this.deps.publications.setSource(
        user,
        'presence',
        IM_ACTIVITY_SOURCE,
        imActivityPidf(user),
        PIDF_CONTENT_TYPE,
        opts.expiresSeconds,
      );
      this.deps.log.debug({ user }, 'IM activity published: in a chat');
      return 'published';
    }
    await this.remove(user);
    return 'removed';
  }

  /** The user's IM policy changed: an opt-out takes what was published away at once. */
  async policyChanged(user: string): Promise<void> {
    if (!(await this.deps.policyOf(user)).publishImActivity) await this.remove(user);
  }

  private async remove(user: string): Promise<void> {
    await this.deps.publications.setSource(user, 'presence', IM_ACTIVITY_SOURCE, '', PIDF_CONTENT_TYPE, 0);
  }
}
