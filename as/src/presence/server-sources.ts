/**
 * The presence sources the server itself publishes for a user (Publications.setSource), by
 * sourceId. Composition shows them like any other source; presence-aware delivery leaves them
 * out (it asks what the user says, and the registration tuple is open whenever a device is).
 */

/** The Presence Network Agent's tuple: open while any contact is registered. */
export const NETWORK_SOURCE = 'network';
/** The IM server's tuple: the user is in a chat (as/src/im/im-activity.ts). */
export const IM_ACTIVITY_SOURCE = 'im-activity';

export const SERVER_SOURCES: ReadonlySet<string> = new Set([NETWORK_SOURCE, IM_ACTIVITY_SOURCE]);
