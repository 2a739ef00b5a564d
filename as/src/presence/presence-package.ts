import type {
  Admission,
  EventPackage,
  NotifyRendering,
  RefreshDecision,
  RenderContext,
  Subscription,
} from '../events/event-package.js';
import {
  FilterError,
  SIMPLE_FILTER_CONTENT_TYPE,
  filtersFor,
  hasContentFilter,
  mergeFilterSets,
  parseFilterSet,
  triggersDecide,
  type FilterSet,
} from './filters/simple-filter.js';
import type { IscCall } from '../isc/dispatcher.js';
import { reply, type ReplyDecision } from '../isc/types.js';
import { wantsPrivacy } from '../sip/request-checks.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { Presentities } from './presentities.js';
import type { ProvideSet, SubHandling } from '../xdm/usages/pres-rules.js';
import type { PresenceAuthorizer } from './authorization.js';
import { politeBlockDocument, serializePidf } from './pidf/index.js';
import type { PresenceState } from './presence-state.js';
import { PIDF_DIFF_CONTENT_TYPE } from './pidf/pidf-diff.js';
import { MULTIPART_RELATED, type ResourceListServer } from './rls/list-server.js';
import { RLMI_CONTENT_TYPE } from './rls/rlmi.js';

import { PIDF_CONTENT_TYPE } from './pidf-body.js';
import { headerValueOnly } from '../sip/index.js';

export { PIDF_CONTENT_TYPE };

export interface ExpiryBounds {
  minExpires: number;
  maxExpires: number;
  defaultExpires: number;
}

/** What a presence subscription keeps between NOTIFYs. */
export interface PresenceSubData {
  handling: SubHandling;
  provide?: ProvideSet;
  /** The watcher's filter documents (RFC 4660), in the order its SUBSCRIBEs brought them. */
  filters?: string[];
  /** Hash of the last document sent: a NOTIFY only when what the watcher sees changed. */
  sent?: string;
  /** The last document sent (before content filters): the base of triggers and partial PIDF. */
  base?: string;
  /** The last document sent, as the watcher holds it (partial PIDF applies to it). */
  held?: string;
  [key: string]: unknown;
}

/** Compiled filter sets kept per distinct sequence of filter documents. */
const MAX_COMPILED_FILTERS = 10_000;

/**
 * The presence event package (RFC 3856) of the Presence Server: admission by the
 * presentity's pres-rules (block: 403; polite-block: accepted with a neutral document;
 * confirm or no rule: pending; allow: active), and NOTIFY bodies shaped per watcher:
 * filtered (RFC 4660/4661) and, for watchers that accept it, partial (RFC 5263). List URIs
 * go to the Resource List Server.
 */
export class PresencePackage implements EventPackage {
  readonly name = 'presence';
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
  readonly contentTypes = [PIDF_CONTENT_TYPE, PIDF_DIFF_CONTENT_TYPE, MULTIPART_RELATED, RLMI_CONTENT_TYPE];
  readonly listsMembers = true;
  /** The store keeps filter documents as text; compiled sets (XPath included) stay here. */
  private readonly compiled = new Map<string, FilterSet | undefined>();

  constructor(
    private readonly deps: {
      presentities: Presentities;
      domain: LocalDomain;
      authorizer: PresenceAuthorizer;
      state: PresenceState;
      lists?: ResourceListServer;
      expiry: ExpiryBounds;
    },
  ) {}

  async admit(call: IscCall, watcher: string): Promise<Admission> {
    const { ruri } = call.req;
    const eventlist = hasOption(call.sip.headers.getAll('Supported'), 'eventlist');
    const resource = this.deps.domain.canonical(ruri);
    // a list URI first: with an open domain every user part would pass for a presentity
    if (this.deps.lists) {
      const list = await this.deps.lists.find(ruri);
      if (list) {
        if (!eventlist) return { reject: reply(421, 'Extension Required', { headers: [['Require', 'eventlist']] }) };
        if (call.sip.body.trim())
          return {
            reject: reply(415, 'Unsupported Media Type', {
              headers: [['Accept', SIMPLE_FILTER_CONTENT_TYPE]],
              warning: 'filters are not supported on list subscriptions',
            }),
          };
        return this.deps.lists.admit(call, watcher, list);
      }
    }
    if (!resource || !(await this.deps.presentities.exists(resource))) return { reject: reply(404, 'Not Found') };
    const filtered = this.filtersOf(call, undefined);
    if ('reject' in filtered) return filtered;
    // a watcher asking for privacy is an anonymous request to the presentity's rules
    const grant = await this.deps.authorizer.decide(resource, wantsPrivacy(call.sip) ? undefined : watcher);
    if (grant.handling === 'block') return { reject: reply(403, 'Forbidden') };
    const data: PresenceSubData = {
      handling: grant.handling,
      ...(grant.provide ? { provide: grant.provide } : {}),
      ...(filtered.filters ? { filters: filtered.filters } : {}),
    };
    return {
      state: grant.handling === 'confirm' ? 'pending' : 'active',
      resource,
      data,
      ...(filtered.warning !== undefined ? { warning: filtered.warning } : {}),
    };
  }

  /** A refresh may carry new filters (RFC 4660 section 3.3): merged into those in force. */
  async refresh(sub: Subscription, call: IscCall): Promise<RefreshDecision | undefined> {
    if (isList(sub) || !call.sip.body.trim()) return undefined;
    const data = sub.data as PresenceSubData;
    const filtered = this.filtersOf(call, data.filters);
    if ('reject' in filtered) return filtered;
    const next: PresenceSubData = { ...data };
    if (filtered.filters) next.filters = filtered.filters;
    else delete next.filters;
    return { data: next, ...(filtered.warning !== undefined ? { warning: filtered.warning } : {}) };
  }

