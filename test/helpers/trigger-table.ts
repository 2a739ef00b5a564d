/**
 * Reads the trigger table of kamailio-cfg/kamailio.cfg (route ISC_TRIGGERS) from the text of
 * the config: which AS service each trigger hands requests to, and which SUBSCRIBE event
 * packages it names. No I/O: the caller passes the text.
 */

/** One branch of the table: its condition line and the service it sets in $avp(svc). */
export interface Trigger {
  condition: string;
  service: string;
  /** event packages the condition matches (from an `$hdr(Event) =~ "..."` test), if any */
  eventPackages: string[];
}

/** The body of `route[NAME] { ... }` (the lines between the braces), or throws. */
export function routeBody(cfg: string, name: string): string {
  const open = cfg.indexOf(`\nroute[${name}] {\n`);
  if (open < 0) throw new Error(`no route[${name}] in the config`);
  const start = cfg.indexOf('{\n', open) + 2;
  const end = cfg.indexOf('\n}\n', start);
  if (end < 0) throw new Error(`route[${name}] has no closing brace at the start of a line`);
  return cfg.slice(start, end);
}

/**
 * The event packages a Kamailio regex on the Event header accepts: `^(a|b\.c)(...)?$` or
 * `^name(...)?$`. A pattern of another shape throws, so a table written differently is
 * noticed rather than read as naming nothing.
 */
export function packagesOfEventRegex(regex: string): string[] {
  const alternatives = /^\^\(([A-Za-z0-9.\\|-]+)\)/.exec(regex)?.[1] ?? /^\^([A-Za-z0-9.\\-]+)\(/.exec(regex)?.[1];
  if (alternatives === undefined) throw new Error(`Event pattern of an unknown shape: ${regex}`);
  return alternatives.split('|').map((p) => p.replace(/\\\./g, '.'));
}

/**
 * The triggers of route ISC_TRIGGERS: each `$avp(svc) = "x"` with the nearest condition
 * above it (an `if` or `else if` line).
 */
export function triggersOf(cfg: string): Trigger[] {
  const triggers: Trigger[] = [];
  let condition = '';
  for (const line of routeBody(cfg, 'ISC_TRIGGERS')
    .split('\n')
    .map((l) => l.trim())) {
    if (/^(\}\s*else\s+)?if\s*\(/.test(line)) condition = line;
    const service = /^\$avp\(svc\)\s*=\s*"([^"]*)"\s*;/.exec(line)?.[1];
    if (service === undefined) continue;
    const eventRegex = /\$hdr\(Event\)\s*=~\s*"([^"]*)"/.exec(condition)?.[1];
    triggers.push({
      condition,
      service,
      eventPackages: eventRegex === undefined ? [] : packagesOfEventRegex(eventRegex),
    });
  }
  return triggers;
}

/** The packages route BAD_EVENT advertises in Allow-Events (RFC 6665 8.2.2). */
export function advertisedEventPackages(cfg: string): string[] {
  const header = /Allow-Events:\s*([^\\"]*)\\r\\n/.exec(routeBody(cfg, 'BAD_EVENT'))?.[1];
  if (header === undefined) throw new Error('route BAD_EVENT sets no Allow-Events');
  return header
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}
