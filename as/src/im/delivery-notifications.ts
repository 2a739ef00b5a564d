import { randomBytes } from 'node:crypto';
import type { LocalDomain } from '../users/local-domain.js';
import { serializeCpim } from './formats/cpim.js';
import { buildImdnMessage } from './formats/imdn.js';
import type { ImMessage, StoredMessage } from './message-store.js';
import type { NotificationFactory } from './store-and-forward.js';

/**
 * The delivery notifications (RFC 5438) the deferred-messaging function sends on behalf of a
 * recipient: "delivered" when a stored message reaches a device, "failed" when it expires or
 * is refused. They go to the original sender, when the sender is one of our users.
 */
export function deliveryNotifications(domain: LocalDomain): NotificationFactory {
  return (original: StoredMessage, status: 'delivered' | 'failed') => {
    const to = domain.canonical(original.sender);
    if (!to || !original.imdn) return undefined;
    const now = new Date();
    const cpim = buildImdnMessage({
      from: { uri: original.recipient },
      to: { uri: original.sender },
      dateTime: now.toISOString(),
      messageId: randomBytes(12).toString('base64url'),
      imdn: {
        kind: 'delivery',
        status,
        messageId: original.imdn.messageId,
        dateTime: original.imdn.dateTime,
        recipientUri: original.recipient,
        originalRecipientUri: original.recipient,
      },
    });
    const message: ImMessage = {
      sender: original.recipient,
      fromHeader: `<${original.recipient}>`,
      contentType: 'message/cpim',
      body: serializeCpim(cpim),
      sentAt: now,
      callId: original.callId,
      chargingVector: original.chargingVector,
      privacy: false,
      kind: 'notification',
    };
    return { to, message };
  };
}
