import type {
  Admission,
  NotifyContent,
  NotifyRendering,
  RenderContext,
  Subscription,
} from '../../events/event-package.js';
import type { Notifier } from '../../events/notifier.js';
import type { IscCall } from '../../isc/dispatcher.js';
import { reply } from '../../isc/types.js';
import type { Logger } from '../../log/logger.js';
import { buildMultipart } from '../../sip/multipart.js';
import type { LocalDomain } from '../../users/local-domain.js';
import { documentKey, type DocumentRef, type XdmDocuments } from '../../xdm/document-store.js';
import { normalizeUri } from '../../xml/uri-check.js';
import { serviceUriClaimProblem } from '../../xdm/usages/rls-services.js';
import { mayAccess } from '../../xdm/xcap-access.js';
import type { PresenceAuthorizer, PresenceGrant } from '../authorization.js';
import { politeBlockDocument, serializePidf } from '../pidf/index.js';
import { PIDF_DIFF_CONTENT_TYPE } from '../pidf/pidf-diff.js';
import { PIDF_CONTENT_TYPE } from '../pidf-body.js';
import type { PresenceState } from '../presence-state.js';
import type { Presentities } from '../presentities.js';
import type { BackendSubscriptions } from './backend.js';
import {
  parsePresListUri,
  resolveNamedList,
  resolveService,
  type ListMember,
  type ResolveFailure,
  type ResolveOptions,
  type ResolvedList,
} from './list-resolver.js';
import { RLMI_CONTENT_TYPE, rlmiInstanceId, serializeRlmi, type RlmiInstance, type RlmiResource } from './rlmi.js';
import type { Metrics } from '../../ops/metrics.js';

export const MULTIPART_RELATED = 'multipart/related';

/** What a list subscription keeps (in the store: membership; in memory: what was sent). */
export interface ListSubData {
  kind: 'list';
  /** The user whose document defines the list. */
  owner: string;
  /** The list's URI as the subscriber used it (the RLMI `uri`). */
  uri: string;
  displayName?: string;
  members: ListMember[];
  /** Keys of the XCAP documents the membership was read from. */
  sources: string[];
  /** Per member, what the watcher was last told: "state reason hash" (memory only). */
  told?: Record<string, string>;
  /** Per member, the last presence document sent and its version (memory only; partial PIDF in lists). */
  docs?: Record<string, HeldDocument>;
  [key: string]: unknown;
}

/** One NOTIFY body of a list, and what the watcher holds of each member after it. */
interface Chunk {
  content: NotifyContent;
  held: Array<[string, HeldDocument | undefined]>;
}

/** A member's document as the watcher holds it: partial PIDF is counted per member (RFC 5263 4.4). */
export interface HeldDocument {
  pidf: string;
  version: number;
}

/** A list found for a Request-URI, before the subscriber is checked. */
export interface ListTarget {
  owner: string;
  /** Resolves the membership (again, after a document change). */
  resolve(): Promise<ResolvedList | ResolveFailure | undefined>;
}

/** One member as the watcher may see it now. */
interface MemberView {
  member: ListMember;
  state: RlmiInstance['state'];
  reason?: string;
  /** The member's presence document this watcher may see (active members). */
  pidf?: string;
}

export interface ListLimits {
  /** Largest NOTIFY body; a larger state is split across NOTIFYs (RFC 4662 section 5). */
  maxNotifyBytes: number;
  maxMembers: number;
  maxDepth: number;
}

/** Space a part's headers and delimiters take in the multipart body, besides its content. */
const PART_OVERHEAD = 160;
/** Space of an RLMI <instance> element with its cid. */
const INSTANCE_BYTES = 110;

/** Space of an RLMI <resource> element without instances. */
function resourceBytes(v: MemberView): number {
  return (
    40 +
    Buffer.byteLength(v.member.uri, 'utf8') +
    (v.member.displayName ? 30 + Buffer.byteLength(v.member.displayName, 'utf8') : 0)
  );
}
/** Grants kept per member and watcher; cleared whole above this (a crude but safe bound). */
const MAX_CACHED_GRANTS = 100_000;

