/**
 * Readings of a request that several services need the same way: whether the sender asks
 * for privacy, and where a dialog-creating request says its remote target is.
 */
import type { SipRequest } from './message.js';
import { parseNameAddr } from './name-addr.js';
import { parseUri } from './uri.js';

/** RFC 3323: Privacy id, user or header hides who sent it (none and session do not). */
export function wantsPrivacy(sip: SipRequest): boolean {
  return sip.headers
    .getAll('Privacy')
    .flatMap((v) => v.split(';'))
    .some((p) => /^(id|user|header|critical)$/i.test(p.trim()));
}

/**
 * The remote target of a dialog-creating request (RFC 3261 12.1.1): its one Contact, a
 * SIP or SIPS URI. Anything else (no Contact, several, `*`, another scheme, a value that
 * does not parse) is a reason for 400, given before anything is stored.
 */
export function remoteTarget(sip: SipRequest): { uri: string } | { problem: string } {
  const contacts = sip.headers.getAll('Contact');
  if (contacts.length === 0) return { problem: 'Missing Contact' };
  if (contacts.length > 1) return { problem: 'one Contact only' };
  try {
    const { uri } = parseNameAddr(contacts[0]!);
    const parsed = parseUri(uri);
    if (parsed.scheme !== 'sip' && parsed.scheme !== 'sips') return { problem: 'Contact must be a SIP or SIPS URI' };
    // headers in a target URI would become headers of our in-dialog requests (RFC 4475 regescrt)
    if (parsed.headers.length > 0) return { problem: 'Contact URI must not carry headers' };
    return { uri };
  } catch {
    return { problem: 'malformed Contact' };
  }
}
