/**
 * Which of a user's registered contacts a terminating request may reach, from the contacts'
 * registered capabilities (the mirror) and the request's caller preferences. The AS decides
 * because it keeps the feature tags (usrloc keeps only methods); Kamailio's lookup then forks
 * only to the contacts named here (route FILTER_TARGETS, docs/identities.md "Capabilities").
 */
import type { SipRequest } from '../sip/index.js';
import { chooseTargets, parsePreferences } from './capabilities.js';
import type { Registrations } from './registrations.js';

export type DeliveryTargets =
  /** every contact the registrar has (nothing to narrow, or nothing known) */
  | { kind: 'all' }
  /** only these contact URIs, space-separated for Kamailio */
  | { kind: 'some'; targets: string }
  /** no contact can take it (RFC 3841: 480) */
  | { kind: 'none' };

export async function deliveryTargets(
  registrations: Registrations,
  aor: string,
  sip: SipRequest,
  opts: { preferIm?: boolean } = {},
): Promise<DeliveryTargets> {
  const contacts = await registrations.contacts(aor);
  if (contacts.length === 0) return { kind: 'all' };
  const choice = chooseTargets(contacts, {
    method: sip.method,
    accept: parsePreferences(sip.headers.getAll('Accept-Contact').join(', ')),
    reject: parsePreferences(sip.headers.getAll('Reject-Contact').join(', ')),
    ...(opts.preferIm ? { preferIm: true } : {}),
  });
  if (!choice.narrowed) return { kind: 'all' };
  if (choice.targets.length === 0) return { kind: 'none' };
  return { kind: 'some', targets: choice.targets.join(' ') };
}