/**
 * The Resource List Server (RFC 4662; OMA Presence SIMPLE's Presence List Server): one
 * subscription to a list URI from an rls-services document (or a user's named list,
 * sip:user;pres-list=NAME@domain) stands for subscriptions to every member. Members of our
 * domain are read internally, each through its own pres-rules for this subscriber, and the
 * watcher gets multipart/related NOTIFYs: an RLMI document and one presence document per
 * member it may see; full state first, then only the members whose state changed, split
 * into several NOTIFYs above a configured size.
 */
export class ResourceListServer {
  private readonly grants = new Map<string, PresenceGrant>();

  constructor(
    private readonly deps: {
      docs: XdmDocuments;
      domain: LocalDomain;
      presentities: Presentities;
      authorizer: PresenceAuthorizer;
      state: PresenceState;
      notifier: () => Notifier;
      /** Back-end subscriptions to members in other domains; without it they show as pending. */
      backend?: BackendSubscriptions;
      limits: ListLimits;
      log: Logger;
      metrics: Metrics;
    },
  ) {}

  /** Changes may have been missed (another instance's): decide every grant again. */
  forgetGrants(): void {
    this.grants.clear();
  }

  /**
   * The list a Request-URI names, if any. A provisioned user's address is never a list, and a
   * service counts only when its URI is in its owner's namespace (documents written before that
   * rule was enforced cannot take over anyone's address either).
   */
  async find(ruri: string): Promise<ListTarget | undefined> {
    const load = (ref: DocumentRef) => this.deps.docs.get(ref).then((d) => d?.body);
    const named = parsePresListUri(ruri.replace(/^<|>$/g, ''));
    if (named) {
      const owner = this.deps.domain.canonical(named.owner);
      if (!owner) return undefined;
      return { owner, resolve: () => resolveNamedList(owner, named.list, ruri, load, this.resolveOptions(owner)) };
    }
    const canonical = this.deps.domain.canonical(ruri);
    if (canonical && (await this.deps.presentities.provisioned(canonical))) return undefined;
    const candidates = new Set([normalizeUri(ruri)]);
    if (canonical) candidates.add(canonical);
    for (const value of candidates) {
      // service URIs are unique across users: the claim names the one document defining it
      const doc = await this.deps.docs.holderOf('rls-services', 'uri', value);
      if (!doc || serviceUriClaimProblem(value, doc.xui, this.deps.domain.domain)) continue;
      return {
        owner: doc.xui,
        resolve: async () => {
          // read again: the document may have changed since
          const current = await this.deps.docs.get(doc);
          if (!current) return undefined;
          const resolved = await resolveService(current.body, ruri, load, this.resolveOptions(doc.xui));
          // the rls-services document itself is a source too: its edits change the list
          if (resolved && !('kind' in resolved)) resolved.sources = [documentKey(doc), ...resolved.sources];
          return resolved;
        },
      };
    }
    return undefined;
  }

  /** Admits a list subscription (the caller checked Supported: eventlist). */
  async admit(call: IscCall, watcher: string, target: ListTarget): Promise<Admission> {
    if (watcher !== target.owner) {
      return { reject: reply(403, 'Forbidden', { warning: 'only the owner of a resource list may subscribe to it' }) };
    }
    const resolved = await target.resolve();
    if (!resolved) return { reject: reply(404, 'Not Found') };
    if ('kind' in resolved) return { reject: failureReply(resolved) };
    if (resolved.packages.length && !resolved.packages.includes('presence')) {
      return { reject: reply(489, 'Bad Event', { headers: [['Allow-Events', resolved.packages.join(', ')]] }) };
    }
    const uri = call.req.ruri.replace(/^<|>$/g, '');
    const data: ListSubData = {
      kind: 'list',
      owner: target.owner,
      uri,
      members: resolved.members,
      sources: resolved.sources,
      ...(resolved.displayName ? { displayName: resolved.displayName } : {}),
    };
    return {
      state: 'active',
      resource: normalizeUri(uri),
      data,
      watches: this.watched(resolved.members),
      replyHeaders: [['Require', 'eventlist']],
    };
  }

