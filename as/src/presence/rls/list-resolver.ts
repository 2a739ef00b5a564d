/**
 * Resolution of a resource list service (RFC 4826: rls-services and resource-lists documents) to
 * the flat, de-duplicated list of resources a resource list subscription (RFC 4662) fans out to.
 *
 * Pure apart from the injected {@link DocumentLoader}: documents are read through it, parsed with
 * the project's guarded XML parser, and nothing is written. References are followed as RFC 4826
 * describes them:
 *  - a service's `<resource-list>` and a list's `<external anchor>`: the absolute XCAP URI of a
 *    `<list>` in a resource-lists document (any `scheme://host[:port]` and XCAP root path before
 *    the `resource-lists/users/...` part; the host is not checked, every document comes from the
 *    one loader);
 *  - `<entry-ref ref>`: an XCAP URI relative to the XCAP root naming one `<entry>`.
 * Only documents of the users tree of the resource-lists usage can be referenced, and only those
 * the list's owner may read over XCAP ({@link ResolveOptions.mayRead}): a list never discloses
 * what its owner could not GET.
 */
import {
  NamespaceScope,
  XmlError,
  type XmlDocument,
  type XmlElement,
  attr,
  childElements,
  findChild,
  findChildren,
  parseXml,
  textContent,
} from '../../xml/xml-tree.js';
import { type DocumentRef, documentKey } from '../../xdm/document-store.js';
import { NodeSelectorError, XcapUriError, parseXcapUri, type XcapUri } from '../../xdm/xcap-uri.js';
import { select } from '../../xdm/xcap-ops.js';
import { RESOURCE_LISTS_NS, relativeXcapUriProblem } from '../../xdm/usages/resource-lists.js';
import { RLS_SERVICES_NS } from '../../xdm/usages/rls-services.js';
import { collapse } from '../../xml/xsd-datatypes.js';
import { normalizeUri } from '../../xml/uri-check.js';
import { type SipUri, aor, parseUri, percentDecode } from '../../sip/index.js';

const RL = RESOURCE_LISTS_NS;
const RLS = RLS_SERVICES_NS;
const RESOURCE_LISTS_AUID = 'resource-lists';

/** Where a document lives in the XCAP tree (the document store's own reference type). */
export type DocumentAddress = DocumentRef;

/** A stored XML body, or undefined when there is no such document. Storage errors reject. */
export type DocumentLoader = (ref: DocumentAddress) => Promise<string | undefined>;

export interface ListMember {
  uri: string;
  displayName?: string;
}

export interface ResolvedList {
  /** The service URI, as given by the caller. */
  uri: string;
  /** Event packages the service is for; empty = any package (no `<packages>` element). */
  packages: string[];
  /** The display name of the top list, when it has one. */
  displayName?: string;
  /** Members in document order, first occurrence of each (canonical) URI only. */
  members: ListMember[];
  /** `documentKey()` of every document the resolution asked the loader for, missing ones included. */
  sources: string[];
}

export type ResolveFailure = {
  kind: 'not-found' | 'loop' | 'too-many' | 'bad-reference' | 'unreadable' | 'forbidden';
  detail: string;
  /** As {@link ResolvedList.sources}: the documents read before the failure (e.g. to retry once a missing one appears). */
  sources?: string[];
};

export interface ResolveOptions {
  /** Whether the list's owner may read this document (XCAP authorization); false fails with 'forbidden'. */
  mayRead: (ref: DocumentAddress) => boolean;
  /** More distinct members than this fails with 'too-many'. */
  maxMembers: number;
  /**
   * How many lists may be open inside each other, the top list counting as 1; nested `<list>`s,
   * `<external>`s and the service's `<resource-list>` all count. Deeper fails with 'loop'.
   */
  maxDepth: number;
  /**
   * Canonicalises a member URI (lower-case scheme/host etc.); identity by default. The canonical
   * form is the member's `uri` and its identity for de-duplication; undefined drops the member.
   */
  canonical?: (uri: string) => string | undefined;
}

/** Thrown inside a resolution, turned into the returned ResolveFailure at the top. */
class Failure extends Error {
  constructor(readonly failure: Omit<ResolveFailure, 'sources'>) {
    super(failure.detail);
  }
}

function fail(kind: ResolveFailure['kind'], detail: string): never {
  throw new Failure({ kind, detail });
}

interface Located {
  el: XmlElement;
  /** Scope inside `el` (its own declarations applied). */
  scope: NamespaceScope;
}

