import { createHash } from 'node:crypto';
import type { Admission, EventPackage, NotifyRendering, Subscription } from '../events/event-package.js';
import type { IscCall } from '../isc/dispatcher.js';
import { reply } from '../isc/types.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { Presentities } from './presentities.js';
import type { ProvideSet, SubHandling } from '../xdm/usages/pres-rules.js';
import type { PresenceAuthorizer } from './authorization.js';
import { politeBlockDocument, serializePidf } from './pidf/index.js';
import type { PresenceState } from './presence-state.js';

export const PIDF_CONTENT_TYPE = 'application/pidf+xml';

export interface ExpiryBounds {
  minExpires: number;
  maxExpires: number;
  defaultExpires: number;
}

/** What a presence subscription keeps between NOTIFYs. */
export interface PresenceSubData {
  handling: SubHandling;
  provide?: ProvideSet;
  /** Hash of the last document sent: a NOTIFY only when what the watcher sees changed. */
  sent?: string;
  [key: string]: unknown;
}

/**
 * The presence event package (RFC 3856) of the Presence Server: admission by the
 * presentity's pres-rules (block: 403; polite-block: accepted with a neutral document;
 * confirm or no rule: pending; allow: active), and NOTIFY bodies shaped per watcher.
 */
export class PresencePackage implements EventPackage {
  readonly name = 'presence';
  readonly service = 'presence' as const;
  readonly defaultExpires: number;
  readonly minExpires: number;
  readonly maxExpires: number;
  readonly contentTypes = [PIDF_CONTENT_TYPE];

  constructor(private readonly deps: { presentities: Presentities; domain: LocalDomain; authorizer: PresenceAuthorizer; state: PresenceState; expiry: ExpiryBounds }) {
    ({ defaultExpires: this.defaultExpires, minExpires: this.minExpires, maxExpires: this.maxExpires } = deps.expiry);
  }

  async admit(call: IscCall, watcher: string): Promise<Admission> {
    const resource = this.deps.domain.canonical(call.req.ruri);
    if (!resource || !(await this.deps.presentities.exists(resource))) return { reject: reply(404, 'Not Found') };
    const grant = await this.deps.authorizer.decide(resource, watcher);
    if (grant.handling === 'block') return { reject: reply(403, 'Forbidden') };
    const data: PresenceSubData = { handling: grant.handling, ...(grant.provide ? { provide: grant.provide } : {}) };
    return { state: grant.handling === 'confirm' ? 'pending' : 'active', resource, data };
  }

  async content(sub: Subscription): Promise<NotifyRendering> {
    const data = sub.data as PresenceSubData;
    // polite-block: indistinguishable from a presentity that is simply offline
    const body = data.handling === 'polite-block'
      ? serializePidf(politeBlockDocument(sub.resource))
      : await this.deps.state.view(sub.resource, data.provide);
    const sent = createHash('sha1').update(body).digest('base64url');
    return { contentType: PIDF_CONTENT_TYPE, body, data: { ...data, sent }, unchanged: sent === data.sent };
  }
}
