import type { ConferenceRoster } from './roster.js';

/**
 * What the focus tells the conference roster (as/src/conference/roster.ts): its writes, and
 * (several instances) the conditional end and a read of who other instances hold.
 */
export type RosterPort = Pick<ConferenceRoster, 'open' | 'upsertParticipant' | 'end'> &
  Partial<Pick<ConferenceRoster, 'endIfEmpty' | 'get'>>;

/** The group policy's answer on a join (filled by the group-policy work; see docs/conference.md). */
export type JoinVerdict = { allow: true } | { refuse: { code: number; reason: string } };

export interface JoinPolicy {
  mayJoin(
    conf: {
      uri: string;
      kind: 'adhoc' | 'group' | 'room';
      owner?: string;
      private?: boolean;
      maxParticipants?: number;
      /** A group's members (canonical URIs). */
      members?: string[];
      present: number;
    },
    user: string,
    opts: { anonymous: boolean },
  ): Promise<JoinVerdict>;
}

/** The group policy's join check (as/src/conference/group-policy.ts, GroupPolicy.mayJoin). */
export interface GroupJoinCheck {
  mayJoin(groupUri: string, user: string, req: { anonymous: boolean; participants?: number }): Promise<JoinVerdict>;
}

/**
 * The join check of the focus: a group's by its policy (its rules or member list, anonymity,
 * its and the operator's maximum); a room's here: a private room admits its owner only (403),
 * a full one nobody more (486). The reason is the Warning text of the refusal.
 */
export function focusJoinPolicy(groups: GroupJoinCheck): JoinPolicy {
  return {
    async mayJoin(conf, user, opts) {
      if (conf.kind === 'group')
        return groups.mayJoin(conf.uri, user, { anonymous: opts.anonymous, participants: conf.present });
      const isOwner = conf.owner !== undefined && user.toLowerCase() === conf.owner.toLowerCase();
      if (conf.private && !isOwner) return { refuse: { code: 403, reason: 'this room is private to its owner' } };
      if (conf.maxParticipants !== undefined && conf.present >= conf.maxParticipants)
        return { refuse: { code: 486, reason: `the room is full (at most ${conf.maxParticipants} participants)` } };
      return { allow: true };
    },
  };
}
