import { createHash } from 'node:crypto';
import type { Admission, EventPackage, NotifyRendering, Subscription } from '../events/event-package.js';
import type { Notifier } from '../events/notifier.js';
import type { IscCall } from '../isc/dispatcher.js';
import { reply } from '../isc/types.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { ExpiryBounds } from './presence-package.js';
import { WATCHERINFO_CONTENT_TYPE, watcherinfoDocument, type WatcherEntry, type WatcherEvent } from './watcherinfo.js';

interface WinfoData {
  /** Documents sent so far on this subscription (the next version number). */
  version: number;
  /** Last state told per watcher: "status event", as pairs (ids are hashes, no dots). */
  told: Array<[string, string]>;
  [key: string]: unknown;
}

const REASON_EVENT: Record<string, WatcherEvent> = {
  timeout: 'timeout',
  rejected: 'rejected',
  giveup: 'giveup',
  noresource: 'noresource',
  deactivated: 'deactivated',
  unsubscribed: 'timeout',
};

/**
 * The presence.winfo package (RFC 3857/3858): the presentity learns who watches it and
 * in which state — a full list first, then only the watchers whose state changed. A new
 * pending watcher shows up at once: that is how the presentity is asked for consent.
 */
export class WatcherInfoPackage implements EventPackage {
  readonly name = 'presence.winfo';
  readonly service = 'presence' as const;
  // read at each use: a reload may change the bounds (deps.expiry is the running configuration)
  get defaultExpires(): number {
    return this.deps.expiry.defaultExpires;
  }
  get minExpires(): number {
    return this.deps.expiry.minExpires;
  }
  get maxExpires(): number {
    return this.deps.expiry.maxExpires;
  }
  readonly contentTypes = [WATCHERINFO_CONTENT_TYPE];
  readonly persistData = true;

  constructor(
    private readonly deps: {
      domain: LocalDomain;
      notifier: () => Notifier;
      watchedPackage: string;
      expiry: ExpiryBounds;
    },
  ) {}

  async admit(call: IscCall, watcher: string): Promise<Admission> {
    const resource = this.deps.domain.canonical(call.req.ruri);
    if (!resource || resource !== watcher)
      return { reject: reply(403, 'Forbidden', { warning: 'only the presentity may see its watchers' }) };
    const data: WinfoData = { version: 0, told: [] };
    return { state: 'active', resource, data };
  }

  async content(sub: Subscription): Promise<NotifyRendering> {
    const data = sub.data as WinfoData;
    const told = new Map(data.told);
    const subs = await this.deps.notifier().find({ event: this.deps.watchedPackage, resource: sub.resource });
    const now = Date.now();
    const current: WatcherEntry[] = [];
    for (const s of subs) {
      const id = createHash('sha1').update(s._id).digest('base64url').slice(0, 16);
      if (s.state === 'terminated') {
        // a watcher that ended is reported once, then forgotten
        if (!told.has(id) || told.get(id)!.startsWith('terminated')) continue;
        current.push({
          id,
          uri: shownAs(s),
          status: 'terminated',
          event: REASON_EVENT[s.endReason ?? 'timeout'] ?? 'timeout',
        });
        continue;
      }
      const approved = s.state === 'active' && told.get(id)?.startsWith('pending');
      current.push({
        id,
        uri: shownAs(s),
        status: s.state,
        event: approved ? 'approved' : 'subscribe',
        durationSubscribed: Math.max(0, Math.round((now - s.createdAt.getTime()) / 1000)),
        expiration: Math.max(0, Math.round((s.expiresAt.getTime() - now) / 1000)),
      });
    }
    const full = data.version === 0;
    const changed = full
      ? current
      : current.filter(
          (w) =>
            told.get(w.id) !== `${w.status} ${w.event}` &&
            !(told.get(w.id)?.startsWith(w.status) && w.event === 'subscribe'),
        );
    // what the watcher now knows: only watchers still in the store (ended ones leave it)
    const nowTold = new Map(current.map((w) => [w.id, `${w.status} ${w.event}`] as const));
    const body = watcherinfoDocument({
      resource: sub.resource,
      package: this.deps.watchedPackage,
      version: data.version,
      state: full ? 'full' : 'partial',
      watchers: changed,
    });
    return {
      contentType: WATCHERINFO_CONTENT_TYPE,
      body,
      data: { version: data.version + (full || changed.length ? 1 : 0), told: [...nowTold] },
      unchanged: !full && changed.length === 0,
    };
  }
}

/** A watcher who asked for privacy appears as anonymous to the presentity (RFC 3857 section 3.4). */
function shownAs(s: Subscription): string {
  return s.watcherAnonymous ? 'sip:anonymous@anonymous.invalid' : s.watcher;
}
