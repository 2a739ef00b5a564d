import type { Admission, EventPackage, NotifyRendering, RenderContext, Subscription } from '../events/event-package.js';
import type { IscCall } from '../isc/dispatcher.js';
import { reply } from '../isc/types.js';
import type { LocalDomain } from '../users/local-domain.js';
import { REGINFO_CONTENT_TYPE, buildReginfo, type ContactEvent, type ReginfoContact } from './reginfo.js';
import type { RegistrationChange, Registrations } from './registrations.js';

interface RegState {
  /** -1 until the first document was rendered (then the version of the last one). */
  version: number;
  /** Contacts reported active last time, and their expiry: what the next document compares with. */
  known: Array<[string, number]>;
  [key: string]: unknown;
}

/**
 * The registration event package (RFC 3680, Event: reg): a user's devices watch the
 * registrations of the user's own address of record, fed by Kamailio's registration events.
 * Each NOTIFY carries full state: every active contact (registered or refreshed) and, once,
 * the contacts that went away (unregistered or expired).
 */
export class RegPackage implements EventPackage {
  readonly name = 'reg';
  readonly service = 'presence' as const;
  readonly defaultExpires = 3600;
  readonly minExpires = 60;
  readonly maxExpires = 7200;
  readonly contentTypes = [REGINFO_CONTENT_TYPE];
  readonly persistData = true;
  /** How each contact last went away, by "aor|contact" (a short memory: one NOTIFY needs it). */
  private readonly endings = new Map<string, ContactEvent>();

  constructor(
    private readonly deps: {
      registrations: Registrations;
      domain: LocalDomain;
      /** The user's other public identities (aliases, tel: number), registered with the AoR. */
      implicitSet?: (aor: string) => Promise<string[]>;
    },
  ) {}

  /** Remembers why a contact went, for the next document (expired vs unregistered). */
  noteChange(ch: RegistrationChange): void {
    if (ch.kind !== 'deregistered' && ch.kind !== 'expired') return;
    if (this.endings.size > 10_000) this.endings.clear();
    this.endings.set(`${ch.aor}|${ch.contact}`, ch.kind === 'expired' ? 'expired' : 'unregistered');
  }

  async admit(call: IscCall, watcher: string): Promise<Admission> {
    const target = this.deps.domain.canonical(call.req.ruri);
    // a user's registrations are the user's business (RFC 3680 section 5: authorization)
    if (!target || target !== watcher) {
      return { reject: reply(403, 'Forbidden', { warning: 'reg subscriptions are to your own address of record' }) };
    }
    const data: RegState = { version: -1, known: [] };
    return { state: 'active', resource: target, data };
  }

  async content(sub: Subscription, ctx: RenderContext): Promise<NotifyRendering> {
    const state = sub.data as RegState;
    const nowSeconds = Date.now() / 1000;
    const current = await this.deps.registrations.contacts(sub.resource);
    const known = new Map(state.known);
    const contacts: ReginfoContact[] = current.map((c) => ({
      uri: c.uri,
      state: 'active',
      event: !known.has(c.uri) ? 'registered' : known.get(c.uri) === c.expires ? 'registered' : 'refreshed',
      expires: c.expires === 0 ? 0 : c.expires - nowSeconds,
    }));
    const gone = [...known.keys()].filter((u) => !current.some((c) => c.uri === u));
    for (const u of gone) {
      const key = `${sub.resource}|${u}`;
      contacts.push({ uri: u, state: 'terminated', event: this.endings.get(key) ?? 'unregistered' });
      this.endings.delete(key);
    }
    const unchanged =
      state.version >= 0 &&
      gone.length === 0 &&
      current.length === known.size &&
      current.every((c) => known.get(c.uri) === c.expires);
    // RFC 3680 section 5.4: one more for each NOTIFY of the dialog, which is what the
    // notifier counts (it only grows, across restarts too); not kept in package data, whose
    // copy may be older than the dialog's last NOTIFY
    const version = ctx.version;
    const implicit = (await this.deps.implicitSet?.(sub.resource)) ?? [];
    const body = buildReginfo({
      version,
      state: 'full',
      aor: sub.resource,
      registrationState: current.length > 0 ? 'active' : state.version < 0 ? 'init' : 'terminated',
      contacts,
      ...(implicit.length ? { implicit } : {}),
    });
    return {
      contentType: REGINFO_CONTENT_TYPE,
      body,
      unchanged,
      data: { version, known: current.map((c) => [c.uri, c.expires]) },
    };
  }
}
