/**
 * Telling a client's fault from ours in an HTTP server's errors, and what to log of one: a
 * client that went away or sent bytes HTTP cannot parse is worth one line with the message,
 * never a stack (a hostile client would fill the log with them).
 */

const CLIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_HTTP_REQUEST_TIMEOUT',
]);

/** Whether `err` is the client's doing: the connection dropped, or the request did not parse. */
export function isClientFault(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  return (
    CLIENT_CODES.has(code) || code.startsWith('HPE_') || err.message === 'aborted' || err.message === 'Parse Error'
  );
}

/**
 * Log fields for an error: its message, code and the message of its cause, never a stack; for
 * an error of ours (not a client's) also `at`, the one frame where it was thrown.
 */
export function errorSummary(err: unknown): { error: string; code?: string; cause?: string; at?: string } {
  if (!(err instanceof Error)) return { error: String(err).slice(0, 200) };
  const code = (err as NodeJS.ErrnoException).code;
  const cause =
    err.cause instanceof Error ? err.cause.message : err.cause === undefined ? undefined : String(err.cause);
  const at = isClientFault(err)
    ? undefined
    : err.stack
        ?.split('\n')
        .find((l) => l.trimStart().startsWith('at '))
        ?.trim();
  return {
    error: err.message.slice(0, 200),
    ...(code ? { code } : {}),
    ...(cause ? { cause: cause.slice(0, 200) } : {}),
    ...(at ? { at } : {}),
  };
}
