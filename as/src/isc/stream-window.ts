/**
 * Flow control for the requests the AS writes on Kamailio's evapi stream. Pure: no sockets.
 *
 * Why: evapi (5.6) reads at most 32,767 bytes per recv() and, when a read ends inside a
 * frame's length prefix or just before its closing comma, it throws away what it holds and
 * then every read that starts in the middle of a frame, until the writer falls silent.
 * Under load one unlucky cut lost every later request. A read only ends at an arbitrary
 * point when more is waiting than fits in its buffer, so we never let more than `limit`
 * bytes be unconfirmed: frames go out in batches, the last frame of each batch carries
 * `"ack":<id>`, and Kamailio answers a `stream-ack` event once it has consumed it.
 */
import { encodeNetstring } from './netstring.js';

export interface StreamBatch {
  id: number;
  /** The netstrings of the batch, one write. */
  data: Buffer;
  frames: number;
}

interface Unconfirmed {
  id: number;
  bytes: number;
  sentAt: number;
}

/** evapi's buffer is 32,768 bytes and it reads into 32,767 of them: keep a margin. */
export const STREAM_WINDOW_BYTES = 32_700;

/** Largest frame (JSON bytes) the AS writes on the stream: evapi cannot read a frame larger than its buffer. */
export const STREAM_FRAME_LIMIT = 32_000;

/** Bytes the ack marker `"ack":<id>,` may add to a frame (ids stay below 2^53). */
const MARKER_RESERVE = 32;

export class StreamWindow {
  private queue: string[] = [];
  private queuedHead = 0;
  private readonly unconfirmed: Unconfirmed[] = [];
  private unconfirmedBytes = 0;
  private nextId: number;

  /**
   * Kamailio sends confirmations to every AS stream (it cannot address one connection), so
   * each window starts its ids at a random point: another instance's ids never match ours.
   */
  constructor(
    private readonly limit = STREAM_WINDOW_BYTES,
    firstId = 1 + Math.floor(Math.random() * 2 ** 30),
  ) {
    this.nextId = firstId;
  }

  /** Queues one JSON object payload (it must start with `{`). */
  push(payload: string): void {
    this.queue.push(payload);
  }

  get queued(): number {
    return this.queue.length - this.queuedHead;
  }

  get inFlightBytes(): number {
    return this.unconfirmedBytes;
  }

  /** When the oldest unconfirmed batch went out (undefined: nothing unconfirmed). */
  get oldestSentAt(): number | undefined {
    return this.unconfirmed[0]?.sentAt;
  }

  /**
   * The next batch that fits in the window, or undefined when nothing is queued or the
   * window is full. A single frame always goes out once the window is empty, whatever
   * its size (the caller keeps frames below evapi's buffer).
   */
  next(now: number): StreamBatch | undefined {
    const parts: Buffer[] = [];
    // the marker goes on one frame of the batch: reserve room for it once
    let bytes = MARKER_RESERVE;
    let i = this.queuedHead;
    for (; i < this.queue.length; i++) {
      const len = frameBytes(this.queue[i]!);
      if (this.unconfirmedBytes + bytes + len > this.limit && (i > this.queuedHead || this.unconfirmedBytes > 0)) break;
      bytes += len;
    }
    const count = i - this.queuedHead;
    if (count === 0) return undefined;
    const id = this.nextId;
    // ids stay within Kamailio's 32-bit integers
    this.nextId = this.nextId >= 2 ** 31 - 1 ? 1 : this.nextId + 1;
    for (let j = this.queuedHead; j < i; j++) {
      const payload = this.queue[j]!;
      parts.push(encodeNetstring(j === i - 1 ? withAck(payload, id) : payload));
    }
    this.queuedHead = i;
    this.compact();
    const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    this.unconfirmed.push({ id, bytes: data.length, sentAt: now });
    this.unconfirmedBytes += data.length;
    return { id, data, frames: count };
  }

  /**
   * Kamailio consumed the batch `id` (and, the stream being ordered, every earlier one).
   * False for an id that is not outstanding.
   */
  ack(id: number): boolean {
    const at = this.unconfirmed.findIndex((u) => u.id === id);
    if (at < 0) return false;
    for (const u of this.unconfirmed.splice(0, at + 1)) this.unconfirmedBytes -= u.bytes;
    return true;
  }

  /**
   * The stream is gone: forgets what was unconfirmed (its fate is unknown: replies may
   * still come, or the transactions time out) and returns the payloads never written.
   */
  reset(): string[] {
    const unsent = this.queue.slice(this.queuedHead);
    this.queue = [];
    this.queuedHead = 0;
    this.unconfirmed.length = 0;
    this.unconfirmedBytes = 0;
    return unsent;
  }

  private compact(): void {
    if (this.queuedHead > 1024 && this.queuedHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queuedHead);
      this.queuedHead = 0;
    }
  }
}

/** Size of a payload once framed as a netstring. */
export function frameBytes(payload: string): number {
  const n = Buffer.byteLength(payload, 'utf8');
  return String(n).length + n + 2;
}

/** The payload with `"ack":id` as its first member (Kamailio checks the first bytes only). */
export function withAck(payload: string, id: number): string {
  if (!payload.startsWith('{')) throw new TypeError('stream payloads are JSON objects');
  const rest = payload.slice(1).trimStart();
  return `{"ack":${id}${rest.startsWith('}') ? '' : ','}${rest}`;
}
