import type { ImActivityState } from './im-activity.js';

/**
 * Who of our users is in a chat, counted over everything that can put them there (one-to-one
 * sessions, each conference they take part in): their IM activity (ImActivity, a presence
 * source) says "in a chat" from the first and goes when the last ends, whichever it is.
 */
export class InChat {
  private readonly holds = new Map<string, number>();

  constructor(private readonly publish: (user: string, state: ImActivityState) => Promise<unknown>) {}

  /** One more thing keeps `user` in a chat; resolves once a change it makes is published. */
  async enter(user: string): Promise<void> {
    const before = this.holds.get(user) ?? 0;
    this.holds.set(user, before + 1);
    if (before === 0) await this.publish(user, 'chat');
  }

  /** One thing less keeps `user` in a chat. */
  async leave(user: string): Promise<void> {
    const before = this.holds.get(user) ?? 0;
    if (before <= 1) this.holds.delete(user);
    else this.holds.set(user, before - 1);
    if (before === 1) await this.publish(user, 'none');
  }

  /** How many things keep `user` in a chat. */
  count(user: string): number {
    return this.holds.get(user) ?? 0;
  }
}
