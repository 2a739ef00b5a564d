/**
 * MSRP status codes (RFC 4975 section 10 registry, RFC 4976 for 401) with the reason phrase
 * we write after them. Pure: no I/O.
 */
export const MSRP_STATUS = {
  OK: 200,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  TIMEOUT: 408,
  STOP_SENDING: 413,
  UNSUPPORTED_MEDIA: 415,
  OUT_OF_BOUNDS: 423,
  NO_SESSION: 481,
  UNKNOWN_METHOD: 501,
  WRONG_CONNECTION: 506,
} as const;

const REASONS: ReadonlyMap<number, string> = new Map([
  [200, 'OK'],
  [400, 'Bad Request'],
  [401, 'Unauthorized'],
  [403, 'Forbidden'],
  [408, 'Request Timeout'],
  [413, 'Message Too Large'],
  [415, 'Unsupported Media Type'],
  [423, 'Parameter Out Of Bounds'],
  [481, 'Session Does Not Exist'],
  [501, 'Not Implemented'],
  [506, 'Session Already Bound'],
]);

/** The reason phrase of a code; an unknown code gets its class's generic phrase. */
export function msrpReason(code: number): string {
  return REASONS.get(code) ?? (code >= 200 && code < 300 ? 'OK' : code < 500 ? 'Request Failed' : 'Server Failure');
}

/** A response code is a three-digit number (RFC 4975 ABNF `status-code = 3DIGIT`). */
export function isStatusCode(code: number): boolean {
  return Number.isInteger(code) && code >= 100 && code <= 999;
}
