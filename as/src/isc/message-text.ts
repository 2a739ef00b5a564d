/**
 * The SIP message of an ISC request as text the services can read, or the answer a request
 * earns when it cannot be read. Kamailio sends the message as a JSON string (`msg`) when it is
 * valid UTF-8 and in base64 (`msg64`) when it is not, so the byte-level checks live here,
 * once, before any service sees the request:
 * - headers that are not valid UTF-8, or hold NUL: 400;
 * - a body of a type the AS reads (text, XML, CPIM, SDP, JSON, multipart) that is not valid
 *   UTF-8 or holds NUL: 400 (a NUL also stops stored messages from ever being delivered);
 * - any other (binary) body that is not valid UTF-8: 415, since the AS keeps and forwards
 *   bodies as text and would corrupt it.
 */
import { parseSipMessage, SipParseError, type SipRequest } from '../sip/index.js';
import { parseMediaType } from '../sip/multipart.js';
import { reply, type IscRequest, type ReplyDecision, type ReplyParts } from './types.js';

export type MessageText = { text: string; refusal?: undefined } | { text?: undefined; refusal: ReplyDecision };

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Media types whose bodies the AS parses or stores as text. */
const TEXTUAL = /^(text\/|message\/|multipart\/|application\/([\w.+-]+\+)?(xml|json)$|application\/sdp$)/i;

/** What each service can take instead of a binary body (RFC 3261 §21.4.13: 415 names them). */
const ACCEPT: Record<IscRequest['service'], string> = {
  presence: 'application/pidf+xml',
  im: 'text/plain, message/cpim, multipart/mixed',
  xdm: 'application/xcap-diff+xml',
};

export function messageText(req: IscRequest): MessageText {
  if (typeof req.msg === 'string') {
    const headEnd = headerEnd(req.msg);
    if (req.msg.lastIndexOf('\0', headEnd < 0 ? req.msg.length : headEnd) >= 0) return refuse(400, 'NUL In Headers');
    if (headEnd >= 0 && req.msg.indexOf('\0', headEnd) >= 0 && isTextual(req.msg.slice(0, headEnd)))
      return refuse(400, 'NUL In Body');
    return { text: req.msg };
  }
  const bytes = Buffer.from(req.msg64 ?? '', 'base64');
  const split = bytes.indexOf('\r\n\r\n');
  const headBytes = split < 0 ? bytes : bytes.subarray(0, split);
  let head: string;
  try {
    head = STRICT_UTF8.decode(headBytes);
  } catch {
    return refuse(400, 'Invalid UTF-8 In Headers');
  }
  if (head.includes('\0')) return refuse(400, 'NUL In Headers');
  // Kamailio encodes in base64 only what failed as UTF-8: with valid headers, the body did
  if (isTextual(head)) return refuse(400, 'Invalid UTF-8 In Body');
  return refuse(415, 'Unsupported Media Type', {
    headers: [['Accept', ACCEPT[req.service] ?? 'text/plain']],
    warning: 'binary bodies that are not UTF-8 are not carried',
  });
}

function refuse(code: number, reason: string, parts?: ReplyParts): MessageText {
  return { refusal: reply(code, reason, parts) };
}

function headerEnd(msg: string): number {
  const crlf = msg.indexOf('\r\n\r\n');
  return crlf >= 0 ? crlf : msg.indexOf('\n\n');
}

/** True when the head's Content-Type (or compact `c`) names a type the AS reads as text. */
function isTextual(head: string): boolean {
  const m = /^(?:content-type|c)[ \t]*:[ \t]*([^;\r\n \t]+)/im.exec(head);
  // no Content-Type with a body: RFC 3261 leaves it undefined; the AS would read it as text
  return m ? TEXTUAL.test(m[1]!) : true;
}

/**
 * The request as the services get it, or the answer it earns at the edge: the byte checks
 * above, SIP syntax, From and To (parsed on first use elsewhere: read here, so a malformed one
 * is a 400 and never an exception inside a service; RFC 4475 quotbal, badaspec), and the
 * body's type (RFC 3261 20.15: a body needs a Content-Type naming a media type; a MESSAGE with
 * "Content-Type: ;charset=utf-8" was delivered with no charging record).
 */
export function readRequest(
  req: IscRequest,
): { sip: SipRequest; refusal?: undefined } | { sip?: undefined; refusal: ReplyDecision } {
  const message = messageText(req);
  if (message.refusal) return message;
  let sip: SipRequest;
  try {
    const parsed = parseSipMessage(message.text);
    if (parsed.kind !== 'request') return { refusal: reply(400, 'Not A Request') };
    sip = parsed;
    if (!sip.from.uri || !sip.to.uri) return { refusal: reply(400, 'Malformed From or To') };
  } catch (err) {
    if (err instanceof SipParseError) return { refusal: reply(400, err.reason) };
    throw err;
  }
  const ctype = sip.headers.get('Content-Type');
  if (ctype !== undefined && !parseMediaType(ctype)) return { refusal: reply(400, 'Malformed Content-Type') };
  if (ctype === undefined && sip.body.length > 0) return { refusal: reply(400, 'Missing Content-Type') };
  return { sip };
}
