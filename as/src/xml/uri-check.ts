/** URI syntax checks and the normal form used to compare URIs found in XML documents. Pure. */
import { parseUri } from '../sip/index.js';

const SCHEME_URI_RE = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s"<>\\^`{|}]+$/;

/**
 * A problem phrase when `uri` is not an absolute URI (`scheme:rest`, no spaces or characters
 * that URIs never contain); sip:, sips: and tel: URIs must also parse as such. Undefined when OK.
 */
export function uriProblem(uri: string): string | undefined {
  const u = uri.trim();
  if (!SCHEME_URI_RE.test(u)) return 'is not a URI (scheme:...)';
  const scheme = u.slice(0, u.indexOf(':')).toLowerCase();
  if (scheme === 'sip' || scheme === 'sips' || scheme === 'tel') {
    try {
      parseUri(u);
    } catch {
      return `is not a valid ${scheme}: URI`;
    }
  }
  return undefined;
}

/** Canonical form of a URI for comparisons: the address of record of sip/sips/tel URIs, the trimmed text otherwise. */
export function normalizeUri(uri: string): string {
  const u = uri.trim();
  const scheme = u.slice(0, Math.max(0, u.indexOf(':'))).toLowerCase();
  if (scheme === 'sip' || scheme === 'sips' || scheme === 'tel') {
    try {
      const p = parseUri(u);
      // keep sips distinct from sip: a sips service is a different resource
      const host = p.host;
      if (p.scheme === 'tel') return `tel:${(p.user ?? '').replace(/[-.()]/g, '').toLowerCase()}`;
      return p.user === undefined ? `${p.scheme}:${host}` : `${p.scheme}:${p.userDecoded ?? p.user}@${host}`;
    } catch {
      return u;
    }
  }
  return u;
}
