/**
 * What the focus answers to a request inside a participant's dialog other than BYE and REFER
 * (docs/conference.md, "Requests in a focus dialog"). Pure: the focus (focus.ts) does what
 * the decision says (re-binds the MSRP leg, writes its SDP).
 *
 *  re-INVITE  with an SDP offer: 200 with the focus's SDP; a changed a=path re-binds the
 *             participant's leg (as one-to-one sessions do on a re-offer). Without a body: 200
 *             with the focus's SDP as the offer (the answer in the ACK changes nothing here).
 *  UPDATE     without a body: 200 (a session refresh); with an SDP offer: as a re-INVITE.
 *  INFO       no Info Package is supported (RFC 6086): one named in Info-Package gets 469 Bad
 *             Info Package with an empty Recv-Info; a legacy INFO (no Info-Package) without a
 *             body is a liveness probe: 200; a legacy INFO with a body: 415, nothing readable.
 *  OPTIONS    200 with Allow and Accept (RFC 3261 11.2).
 *  any other  405 Method Not Allowed with Allow (RFC 3261 21.4.6).
 */
import { parseMsrpMedia, type MsrpMedia } from '../msrp/sdp.js';

/** Methods a participant may send in its dialog with the focus. */
export const FOCUS_DIALOG_ALLOW = 'INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, REFER';

export type FocusDialogDecision =
  | { kind: 'reply'; code: number; reason: string; headers?: Array<[string, string]>; warning?: string }
  /** Answer 200 with the focus's SDP; `media` is the participant's new offer (undefined: none was made). */
  | { kind: 'sdp'; media?: MsrpMedia }
  /** Answer 200 without a body. */
  | { kind: 'ok' };

export interface FocusDialogRequest {
  method: string;
  /** Content-Type without parameters, lower case ('' when absent). */
  contentType: string;
  body: string;
  /** The Info-Package header's value, if present. */
  infoPackage?: string;
}

export function focusDialogDecision(r: FocusDialogRequest): FocusDialogDecision {
  const hasBody = r.body.trim() !== '';
  switch (r.method) {
    case 'INVITE':
      return hasBody ? reoffer(r) : { kind: 'sdp' };
    case 'UPDATE':
      return hasBody ? reoffer(r) : { kind: 'ok' };
    case 'INFO':
      if (r.infoPackage !== undefined)
        return {
          kind: 'reply',
          code: 469,
          reason: 'Bad Info Package',
          headers: [['Recv-Info', '']],
          warning: 'the conference focus supports no Info Package',
        };
      if (!hasBody) return { kind: 'ok' };
      return {
        kind: 'reply',
        code: 415,
        reason: 'Unsupported Media Type',
        headers: [['Accept', '']],
        warning: 'the conference focus reads no INFO body',
      };
    case 'OPTIONS':
      return {
        kind: 'reply',
        code: 200,
        reason: 'OK',
        headers: [
          ['Allow', FOCUS_DIALOG_ALLOW],
          ['Accept', 'application/sdp'],
        ],
      };
    default:
      return {
        kind: 'reply',
        code: 405,
        reason: 'Method Not Allowed',
        headers: [['Allow', FOCUS_DIALOG_ALLOW]],
      };
  }
}

/** A re-offer: SDP with an MSRP media line that has a=path, else refused as RFC 3261 and 4975 say. */
function reoffer(r: FocusDialogRequest): FocusDialogDecision {
  if (r.contentType !== 'application/sdp')
    return {
      kind: 'reply',
      code: 415,
      reason: 'Unsupported Media Type',
      headers: [['Accept', 'application/sdp']],
    };
  const media = parseMsrpMedia(r.body)[0];
  if (!media || media.path.length === 0)
    return {
      kind: 'reply',
      code: 488,
      reason: 'Not Acceptable Here',
      warning: 'the offer needs an m=message TCP/MSRP media line with a=path',
    };
  return { kind: 'sdp', media };
}