  chargingExtra(sub: Subscription): Record<string, unknown> {
    return isList(sub) ? this.deps.lists!.chargingExtra(sub) : {};
  }

  async content(sub: Subscription, ctx: RenderContext): Promise<NotifyRendering | undefined> {
    if (isList(sub)) return this.deps.lists!.content(sub, ctx);
    const data = sub.data as PresenceSubData;
    // a watcher the presentity has not approved sees no state, whatever the dialog's state
    // (the final NOTIFY of a pending watcher's un-SUBSCRIBE too): RFC 6665 4.2.2
    if (data.handling === 'confirm' || sub.state === 'pending') return undefined;
    // polite-block: indistinguishable from a presentity that is simply offline
    const { documents } = this.deps.state;
    const authorized =
      data.handling === 'polite-block'
        ? documents.of(serializePidf(politeBlockDocument(sub.resource)))
        : await this.deps.state.viewDocument(sub.resource, data.provide);
    const set = data.filters ? this.filterSet(data.filters) : undefined;
    const filters = set ? filtersFor(set, sub.resource) : [];
    // watchers under the same filters for this resource share the filtered document and the trigger decision
    const filterKey = data.filters ? this.filterKey(sub.resource, data.filters) : '';
    const shown = hasContentFilter(filters) ? authorized.filteredBy(filterKey, filters) : authorized;
    const sent = shown.hash;
    // a change that fires none of the watcher's triggers is not notified (RFC 4661 section 3.3)
    const quiet =
      sent === data.sent ||
      (filters.length > 0 &&
        !ctx.fullState &&
        data.base !== undefined &&
        triggersDecide(filters) &&
        !authorized.firesFrom(documents.of(data.base), filterKey, filters));
    const body = shown.body;
    if (quiet && !ctx.fullState) return { contentType: PIDF_CONTENT_TYPE, body, data, unchanged: true };
    const next: PresenceSubData = { ...data, sent, base: authorized.body, held: body };
    if (sub.accept.includes(PIDF_DIFF_CONTENT_TYPE)) {
      // partial PIDF (RFC 5263): changes against what the watcher holds, full state when asked or cheaper
      // (versions start at 1, RFC 5263 section 4.4)
      const version = ctx.version + 1;
      const diff =
        !ctx.fullState && data.held !== undefined ? shown.diffFrom(documents.of(data.held), version) : undefined;
      return { contentType: PIDF_DIFF_CONTENT_TYPE, body: diff ?? shown.full(version), data: next };
    }
    return { contentType: PIDF_CONTENT_TYPE, body, data: next };
  }

  /** Names a watcher's filters for a resource; its dialog keeps the same list from one change to the next. */
  private filterKey(resource: string, filters: string[]): string {
    let byResource = this.filterKeys.get(filters);
    if (byResource?.resource !== resource) {
      byResource = { resource, key: `${resource}\u0000${filters.join('\u0000')}` };
      this.filterKeys.set(filters, byResource);
    }
    return byResource.key;
  }

  private readonly filterKeys = new WeakMap<string[], { resource: string; key: string }>();

  /** The filter set that a sequence of filter documents leaves in force (throws FilterError). */
  private filterSet(bodies: string[]): FilterSet | undefined {
    const key = bodies.join('\u0000');
    if (this.compiled.has(key)) return this.compiled.get(key);
    let set: FilterSet | undefined;
    for (const b of bodies) set = mergeFilterSets(set, parseFilterSet(b));
    if (this.compiled.size >= MAX_COMPILED_FILTERS) this.compiled.clear();
    this.compiled.set(key, set);
    return set;
  }

  /** The filter set a SUBSCRIBE asks for, merged into `current` (RFC 4660). */
  /**
   * The filters in force after this SUBSCRIBE. A filter that asks for more than we implement is
   * left out and the subscription goes on unfiltered by it, with a Warning saying so (the OMA
   * presence reading of RFC 4660: the watcher still gets presence); a malformed one is refused.
   */
  private filtersOf(
    call: IscCall,
    current: string[] | undefined,
  ): { filters?: string[]; warning?: string } | { reject: ReplyDecision } {
    const body = call.sip.body;
    if (!body.trim()) return current ? { filters: current } : {};
    const type = headerValueOnly(call.sip.headers.get('Content-Type'));
    if (type !== SIMPLE_FILTER_CONTENT_TYPE) {
      return { reject: reply(415, 'Unsupported Media Type', { headers: [['Accept', SIMPLE_FILTER_CONTENT_TYPE]] }) };
    }
    try {
      const bodies = [...(current ?? []), body];
      return this.filterSet(bodies) ? { filters: bodies } : {};
    } catch (err) {
      if (err instanceof FilterError && err.unsupported) {
        return {
          ...(current ? { filters: current } : {}),
          warning: `filter not applied: ${err.warning ?? err.reason}`,
        };
      }
      if (err instanceof FilterError) {
        return { reject: reply(err.status, err.reason, err.warning ? { warning: err.warning } : {}) };
      }
      throw err;
    }
  }
}

function isList(sub: Subscription): boolean {
  return (sub.data as { kind?: string }).kind === 'list';
}

/** Whether an option tag is among Supported/Require header values. */
function hasOption(values: string[], tag: string): boolean {
  return values.some((v) => v.split(',').some((t) => t.trim().toLowerCase() === tag));
}