  chargingExtra(sub: Subscription): Record<string, unknown> {
    const data = sub.data as ListSubData;
    return { list: true, resources: data.members.length };
  }

  /**
   * The NOTIFY bodies for a list subscription now: with full state, every member; else
   * only those whose state or document changed since the last NOTIFY (none: unchanged).
   */
  async content(sub: Subscription, ctx: RenderContext): Promise<NotifyRendering> {
    const data = sub.data as ListSubData;
    const views = await Promise.all(data.members.map((m) => this.view(m, sub.watcher)));
    const told: Record<string, string> = ctx.fullState ? {} : { ...(data.told ?? {}) };
    const docs: Record<string, HeldDocument> = ctx.fullState ? {} : { ...(data.docs ?? {}) };
    const changed: MemberView[] = [];
    for (const v of views) {
      // a digest, not the document: the document itself is kept once, in the presence state's cache
      // (hashed once per document, not per watcher)
      const mark = `${v.state} ${v.reason ?? ''} ${v.pidf === undefined ? '' : this.deps.state.documents.of(v.pidf).hash}`;
      if (!ctx.fullState && told[v.member.uri] === mark) continue;
      told[v.member.uri] = mark;
      changed.push(v);
    }
    const next: ListSubData = { ...data, told, docs };
    if (!ctx.fullState && changed.length === 0) {
      return { contentType: MULTIPART_RELATED, body: '', data: next, unchanged: true };
    }
    const diffs = sub.accept.includes(PIDF_DIFF_CONTENT_TYPE);
    const bodies = this.render(data, changed, ctx, docs, diffs);
    const [first, ...more] = bodies;
    return { ...first!, data: next, ...(more.length ? { more } : {}) };
  }

  /** Renders member views into one or more multipart/related bodies within the size limit. */
  private render(
    data: ListSubData,
    views: MemberView[],
    ctx: RenderContext,
    docs: Record<string, HeldDocument>,
    diffs: boolean,
  ): NotifyContent[] {
    const limit = this.deps.limits.maxNotifyBytes;
    const withDoc = views.filter((v) => v.pidf !== undefined);
    const bare = views.filter((v) => v.pidf === undefined);
    const out: NotifyContent[] = [];
    let next = 0;
    for (let chunk = 0; chunk === 0 || next < withDoc.length; chunk++) {
      const fullState = ctx.fullState && chunk === 0;
      // first chunk: the members without a document; a full state also names every member
      const head = chunk === 0 ? bare : [];
      let size =
        400 +
        head.reduce((n, v) => n + resourceBytes(v) + INSTANCE_BYTES, 0) +
        (fullState ? withDoc.reduce((n, v) => n + resourceBytes(v), 0) : 0);
      const take: MemberView[] = [];
      while (next < withDoc.length) {
        const v = withDoc[next]!;
        const cost =
          PART_OVERHEAD + INSTANCE_BYTES + Buffer.byteLength(v.pidf!, 'utf8') + (fullState ? 0 : resourceBytes(v));
        if (take.length > 0 && size + cost > limit) break;
        size += cost;
        take.push(v);
        next++;
      }
      const build = () =>
        this.chunk(
          data,
          fullState ? views : [...head, ...take],
          new Set(take.map((v) => v.member.uri)),
          ctx.version + chunk,
          fullState,
          docs,
          diffs,
        );
      let built = build();
      // the estimate was short: hand members back to the next chunk until it fits
      while (Buffer.byteLength(built.content.body, 'utf8') > limit && take.length > 1) {
        take.pop();
        next--;
        built = build();
      }
      if (Buffer.byteLength(built.content.body, 'utf8') > limit) {
        this.deps.log.warn(
          { list: data.uri, bytes: Buffer.byteLength(built.content.body, 'utf8'), limit },
          'list NOTIFY above the size limit (one member document, or the list itself, is larger)',
        );
      }
      for (const [uri, doc] of built.held) {
        if (doc) docs[uri] = doc;
        else delete docs[uri];
      }
      out.push(built.content);
    }
    return out;
  }

