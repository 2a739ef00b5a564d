/**
 * What the focus tells the conference roster (as/src/conference/roster.ts, the conf-events
 * work: store state, conference-info, NOTIFYs). Declared here with the roster's own shapes so
 * that the focus builds before the roster is merged; ConferenceRoster fits it as it is.
 */
export interface RosterParticipant {
  uri: string;
  displayName?: string;
  nickname?: string;
  anonymous: boolean;
  status: 'pending' | 'dialing-out' | 'alerting' | 'connected' | 'on-hold' | 'disconnecting' | 'disconnected';
  joiningMethod?: 'dialed-in' | 'dialed-out' | 'focus-owner';
  disconnectionMethod?: 'departed' | 'booted' | 'failed' | 'busy';
  endpoint?: string;
  dialog?: { callId: string; remoteTag: string; localTag: string };
  joinedAt?: Date;
  leftAt?: Date;
  invitedBy?: string;
}

export interface RosterPort {
  open(c: {
    _id: string;
    kind: 'adhoc' | 'group' | 'room';
    owner?: string;
    subject?: string;
    maxParticipants?: number;
    focusInstance: string;
    endedAt?: Date;
  }): Promise<unknown>;
  upsertParticipant(uri: string, p: RosterParticipant): Promise<unknown>;
  end(uri: string): Promise<void>;
}

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
