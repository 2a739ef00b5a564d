/**
 * The focus's dial-out to a pre-defined group's members (OMA SIMPLE IM: the group document's
 * <invite-members>true</invite-members> asks the controlling function to invite the members
 * when the group's conference starts), and how an invitation nobody took is shown in the
 * roster. The dialling itself is the focus's (ConferenceFocus.dialOut, shared with ad-hoc
 * conferences and REFER); this file decides whom and what a refusal looks like.
 */
import type { ConferenceParticipant } from './roster.js';
import type { RosterPort } from './roster-port.js';

/** Whom to dial when a group's conference starts: its members but the one who started it and anyone already in. */
export function membersToDial(members: readonly string[], starter: string, present: readonly string[]): string[] {
  const skip = new Set([starter, ...present].map((u) => u.toLowerCase()));
  const out: string[] = [];
  for (const m of members) {
    const key = m.toLowerCase();
    if (skip.has(key)) continue;
    skip.add(key);
    out.push(m);
  }
  return out;
}

/**
 * RFC 4575 disconnection-method of an invitation the invitee did not take: busy when the
 * final response says so (486 Busy Here, 600 Busy Everywhere), failed otherwise (603 Decline,
 * 480, no answer, a request that never arrived).
 */
export function declinedAs(code: number): 'busy' | 'failed' {
  return code === 486 || code === 600 ? 'busy' : 'failed';
}

/**
 * The roster entry of a dialled-out user who did not join: disconnected, with why. The
 * conference goes on; its watchers see who was asked and did not come.
 */
export async function markDeclined(
  roster: RosterPort | undefined,
  conference: string,
  invitation: { user: string; invitedBy: string; code: number; at: Date },
): Promise<void> {
  if (!roster) return;
  const entry: ConferenceParticipant = {
    uri: invitation.user,
    anonymous: false,
    status: 'disconnected',
    joiningMethod: 'dialed-out',
    disconnectionMethod: declinedAs(invitation.code),
    invitedBy: invitation.invitedBy,
    leftAt: invitation.at,
  };
  await roster.upsertParticipant(conference, entry);
}