  /** One multipart/related body: the RLMI document naming `entries`, and the documents of `included`. */
  private chunk(
    data: ListSubData,
    entries: MemberView[],
    included: Set<string>,
    version: number,
    fullState: boolean,
    docs: Readonly<Record<string, HeldDocument>>,
    diffs: boolean,
  ): Chunk {
    const held: Array<[string, HeldDocument | undefined]> = [];
    const host = this.deps.domain.domain;
    const resources: RlmiResource[] = [];
    const parts: Array<{ headers: Array<[string, string]>; body: string }> = [];
    for (const v of entries) {
      const id = rlmiInstanceId(v.member.uri);
      const resource: RlmiResource = {
        uri: v.member.uri,
        instances: [],
        ...(v.member.displayName ? { names: [{ text: v.member.displayName }] } : {}),
      };
      if (v.pidf === undefined) {
        held.push([v.member.uri, undefined]);
        resource.instances.push({ id, state: v.state, ...(v.reason ? { reason: v.reason } : {}) });
      } else if (included.has(v.member.uri)) {
        const cid = `${id}.${version}@${host}`;
        resource.instances.push({ id, state: v.state, cid });
        // partial PIDF against what this watcher holds of the member, when it takes it (RFC 5263)
        const previous = docs[v.member.uri];
        const memberVersion = (previous?.version ?? 0) + 1;
        // the member's document and the one held are each parsed once for all the list's watchers
        const { documents } = this.deps.state;
        const member = diffs ? documents.of(v.pidf) : undefined;
        const diff =
          member && previous !== undefined ? member.diffFrom(documents.of(previous.pidf), memberVersion) : undefined;
        const body = diff ?? (member ? member.full(memberVersion) : v.pidf);
        held.push([v.member.uri, { pidf: v.pidf, version: memberVersion }]);
        parts.push({
          headers: [
            ['Content-Transfer-Encoding', 'binary'],
            ['Content-ID', `<${cid}>`],
            ['Content-Type', diffs ? PIDF_DIFF_CONTENT_TYPE : PIDF_CONTENT_TYPE],
          ],
          body,
        });
      }
      // a member whose document is in a later NOTIFY is named here without an instance
      resources.push(resource);
    }
    const rlmiCid = `list.${version}@${host}`;
    const rlmi = serializeRlmi({
      uri: data.uri,
      version,
      fullState,
      resources,
      ...(data.displayName ? { names: [{ text: data.displayName }] } : {}),
    });
    const content = buildMultipart({
      subtype: 'related',
      type: RLMI_CONTENT_TYPE,
      start: `<${rlmiCid}>`,
      parts: [
        {
          headers: [
            ['Content-Transfer-Encoding', 'binary'],
            ['Content-ID', `<${rlmiCid}>`],
            ['Content-Type', RLMI_CONTENT_TYPE],
          ],
          body: rlmi,
        },
        ...parts,
      ],
    });
    return { content, held };
  }

  /** A member as this watcher may see it, through the member's own pres-rules. */
  private async view(member: ListMember, watcher: string): Promise<MemberView> {
    const local = this.deps.domain.canonical(member.uri);
    if (!local) {
      // another domain: what its presence server tells our back-end subscription
      if (!this.deps.backend) return { member, state: 'pending' };
      return { member, ...(await this.deps.backend.view(member.uri)) };
    }
    if (!(await this.deps.presentities.exists(local))) return { member, state: 'terminated', reason: 'noresource' };
    const grant = await this.grant(local, watcher);
    switch (grant.handling) {
      case 'block':
        return { member, state: 'terminated', reason: 'rejected' };
      case 'confirm':
        return { member, state: 'pending' };
      case 'polite-block':
        return { member, state: 'active', pidf: serializePidf(politeBlockDocument(local)) };
      default:
        return { member, state: 'active', pidf: await this.deps.state.view(local, grant.provide) };
    }
  }

