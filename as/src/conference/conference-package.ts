/**
 * The conference event package (RFC 4575): SUBSCRIBE Event: conference to a conference URI.
 * The owner and the participants may watch it (others 403, an unknown or ended conference
 * 404); the first NOTIFY has the full conference-info, the next ones only what changed, with
 * growing versions. When the conference ends, every subscription to it ends with a final
 * NOTIFY (reason noresource) carrying the full final state. The roster is read from the store at each NOTIFY: whichever
 * instance wrote it, each instance renders from the same state.
 */
import type { Admission, EventPackage, NotifyRendering, RenderContext, Subscription } from '../events/event-package.js';
import type { IscCall } from '../isc/dispatcher.js';
import { reply } from '../isc/types.js';
import type { LocalDomain } from '../users/local-domain.js';
import { CONFERENCE_INFO_CONTENT_TYPE, conferenceInfo, type SentConferenceInfo } from './conference-info.js';
import type { ConferenceRoster } from './roster.js';

interface ConferenceSubData {
  sent?: SentConferenceInfo;
  [key: string]: unknown;
}

/** What the package needs of the notifier to end the subscriptions of an ended conference. */
export interface ConferenceNotifier {
  resourceChanged(event: string, resource: string): Promise<number>;
  owned(filter: Record<string, unknown>): Promise<Subscription[]>;
  end(id: string, reason: 'noresource'): Promise<void>;
}

export class ConferencePackage implements EventPackage {
  readonly name = 'conference';
  readonly service = 'im' as const;
  readonly defaultExpires = 3600;
  readonly minExpires = 60;
  readonly maxExpires = 86400;
  readonly contentTypes = [CONFERENCE_INFO_CONTENT_TYPE];
  /** The final NOTIFY of an ended conference has its full last state: active false, nobody connected. */
  readonly finalStateOnNoresource = true;

  constructor(
    private readonly deps: {
      roster: ConferenceRoster;
      domain: LocalDomain;
      /** Late: the notifier is built before the packages it serves. */
      notifier: () => ConferenceNotifier;
    },
  ) {}

  async admit(call: IscCall, watcher: string): Promise<Admission> {
    const uri = this.deps.domain.canonical(call.req.ruri) ?? call.req.ruri;
    const conf = await this.deps.roster.get(uri);
    if (!conf || conf.endedAt) return { reject: reply(404, 'Not Found', { warning: `no conference ${uri}` }) };
    const taking = conf.participants.some((p) => p.uri === watcher && p.status !== 'disconnected');
    if (watcher !== conf.owner && !taking)
      return {
        reject: reply(403, 'Forbidden', {
          warning: 'only the owner and the participants may watch this conference',
        }),
      };
    return { state: 'active', resource: conf._id, data: {} };
  }

  async content(sub: Subscription, ctx: RenderContext): Promise<NotifyRendering | undefined> {
    const conf = await this.deps.roster.get(sub.resource);
    if (!conf) return undefined;
    const data = sub.data as ConferenceSubData;
    const previous = ctx.fullState ? undefined : data.sent;
    const doc = conferenceInfo(conf, ctx.version, previous);
    return {
      contentType: CONFERENCE_INFO_CONTENT_TYPE,
      body: doc.body,
      data: { sent: doc.sent },
      unchanged: doc.unchanged,
    };
  }

  /**
   * A conference's roster changed (the reaction to Change 'conference', on every instance):
   * the dialogs this instance holds get a partial NOTIFY, or their final one once it ended.
   */
  async conferenceChanged(uri: string): Promise<void> {
    const notifier = this.deps.notifier();
    const conf = await this.deps.roster.get(uri);
    if (conf && !conf.endedAt) {
      await notifier.resourceChanged(this.name, uri);
      return;
    }
    const subs = await notifier.owned({ event: this.name, resource: uri, state: { $ne: 'terminated' } });
    for (const s of subs) await notifier.end(s._id, 'noresource');
  }
}
