/**
 * Where a subscription's NOTIFYs may go. A Contact is only a claim: without a bound, a
 * SUBSCRIBE naming a third party's address makes the notifier send it every NOTIFY of the
 * subscription (a reflector). The rule (docs/isc.md, "Where NOTIFYs go"):
 *
 * - an address target (an IP or host of its own) must be the host the SUBSCRIBE came from
 *   (any port: the same machine), or one of the watcher's registered contacts (a client
 *   behind NAT registers the Contact it then subscribes with);
 * - a target the core's location service resolves (an address of our domain, a GRUU) must
 *   be the watcher's own address of record, or a GRUU (the registrar handed it out, and it
 *   leads only to the contact that registered it);
 * - a watcher of another domain, whose SUBSCRIBE its own core record-routed (a peer the core
 *   took it from): the NOTIFYs go back through that core, which answers for where its own
 *   users' contacts are, so the target is its to bound.
 *
 * Pure: the caller supplies the facts.
 */
import { aor, parseUri, type SipUri } from '../sip/uri.js';

export interface TargetFacts {
  /** The watcher's asserted identity (sip:user@domain). */
  watcher: string;
  /** Source address of the SUBSCRIBE as the core saw it. */
  srcIp: string;
  /** Whether the core's location service resolves this target (LocalDomain.needsLocationLookup). */
  viaLocation: boolean;
  /** The watcher's registered contact URIs. */
  registered: string[];
  /** The watcher is of another domain and the SUBSCRIBE carries a Record-Route (its core's). */
  routedByWatcherCore?: boolean;
}

/** undefined when NOTIFYs may go to `target`, else why not (for a Warning header). */
export function notifyTargetProblem(target: string, facts: TargetFacts): string | undefined {
  let uri: SipUri;
  try {
    uri = parseUri(target);
  } catch {
    return 'malformed Contact';
  }
  if (facts.viaLocation) {
    if (uri.params.has('gr')) return undefined;
    return sameAor(target, facts.watcher) ? undefined : 'Contact names another user';
  }
  if (facts.routedByWatcherCore) return undefined;
  if (bareHost(uri.host) === bareHost(facts.srcIp)) return undefined;
  if (facts.registered.some((c) => sameHostPort(c, uri))) return undefined;
  return 'Contact is neither the source address nor a registered contact';
}

function sameAor(a: string, b: string): boolean {
  try {
    return aor(a) === aor(b);
  } catch {
    return false;
  }
}

function sameHostPort(registered: string, target: SipUri): boolean {
  try {
    const r = parseUri(registered);
    return bareHost(r.host) === bareHost(target.host) && (r.port ?? 5060) === (target.port ?? 5060);
  } catch {
    return false;
  }
}

/** An IPv6 reference without its brackets, lowercased, so `[::1]` and `::1` compare equal. */
function bareHost(host: string): string {
  return host.replace(/^\[|\]$/g, '').toLowerCase();
}