  private async grant(member: string, watcher: string): Promise<PresenceGrant> {
    const key = `${member}\n${watcher}`;
    let g = this.grants.get(key);
    if (!g) {
      g = await this.deps.authorizer.decide(member, watcher);
      if (this.grants.size >= MAX_CACHED_GRANTS) this.grants.clear();
      this.grants.set(key, g);
    }
    return g;
  }

  /** Members whose presence changes concern the list: ours canonical, others as listed. */
  private watched(members: ListMember[]): string[] {
    return [...new Set(members.map((m) => this.deps.domain.canonical(m.uri) ?? m.uri))];
  }

  /** How `owner`'s lists are resolved: with the owner's XCAP authorization. */
  private resolveOptions(owner: string): ResolveOptions {
    const { maxMembers, maxDepth } = this.deps.limits;
    return {
      maxMembers,
      maxDepth,
      mayRead: (ref) => mayAccess(owner, ref, 'read'),
      // our users under any alias are one member; other URIs as written (their port matters)
      canonical: (uri: string) => this.deps.domain.canonical(uri) ?? uri.trim(),
    };
  }

  /**
   * An XCAP document changed: a member's pres-rules (re-decide that member in every list),
   * or a document a list was read from (re-read the membership).
   */
  async documentChanged(ref: DocumentRef): Promise<void> {
    if (ref.tree !== 'users') return;
    if (ref.auid === 'pres-rules') {
      const member = ref.xui;
      for (const key of [...this.grants.keys()]) if (key.startsWith(`${member}\n`)) this.grants.delete(key);
      await this.deps.notifier().resourceChanged('presence', member, { direct: false });
      return;
    }
    if (ref.auid !== 'rls-services' && ref.auid !== 'resource-lists') return;
    const notifier = this.deps.notifier();
    // the dialogs this instance holds: every instance re-reads its own
    const subs = await notifier.owned({
      event: 'presence',
      'data.sources': documentKey(ref),
      state: { $ne: 'terminated' },
    });
    for (const s of subs) await this.reresolve(s);
  }

  private async reresolve(s: Subscription): Promise<void> {
    const data = s.data as ListSubData;
    const notifier = this.deps.notifier();
    const target = await this.find(data.uri);
    const resolved = target && target.owner === data.owner ? await target.resolve() : undefined;
    if (!resolved) {
      await notifier.end(s._id, 'noresource');
      return;
    }
    if ('kind' in resolved) {
      // a broken edit (a loop, a dangling reference): keep serving the last good membership
      this.deps.log.warn(
        { list: data.uri, problem: resolved.kind, detail: resolved.detail },
        'list membership not updated',
      );
      return;
    }
    const same =
      JSON.stringify(resolved.members) === JSON.stringify(data.members) &&
      JSON.stringify(resolved.sources) === JSON.stringify(data.sources);
    if (same) return;
    const next: ListSubData = {
      kind: 'list',
      owner: data.owner,
      uri: data.uri,
      members: resolved.members,
      sources: resolved.sources,
      ...(resolved.displayName ? { displayName: resolved.displayName } : {}),
    };
    await notifier.update(s._id, next, this.watched(resolved.members));
  }
}

function failureReply(f: ResolveFailure) {
  const why =
    f.kind === 'loop'
      ? 'the resource list refers to itself'
      : f.kind === 'too-many'
        ? 'the resource list has too many members'
        : f.kind === 'forbidden'
          ? 'the resource list refers to a document its owner may not read'
          : `the resource list cannot be read (${f.detail})`;
  return reply(f.kind === 'not-found' ? 404 : 403, f.kind === 'not-found' ? 'Not Found' : 'Forbidden', {
    warning: why,
  });
}
