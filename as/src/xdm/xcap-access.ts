import type { DocumentRef } from './document-store.js';

/**
 * The XCAP server's authorization (RFC 4825 section 5.7 leaves it to local policy): a user
 * reads and writes their own tree only; global documents are read-only, for everyone.
 * Whatever reads documents on a user's behalf (the list server following references) asks here.
 */
export function mayAccess(identity: string, ref: Pick<DocumentRef, 'tree' | 'xui'>, access: 'read' | 'write'): boolean {
  if (ref.tree === 'global') return access === 'read';
  return ref.tree === 'users' && ref.xui === identity;
}