/** The text of a `<display-name>` child in the resource-lists namespace, trimmed; undefined when absent or empty. */
function displayNameOf(node: Located): string | undefined {
  const dn = findChild(node.el, node.scope, RL, 'display-name');
  const t = dn ? textContent(dn).trim() : '';
  return t === '' ? undefined : t;
}

/**
 * The document address and node selector of an absolute XCAP URI: everything before the
 * `resource-lists/<users|global>/` segments is taken as scheme, authority and XCAP root.
 */
function absoluteXcapUri(uri: string): XcapUri {
  const u = uri.trim();
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]+/.test(u)) fail('bad-reference', `"${u}" is not an absolute XCAP URI`);
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    fail('bad-reference', `"${u}" is not an absolute XCAP URI`);
  }
  const segs = url.pathname.split('/');
  let at = -1;
  for (let i = 1; i + 1 < segs.length; i++) {
    if (segs[i] === RESOURCE_LISTS_AUID && (segs[i + 1] === 'users' || segs[i + 1] === 'global')) {
      at = i;
      break;
    }
  }
  if (at === -1) fail('bad-reference', `"${u}" is not the XCAP URI of a resource-lists document`);
  return xcapUri(url.pathname, segs.slice(0, at).join('/'), url.search.slice(1), u);
}

function xcapUri(path: string, root: string, query: string, asWritten: string): XcapUri {
  try {
    return parseXcapUri(path, root, query === '' ? { defaultNamespace: RL } : { defaultNamespace: RL, query });
  } catch (e) {
    if (e instanceof XcapUriError || e instanceof NodeSelectorError)
      fail('bad-reference', `"${asWritten}": ${e.message}`);
    throw e;
  }
}

/** Loads, parses and caches documents; remembers every address asked for. */
class Resolution {
  readonly members: ListMember[] = [];
  readonly sources: string[] = [];
  private readonly seen = new Set<string>();
  private readonly docs = new Map<string, XmlDocument | undefined>();
  /** Lists being flattened right now (identity of the parsed element: documents are parsed once). */
  private readonly open = new Set<XmlElement>();
  /** Lists already flattened: visiting one again adds nothing, so it is skipped (keeps diamonds linear). */
  private readonly finished = new Set<XmlElement>();
  private readonly canonical: (uri: string) => string | undefined;

  constructor(
    private readonly load: DocumentLoader,
    private readonly opts: ResolveOptions,
    /** Another namespace whose entry, entry-ref and external count as resource-lists' (OMA groups). */
    private readonly alsoNs?: string,
  ) {
    this.canonical = opts.canonical ?? ((u) => u);
  }

  async document(ref: DocumentAddress): Promise<XmlDocument | undefined> {
    const key = documentKey(ref);
    if (this.docs.has(key)) return this.docs.get(key);
    // checked before the read: whether such a document exists is not disclosed either
    if (!this.opts.mayRead(ref)) fail('forbidden', `document ${key} is not the list owner's`);
    this.sources.push(key);
    const body = await this.load(ref);
    let doc: XmlDocument | undefined;
    if (body !== undefined) {
      try {
        doc = parseXml(body);
      } catch (e) {
        if (e instanceof XmlError) fail('unreadable', `document ${key}: ${e.message}`);
        throw e;
      }
      const rootScope = NamespaceScope.root().child(doc.root);
      const name = rootScope.expand(doc.root.name);
      if (name.ns !== RL || name.local !== 'resource-lists')
        fail('unreadable', `document ${key} is not a resource-lists document`);
    }
    this.docs.set(key, doc);
    return doc;
  }

  /** The element an XCAP URI selects, which must be {resource-lists}`local`. */
  private async target(x: XcapUri, local: 'list' | 'entry', asWritten: string): Promise<Located> {
    if (x.auid !== RESOURCE_LISTS_AUID || x.tree !== 'users' || x.xui === undefined) {
      fail('bad-reference', `"${asWritten}" is not in the users tree of resource-lists`);
    }
    const article = local === 'entry' ? 'an' : 'a';
    if (!x.nodeSelector || x.nodeSelector.terminal)
      fail('bad-reference', `"${asWritten}" does not select ${article} ${local} element`);
    const ref: DocumentAddress = { auid: x.auid, tree: 'users', xui: x.xui, path: x.documentPath };
    const doc = await this.document(ref);
    if (!doc) fail('bad-reference', `"${asWritten}": no document ${documentKey(ref)}`);
    const s = select(doc, x.nodeSelector, RL);
    if (s.kind !== 'element')
      fail('bad-reference', `"${asWritten}" selects ${s.kind === 'many' ? 'more than one element' : 'nothing'}`);
    const scope = s.scope.child(s.element);
    const name = scope.expand(s.element.name);
    if (name.ns !== RL || name.local !== local)
      fail('bad-reference', `"${asWritten}" selects <${name.local}>, not ${article} ${local}`);
    return { el: s.element, scope };
  }

