/**
 * How an AS instance names itself to Kamailio. Several instances share one Kamailio: each
 * says its name in the event stream's hello, Kamailio tags all its connections
 * "as-<name>", spreads requests over the instances by that tag and reports the reply to
 * an AS-originated request to the instance that sent it (kamailio-cfg: PICK_AS, uacorig).
 * Kamailio accepts [A-Za-z0-9_.-]{1,40}; the node id is kept to that, from its end, since
 * the default node id ends with the instance's own port.
 */
export function instanceName(nodeId: string): string {
  const clean = nodeId.replace(/[^A-Za-z0-9_.-]/g, '-');
  return (clean.length > 40 ? clean.slice(-40) : clean) || 'default';
}

/** The evapi tag Kamailio gives the connections of instance `name`. */
export function instanceTag(name: string): string {
  return `as-${name}`;
}
