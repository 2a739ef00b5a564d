/**
 * A REFER's Refer-To as the focus reads it (RFC 3515, RFC 4579 section 5.5): the user it names
 * and the method the referred request would use (`method=BYE`: remove that user). Pure.
 */
import { parseNameAddr } from '../sip/index.js';

export interface ReferTarget {
  /** The URI without its parameters and headers (sip:user@host). */
  uri: string;
  /** Upper-case; INVITE when the URI names none. */
  method: string;
}

export function referTarget(referTo: string): ReferTarget | undefined {
  let uri: string;
  try {
    uri = parseNameAddr(referTo).uri;
  } catch {
    return undefined;
  }
  const m = /^(sips?:[^;?]+)([^?]*)/i.exec(uri);
  if (!m) return undefined;
  const method = /;\s*method=([A-Za-z]+)/i.exec(m[2] ?? '')?.[1]?.toUpperCase() ?? 'INVITE';
  return { uri: m[1]!, method };
}

/** The NOTIFY body of RFC 3515: the referred request's final status line as message/sipfrag. */
export function sipfrag(code: number, reason: string): string {
  return `SIP/2.0 ${code} ${reason.replace(/[\r\n]+/g, ' ')}\r\n`;
}