  /** The list an absolute XCAP URI (resource-list, external anchor) points at. */
  listAt(uri: string): Promise<Located> {
    return this.target(absoluteXcapUri(uri), 'list', uri.trim());
  }

  private add(uri: string, displayName: string | undefined): void {
    const c = this.canonical(uri);
    if (c === undefined || this.seen.has(c)) return;
    if (this.members.length >= this.opts.maxMembers)
      fail('too-many', `the list has more than ${this.opts.maxMembers} members`);
    this.seen.add(c);
    this.members.push(displayName === undefined ? { uri: c } : { uri: c, displayName });
  }

  /** Appends the members of a list (its `scope` already inside it), recursively. */
  async flatten(list: Located, where: string): Promise<void> {
    if (this.open.has(list.el)) fail('loop', `${where} is reached again while it is being resolved`);
    if (this.finished.has(list.el)) return;
    if (this.open.size >= this.opts.maxDepth)
      fail('loop', `lists nested deeper than ${this.opts.maxDepth} at ${where}`);
    this.open.add(list.el);
    for (const child of childElements(list.el)) {
      const node: Located = { el: child, scope: list.scope.child(child) };
      const name = node.scope.expand(child.name);
      // other namespaces are extensions, which RFC 4826 lets us ignore
      if (name.ns !== RL && (this.alsoNs === undefined || name.ns !== this.alsoNs)) continue;
      switch (name.local) {
        case 'entry': {
          const uri = collapse(attr(child, 'uri') ?? '');
          if (uri === '') fail('unreadable', `an entry without a uri in ${where}`);
          this.add(uri, displayNameOf(node));
          break;
        }
        case 'list':
          await this.flatten(node, `list "${attr(child, 'name') ?? ''}" in ${where}`);
          break;
        case 'external': {
          const anchor = attr(child, 'anchor') ?? '';
          await this.flatten(await this.listAt(anchor), `"${anchor.trim()}"`);
          break;
        }
        case 'entry-ref': {
          const ref = (attr(child, 'ref') ?? '').trim();
          const p = relativeXcapUriProblem(ref);
          if (p) fail('bad-reference', `entry-ref "${ref}" ${p}`);
          const entry = await this.target(xcapUri(`/${ref}`, '', '', ref), 'entry', ref);
          const uri = collapse(attr(entry.el, 'uri') ?? '');
          if (uri === '') fail('bad-reference', `entry-ref "${ref}" selects an entry without a uri`);
          // a name given where the reference is made is the owner's own label for it
          this.add(uri, displayNameOf(node) ?? displayNameOf(entry));
          break;
        }
        default:
          break; // display-name
      }
    }
    this.open.delete(list.el);
    this.finished.add(list.el);
  }
}

/** Runs a resolution of `top`, turning a Failure into the returned value. */
async function run(
  r: Resolution,
  top: () => Promise<Located>,
  where: string,
  result: (list: Located) => Omit<ResolvedList, 'members' | 'sources'>,
): Promise<ResolvedList | ResolveFailure> {
  try {
    const list = await top();
    await r.flatten(list, where);
    return { ...result(list), members: r.members, sources: r.sources };
  } catch (e) {
    if (e instanceof Failure) return { ...e.failure, sources: r.sources };
    throw e;
  }
}

function withDisplayName(
  base: { uri: string; packages: string[] },
  list: Located,
): Omit<ResolvedList, 'members' | 'sources'> {
  const dn = displayNameOf(list);
  return dn === undefined ? base : { ...base, displayName: dn };
}

/**
 * The service with this URI in an rls-services document body (URIs compared with the usage's
 * normalizeUri), resolved to its flat member list; undefined when the document has no such
 * service. A body that does not parse as an rls-services document, or a service with neither
 * `<resource-list>` nor `<list>`, is 'unreadable'.
 */
