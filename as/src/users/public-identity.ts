import { parseUri } from '../sip/index.js';

/**
 * The one key under which a public identity of ours is provisioned and looked up, whatever
 * way a request or a document writes it:
 *   `tel:+<digits>` for a global E.164 number, from tel:+1-555-1234 (RFC 3966 visual
 *   separators dropped) or sip:+15551234@<our host>;user=phone (RFC 3261 19.1.6);
 *   `sip:<user>` for a name of ours, from sip:/sips: on our host, or pres:/im: (RFC 3859,
 *   RFC 3860: resolved to the same address of record, as RFC 3861 does through DNS).
 * Pure: no I/O; `isLocalHost` says which hosts are ours.
 */
export type IdentityKey = `tel:${string}` | `sip:${string}`;

/** E.164: a country code and at most 15 digits in all. */
const E164_RE = /^\+[1-9][0-9]{1,14}$/;
/** RFC 3966 visual separators. */
const VISUAL_RE = /[-.()]/g;

/** `+15551234` for a global number written with or without separators; undefined otherwise. */
export function normaliseE164(number: string): string | undefined {
  const n = number.trim().replace(VISUAL_RE, '');
  return E164_RE.test(n) ? n : undefined;
}

/** `pres:alice@example.com` / `im:...`: user and host (RFC 3859/3860 have no params we use). */
function parseImPres(uri: string): { user: string; host: string } | undefined {
  const m = /^(?:pres|im):([^@:;?\s]+)@([^;?>\s]+)/i.exec(uri);
  return m ? { user: decodeURIComponent(m[1]!), host: m[2]!.toLowerCase() } : undefined;
}

export function identityKey(uri: string, isLocalHost: (host: string) => boolean): IdentityKey | undefined {
  const text = uri.trim().replace(/^<(.*)>$/s, '$1');
  if (/^(pres|im):/i.test(text)) {
    const p = parseImPres(text);
    return p && isLocalHost(p.host) ? `sip:${p.user}` : undefined;
  }
  let parsed;
  try {
    parsed = parseUri(text);
  } catch {
    return undefined;
  }
  if (parsed.scheme === 'tel') {
    const n = normaliseE164(parsed.user ?? '');
    return n ? `tel:${n}` : undefined;
  }
  if (!parsed.user || !isLocalHost(parsed.host)) return undefined;
  if (parsed.params.get('user')?.toLowerCase() === 'phone') {
    // a telephone-subscriber user part may carry its own parameters (;isub=, ;phone-context=)
    // (a local number or a name marked user=phone stays the name it is written as)
    const n = normaliseE164(parsed.user.split(';')[0]!);
    if (n) return `tel:${n}`;
  }
  return `sip:${parsed.user}`;
}

/** `tel:+15551234` → `+15551234`; `sip:alice` → undefined. */
export function numberOf(key: IdentityKey): string | undefined {
  return key.startsWith('tel:') ? key.slice(4) : undefined;
}
