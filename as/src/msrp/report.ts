/**
 * Responses and REPORTs (RFC 4975 sections 7.2 and 7.1.2). Pure: no I/O.
 *
 * - A response goes back one hop: To-Path is the first URI of the request's From-Path, From-Path
 *   is the responder's own URI. Failure-Report `no` asks for no response at all, `partial` for
 *   error responses only: `shouldRespond` says which.
 * - A REPORT goes to the message's sender end to end: To-Path is the whole From-Path of the
 *   SEND, with the Message-ID, the Byte-Range it covers and a Status.
 */
import {
  type ByteRange,
  type FailureReport,
  type MsrpRequestHead,
  type MsrpResponseHead,
  formatByteRange,
  formatStatus,
} from './message.js';
import { msrpReason } from './status.js';

/** Whether a response with `code` is sent for a request asking `failureReport`. */
export function shouldRespond(failureReport: FailureReport, code: number): boolean {
  if (failureReport === 'no') return false;
  if (failureReport === 'partial') return code !== 200;
  return true;
}

/** Whether a failure of the message is reported back with a REPORT. */
export function wantsFailureReport(failureReport: FailureReport): boolean {
  return failureReport !== 'no';
}

/** The response to a request, from `self` to the previous hop. */
export function responseTo(
  request: MsrpRequestHead,
  code: number,
  fromPath: string,
  toPath: string,
  comment = msrpReason(code),
): MsrpResponseHead {
  return {
    kind: 'response',
    tid: request.tid,
    code,
    comment,
    headers: [
      { name: 'To-Path', value: toPath },
      { name: 'From-Path', value: fromPath },
    ],
  };
}

export interface ReportFacts {
  tid: string;
  /** The sender's whole path (the SEND's From-Path). */
  toPath: string;
  /** Our URI. */
  fromPath: string;
  messageId: string;
  range: ByteRange;
  code: number;
  comment?: string;
}

export function buildReport(f: ReportFacts): MsrpRequestHead {
  return {
    kind: 'request',
    tid: f.tid,
    method: 'REPORT',
    headers: [
      { name: 'To-Path', value: f.toPath },
      { name: 'From-Path', value: f.fromPath },
      { name: 'Message-ID', value: f.messageId },
      { name: 'Byte-Range', value: formatByteRange(f.range) },
      {
        name: 'Status',
        value: formatStatus({ namespace: '000', code: f.code, comment: f.comment ?? msrpReason(f.code) }),
      },
    ],
  };
}