export async function resolveService(
  rlsServicesBody: string,
  serviceUri: string,
  load: DocumentLoader,
  opts: ResolveOptions,
): Promise<ResolvedList | ResolveFailure | undefined> {
  let doc: XmlDocument;
  try {
    doc = parseXml(rlsServicesBody);
  } catch (e) {
    if (e instanceof XmlError) return { kind: 'unreadable', detail: `rls-services document: ${e.message}` };
    throw e;
  }
  const rootScope = NamespaceScope.root().child(doc.root);
  const rootName = rootScope.expand(doc.root.name);
  if (rootName.ns !== RLS || rootName.local !== 'rls-services')
    return { kind: 'unreadable', detail: 'not an rls-services document' };

  const wanted = normalizeUri(serviceUri);
  const service = findChildren(doc.root, rootScope, RLS, 'service').find(
    (s) => normalizeUri(attr(s, 'uri') ?? '') === wanted,
  );
  if (!service) return undefined;
  const scope = rootScope.child(service);

  const packages: string[] = [];
  for (const pk of findChildren(service, scope, RLS, 'packages')) {
    for (const p of findChildren(pk, scope.child(pk), RLS, 'package')) {
      const v = collapse(textContent(p));
      if (v !== '' && !packages.includes(v)) packages.push(v);
    }
  }

  const r = new Resolution(load, opts);
  const base = { uri: serviceUri, packages };
  const inline = findChild(service, scope, RLS, 'list');
  if (inline) {
    return run(
      r,
      async () => ({ el: inline, scope: scope.child(inline) }),
      `the list of service ${serviceUri}`,
      (l) => withDisplayName(base, l),
    );
  }
  const ref = findChild(service, scope, RLS, 'resource-list');
  if (!ref) return { kind: 'unreadable', detail: `service ${serviceUri} has neither a resource-list nor a list` };
  const anchor = collapse(textContent(ref));
  return run(
    r,
    () => r.listAt(anchor),
    `"${anchor}"`,
    (l) => withDisplayName(base, l),
  );
}

/**
 * A list by name among the top-level lists of `owner`'s resource-lists document
 * `resource-lists/users/<owner>/index` (the OMA buddy list case, see {@link parsePresListUri}).
 * The document or the list missing is 'not-found'; `packages` is always empty (any package).
 */
export async function resolveNamedList(
  owner: string,
  listName: string,
  serviceUri: string,
  load: DocumentLoader,
  opts: ResolveOptions,
): Promise<ResolvedList | ResolveFailure> {
  const r = new Resolution(load, opts);
  const ref: DocumentAddress = { auid: RESOURCE_LISTS_AUID, tree: 'users', xui: owner, path: 'index' };
  const top = async (): Promise<Located> => {
    const doc = await r.document(ref);
    if (!doc) fail('not-found', `no document ${documentKey(ref)}`);
    const rootScope = NamespaceScope.root().child(doc.root);
    const list = findChildren(doc.root, rootScope, RL, 'list').find((l) => attr(l, 'name') === listName);
    if (!list) fail('not-found', `no list "${listName}" in ${documentKey(ref)}`);
    return { el: list, scope: rootScope.child(list) };
  };
  return run(r, top, `list "${listName}" of ${owner}`, (l) => withDisplayName({ uri: serviceUri, packages: [] }, l));
}

/**
 * The members of a list element found elsewhere (an OMA group's list, whose members are written
 * in the groups namespace `memberNs` or in resource-lists'): its entries, and the entries its
 * entry-refs and externals point at, in the owner's resource-lists documents.
 */
export async function resolveMemberList(
  list: XmlElement,
  scope: NamespaceScope,
  where: string,
  load: DocumentLoader,
  opts: ResolveOptions,
  memberNs: string,
): Promise<Pick<ResolvedList, 'members' | 'sources'> | ResolveFailure> {
  const r = new Resolution(load, opts, memberNs);
  return run(
    r,
    async () => ({ el: list, scope }),
    where,
    () => ({ uri: where, packages: [] }),
  );
}

/**
 * Parses the OMA presence list URI form `sip:user;pres-list=NAME@domain` (the list name as a
 * parameter of the user part) into the owner's address of record (`sip:user@domain`) and the
 * list name (percent-decoded). Undefined for anything else, tel: URIs included.
 */
export function parsePresListUri(uri: string): { owner: string; list: string } | undefined {
  let u: SipUri;
  try {
    u = parseUri(uri);
  } catch {
    return undefined;
  }
  if (u.scheme === 'tel' || u.user === undefined) return undefined;
  // split the raw user part so an escaped ';' inside a value cannot start a parameter
  const [user = '', ...params] = u.user.split(';');
  if (user === '') return undefined;
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq === -1 || p.slice(0, eq).toLowerCase() !== 'pres-list') continue;
    let list: string;
    try {
      list = percentDecode(p.slice(eq + 1));
    } catch {
      return undefined;
    }
    if (list === '') return undefined;
    try {
      return { owner: aor(`${u.scheme}:${user}@${u.host}`), list };
    } catch {
      return undefined;
    }
  }
  return undefined;
}
