/**
 * The presence document the IM server publishes for a user who is in a chat: one tuple of the
 * OMA IM session service (OMA Presence SIMPLE service-description) whose session-participation
 * is open, with a note for clients that show only notes. Pure: no I/O.
 */
import { OMA_PRES_NS, makeTuple, presenceElement, serializePidf } from '../../presence/pidf/index.js';

/** Tuple id of the IM activity (the source is composed with others; ids are scoped on collision). */
export const IM_ACTIVITY_TUPLE_ID = 'im-activity';
/** OMA's service-id for IM sessions. */
export const IM_SESSION_SERVICE_ID = 'org.openmobilealliance:IM-session';
export const IN_A_CHAT_NOTE = 'In a chat';

/** PIDF saying `user` is in an IM session now. */
export function imActivityPidf(user: string): string {
  const tuple = makeTuple({
    id: IM_ACTIVITY_TUPLE_ID,
    basic: 'open',
    notes: [{ text: IN_A_CHAT_NOTE, lang: 'en' }],
    elements: [
      presenceElement(OMA_PRES_NS, 'service-description', [
        presenceElement(OMA_PRES_NS, 'service-id', IM_SESSION_SERVICE_ID),
        presenceElement(OMA_PRES_NS, 'version', '1.0'),
      ]),
      presenceElement(OMA_PRES_NS, 'session-participation', [presenceElement(OMA_PRES_NS, 'basic', 'open')]),
    ],
  });
  return serializePidf({ entity: user, tuples: [tuple], persons: [], devices: [], notes: [], extensions: [] });
}
