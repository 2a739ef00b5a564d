import type { Admission, EventPackage, Subscription } from '../events/event-package.js';
import type { IscCall } from '../isc/dispatcher.js';
import { reply } from '../isc/types.js';
import { XmlError, escapeAttribute, parseXml, xmlNamespaces } from '../xml/xml-tree.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { DocumentRef, XdmDocuments } from './document-store.js';
import { headerValueOnly } from '../sip/index.js';

export const XCAP_DIFF_CONTENT_TYPE = 'application/xcap-diff+xml';

interface DiffState {
  /** Selectors watched: a document ("auid/users/xui/path") or a directory (ending in "/"). */
  watch: string[];
  /** ETag last reported per document selector, as pairs: selectors contain dots, which
   *  stores refuse in field names. */
  etags: Array<[string, string]>;
  /** The first NOTIFY (full state) went out. */
  sent: boolean;
  [key: string]: unknown;
}

/** The document selector of a stored document, relative to the XCAP root (RFC 5874 "sel"). */
export function documentSelector(ref: DocumentRef): string {
  return ref.tree === 'global' ? `${ref.auid}/global/${ref.path}` : `${ref.auid}/users/${ref.xui}/${ref.path}`;
}

/**
 * The xcap-diff event package (RFC 5875) at document level: a user subscribes to their own
 * XCAP documents (all of them, or those and the directories listed in a resource-lists
 * body) and is told, in application/xcap-diff+xml (RFC 5874), each document's new ETag and
 * the one it replaces — all of them in the first NOTIFY, then only what changed.
 */
export class XcapDiffPackage implements EventPackage {
  readonly name = 'xcap-diff';
  readonly service = 'xdm' as const;
  readonly defaultExpires = 3600;
  readonly minExpires = 60;
  readonly maxExpires = 86400;
  readonly contentTypes = [XCAP_DIFF_CONTENT_TYPE];
  readonly persistData = true;

  constructor(private readonly deps: { docs: XdmDocuments; domain: LocalDomain; rootUri: string }) {}

  async admit(call: IscCall, watcher: string): Promise<Admission> {
    const target = this.deps.domain.canonical(call.req.ruri);
    if (target !== watcher) {
      return { reject: reply(403, 'Forbidden', { warning: 'xcap-diff subscriptions are to your own documents' }) };
    }
    const watch = this.watchList(call, watcher);
    if ('reject' in watch) return watch;
    const data: DiffState = { watch: watch.selectors, etags: [], sent: false };
    return { state: 'active', resource: watcher, data };
  }

  /** The selectors a SUBSCRIBE asks for: its resource-lists body, or everything of the user. */
  private watchList(call: IscCall, watcher: string): { selectors: string[] } | Extract<Admission, { reject: unknown }> {
    const body = call.sip.body.trim();
    if (!body) return { selectors: [`*/users/${watcher}/`] };
    const type = headerValueOnly(call.sip.headers.get('Content-Type'));
    if (type !== 'application/resource-lists+xml')
      return {
        reject: reply(415, 'Unsupported Media Type', { headers: [['Accept', 'application/resource-lists+xml']] }),
      };
    let uris: string[];
    try {
      const doc = parseXml(body, { maxBytes: 64 * 1024, maxDepth: 16 });
      uris = collectUris(doc.root);
    } catch (err) {
      if (err instanceof XmlError) return { reject: reply(400, 'Bad Resource List') };
      throw err;
    }
    const selectors: string[] = [];
    const root = this.deps.rootUri.replace(/\/+$/, '');
    for (const u of uris) {
      const rel = decodeURIComponent(u.startsWith(root) ? u.slice(root.length) : u).replace(/^\/+/, '');
      const m = /^([^/]+)\/(users|global)\/(.*)$/.exec(rel);
      if (!m) return { reject: reply(400, 'Bad XCAP URI In Resource List') };
      if (m[2] === 'users') {
        const [xui, ...rest] = m[3]!.split('/');
        if (this.deps.domain.canonical(xui ?? '') !== watcher)
          return { reject: reply(403, 'Forbidden', { warning: 'only your own documents' }) };
        selectors.push(`${m[1]}/users/${watcher}/${rest.join('/')}`);
      } else {
        selectors.push(rel);
      }
    }
    return { selectors };
  }

  async content(sub: Subscription): Promise<{ contentType: string; body: string; data: DiffState }> {
    const state = sub.data as DiffState;
    const reported = new Map(state.etags);
    const docs = (await this.deps.docs.list({ xui: sub.resource })).filter((d) =>
      matches(state.watch, documentSelector(d)),
    );
    const now = new Map<string, string>();
    const lines: string[] = [];
    for (const d of docs) {
      const sel = documentSelector(d);
      now.set(sel, d.etag);
      const before = reported.get(sel);
      if (state.sent && before === d.etag) continue;
      lines.push(
        `  <document sel="${escapeAttribute(sel)}"${before ? ` previous-etag="${escapeAttribute(before)}"` : ''} new-etag="${escapeAttribute(d.etag)}"/>`,
      );
    }
    for (const [sel, etag] of reported) {
      if (!now.has(sel))
        lines.push(`  <document sel="${escapeAttribute(sel)}" previous-etag="${escapeAttribute(etag)}"/>`);
    }
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<xcap-diff xmlns="${xmlNamespaces.xcapDiff}" xcap-root="${escapeAttribute(this.deps.rootUri)}">\n${lines.join('\n')}${lines.length ? '\n' : ''}</xcap-diff>\n`;
    return { contentType: XCAP_DIFF_CONTENT_TYPE, body, data: { ...state, etags: [...now], sent: true } };
  }
}

function matches(watch: string[], sel: string): boolean {
  return watch.some((w) => {
    if (!w.endsWith('/')) return w === sel;
    if (w.startsWith('*/')) return sel.slice(sel.indexOf('/')).startsWith(w.slice(1));
    return sel.startsWith(w);
  });
}

/** Every entry/@uri of a resource-lists document, at any depth. */
function collectUris(el: { name: string; attributes?: Record<string, string>; elements?: unknown[] }): string[] {
  const out: string[] = [];
  const local = el.name.includes(':') ? el.name.slice(el.name.indexOf(':') + 1) : el.name;
  if (local === 'entry' && el.attributes && Object.hasOwn(el.attributes, 'uri')) out.push(el.attributes.uri!);
  for (const c of el.elements ?? []) {
    if ((c as { type: string }).type === 'element') out.push(...collectUris(c as typeof el));
  }
  return out;
}
