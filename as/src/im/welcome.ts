/**
 * The first registration of a user brings one service MESSAGE: the IM profile (the user's
 * im-policy document) is created with its defaults and the message says what it holds and
 * where to edit it (the OMA IM architecture asks the server to inform the user). Once per
 * user across every AS instance on the store: the first instance to insert the user's marker
 * sends it; a send that no device took removes the marker, so the next registration tries again.
 */
import type { Logger } from '../log/logger.js';
import type { RegistrationChange } from '../registrations/registrations.js';
import { DuplicateKeyError, type Collection, type Store } from '../store/port.js';
import { imPolicyUsage, defaultImPolicyDocument } from '../xdm/usages/im-policy.js';
import { PreconditionFailed, type XdmDocuments } from '../xdm/document-store.js';
import type { ServiceMessenger } from './service-messages.js';

interface WelcomeMarker {
  _id: string; // the user's AoR
  [key: string]: unknown;
  at: Date;
  by: string;
}

export class Welcome {
  private readonly markers: Collection<WelcomeMarker>;

  constructor(
    private readonly deps: {
      store: Store;
      docs: XdmDocuments;
      messenger: ServiceMessenger;
      xcapRoot: string;
      nodeId: string;
      log: Logger;
    },
  ) {
    this.markers = deps.store.collection<WelcomeMarker>('im_welcomed');
  }

  /** A registration change: only a user's first contact ever counts. */
  async registrationChanged(change: RegistrationChange): Promise<void> {
    if (change.kind !== 'registered') return;
    const user = change.aor;
    try {
      await this.markers.insertOne({ _id: user, at: new Date(), by: this.deps.nodeId });
    } catch (err) {
      if (err instanceof DuplicateKeyError) return; // welcomed before, here or by another instance
      throw err;
    }
    const created = await this.createProfile(user);
    const outcome = await this.deps.messenger.send(user, this.text(user, created));
    if (outcome.code < 200 || outcome.code >= 300) {
      // nobody took it: the next registration tries again
      await this.markers.deleteOne({ _id: user });
      this.deps.log.warn({ user, code: outcome.code }, 'welcome message not taken; will try at the next registration');
      return;
    }
    this.deps.log.info({ user, profileCreated: created }, 'welcome message sent');
  }

  /** The default im-policy document, unless the user already has one: true when created now. */
  private async createProfile(user: string): Promise<boolean> {
    try {
      await this.deps.docs.put(
        { auid: imPolicyUsage.auid, tree: 'users', xui: user, path: 'index' },
        defaultImPolicyDocument(),
        { kind: 'absent' },
      );
      return true;
    } catch (err) {
      if (err instanceof PreconditionFailed) return false;
      throw err;
    }
  }

  private text(user: string, created: boolean): string {
    const uri = `${this.deps.xcapRoot}/${imPolicyUsage.auid}/users/${user}/index`;
    return [
      created
        ? 'Welcome. Your IM profile was created with the defaults:'
        : 'Welcome. Your IM profile is in place. The defaults are:',
      'messages from anyone are accepted, messages that arrive while you are offline are kept for you, and no history is kept.',
      `To change it, edit ${uri} (${imPolicyUsage.mimeType}) with your XCAP client.`,
    ].join('\n');
  }
}
