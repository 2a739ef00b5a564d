import { escapeAttribute, escapeText, xmlNamespaces } from '../xml/xml-tree.js';

/** RFC 3857/3858: a watcher's subscription status and the event that led to it. */
export type WatcherStatus = 'pending' | 'active' | 'waiting' | 'terminated';
export type WatcherEvent =
  'subscribe' | 'approved' | 'deactivated' | 'probation' | 'rejected' | 'timeout' | 'giveup' | 'noresource';

export interface WatcherEntry {
  /** Stable id of the watcher's subscription (not the dialog id: it must not leak Call-IDs). */
  id: string;
  uri: string;
  status: WatcherStatus;
  event: WatcherEvent;
  /** Seconds the subscription has existed. */
  durationSubscribed?: number;
  expiration?: number;
}

export const WATCHERINFO_CONTENT_TYPE = 'application/watcherinfo+xml';

/**
 * An application/watcherinfo+xml document (RFC 3858) for one resource and package. `full`
 * lists every watcher; `partial` only those whose state changed since the previous
 * document, `version` counting documents sent on the subscription.
 */
export function watcherinfoDocument(opts: {
  resource: string;
  package: string;
  version: number;
  state: 'full' | 'partial';
  watchers: readonly WatcherEntry[];
}): string {
  const lines = opts.watchers.map((w) => {
    const attrs = [
      `id="${escapeAttribute(w.id)}"`,
      `status="${w.status}"`,
      `event="${w.event}"`,
      ...(w.durationSubscribed !== undefined ? [`duration-subscribed="${w.durationSubscribed}"`] : []),
      ...(w.expiration !== undefined ? [`expiration="${w.expiration}"`] : []),
    ];
    return `    <watcher ${attrs.join(' ')}>${escapeText(w.uri)}</watcher>`;
  });
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<watcherinfo xmlns="${xmlNamespaces.watcherinfo}" version="${opts.version}" state="${opts.state}">\n` +
    `  <watcher-list resource="${escapeAttribute(opts.resource)}" package="${escapeAttribute(opts.package)}">\n` +
    `${lines.join('\n')}${lines.length ? '\n' : ''}  </watcher-list>\n</watcherinfo>\n`
  );
}
