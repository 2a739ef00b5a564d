/**
 * MSRP paths as parsed, by their text: every chunk of a session repeats the same To-Path and
 * From-Path, and parsing them (URI syntax, then the comparison form) was a measurable share
 * of the switch's SEND path. Bounded: emptied when full (a busy switch refills it with the
 * paths of its live sessions at once). Entries are frozen: callers share them.
 */
import { type MsrpUri, formatMsrpUri, parseMsrpPath } from './uri.js';

export interface ParsedPath {
  readonly uris: readonly MsrpUri[];
  /** The path with its URIs separated by one space. */
  readonly text: string;
  /** The first URI, formatted (the hop the request is addressed to). */
  readonly first: string;
}

export class PathCache {
  private readonly entries = new Map<string, ParsedPath>();

  constructor(private readonly max = 4096) {}

  /** The parsed path; throws as parseMsrpPath does for a path that is not one. */
  get(text: string): ParsedPath {
    const known = this.entries.get(text);
    if (known) return known;
    const uris = parseMsrpPath(text);
    const parsed: ParsedPath = Object.freeze({
      uris: Object.freeze(uris.map((u) => Object.freeze(u))),
      text: text.trim().split(/\s+/).join(' '),
      first: formatMsrpUri(uris[0]!),
    });
    if (this.entries.size >= this.max) this.entries.clear();
    this.entries.set(text, parsed);
    return parsed;
  }
}
