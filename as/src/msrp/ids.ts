/** Random transaction ids, session ids and Message-IDs (hex: valid in every MSRP position). */
import { randomBytes } from 'node:crypto';

export function newTransactionId(): string {
  return randomBytes(8).toString('hex');
}

export function newSessionId(): string {
  return randomBytes(12).toString('hex');
}

export function newMessageId(): string {
  return randomBytes(10).toString('hex');
}
