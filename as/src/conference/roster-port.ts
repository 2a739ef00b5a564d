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

/**
 * The join check until the group policy is merged: a group's members and its owner only
 * (403), a private room only its owner (403), a maximum (486: full).
 */
export const basicJoinPolicy: JoinPolicy = {
  async mayJoin(conf, user) {
    const who = user.toLowerCase();
    const isOwner = conf.owner !== undefined && who === conf.owner.toLowerCase();
    if (conf.members && !isOwner && !conf.members.some((m) => m.toLowerCase() === who))
      return { refuse: { code: 403, reason: 'Not A Group Member' } };
    if (!conf.members && conf.private && !isOwner) return { refuse: { code: 403, reason: 'Private Room' } };
    if (conf.maxParticipants !== undefined && conf.present >= conf.maxParticipants)
      return { refuse: { code: 486, reason: 'Conference Full' } };
    return { allow: true };
  },
};
