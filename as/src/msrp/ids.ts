/** Random transaction ids, session ids and Message-IDs (hex: valid in every MSRP position). */
import { randomBytes } from 'node:crypto';

/**
 * Random bytes drawn from a pool refilled 4 KiB at a time: a transaction id per request made
 * one crypto call each, which showed at the top of the switch's profile.
 */
const POOL_BYTES = 4096;
let pool = randomBytes(POOL_BYTES);
let poolAt = 0;

function randomHex(bytes: number): string {
  if (poolAt + bytes > POOL_BYTES) {
    pool = randomBytes(POOL_BYTES);
    poolAt = 0;
  }
  const hex = pool.toString('hex', poolAt, poolAt + bytes);
  poolAt += bytes;
  return hex;
}

export function newTransactionId(): string {
  return randomHex(8);
}

export function newSessionId(): string {
  return randomBytes(12).toString('hex');
}

export function newMessageId(): string {
  return randomHex(10);
}
