import type { IncomingMessage } from 'node:http';

/** The request body could not be read within the limit. */
export class BodyTooLargeError extends Error {
  readonly status = 413;
  constructor(readonly limit: number) {
    super(`request body larger than ${limit} bytes`);
  }
}

/** The client stopped sending before the body was complete (shorter than its Content-Length). */
export class BodyTimeoutError extends Error {
  readonly status = 408;
  constructor(
    readonly idleMs: number,
    readonly received: number,
  ) {
    super(`request body incomplete: nothing more for ${idleMs} ms after ${received} bytes`);
  }
}

/**
 * How long a body may pause before the request is given up. Node's own request timeout is
 * 300 s: a client that promises more bytes than it sends would hold a request (and its
 * socket) that long.
 */
export const BODY_IDLE_MS = 5000;

/**
 * Reads a whole request body as one Buffer, refusing it as soon as it grows past `limit`
 * (the stream is left to be destroyed by the caller's error handling, nothing is buffered
 * beyond the limit), or when no byte arrives for `idleMs`.
 */
export function readBody(req: IncomingMessage, limit: number, idleMs = BODY_IDLE_MS): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLargeError(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let idle: NodeJS.Timeout | undefined;
    const stop = (err?: Error) => {
      clearTimeout(idle);
      req.removeAllListeners('data');
      if (err) {
        req.resume();
        reject(err);
      }
    };
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => stop(new BodyTimeoutError(idleMs, size)), idleMs);
    };
    arm();
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return stop(new BodyTooLargeError(limit));
      chunks.push(chunk);
      arm();
    });
    req.on('end', () => {
      stop();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.on('error', (err) => stop(err));
  });
}
