/**
 * The P-Associated-URI value (RFC 7315 section 4.2) of a user's registration: every public
 * identity registered with it (the IMS implicit registration set), the user's own name first.
 * Pure.
 */
import type { UserIdentities } from '../users/user-directory.js';

export function associatedUriHeader(aor: string, ids: UserIdentities): string {
  const uris = [aor, ...ids.aliases, ...(ids.tel ? [`tel:${ids.tel}`] : [])];
  return uris.map((u) => `<${u}>`).join(', ');
}
