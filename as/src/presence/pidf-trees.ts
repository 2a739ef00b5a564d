import { parsePidf, type PresenceDoc } from './pidf/index.js';

/** Parsed documents kept; beyond, the least recently used goes. */
const KEPT_DOCUMENTS = 50_000;
/** And at most this much document text behind them (their trees weigh a few times more). */
const KEPT_TEXT_BYTES = 32 * 1024 * 1024;

/**
 * Presence documents parsed once per instance: a PUBLISH body is parsed to check it and that
 * tree is the one composition uses; a presentity recomposed because one of its sources changed
 * does not parse the others again. Keyed by the document's text, so a body seen again (a
 * refresh, another instance's write read back from the store) finds its tree. Trees are
 * shared, so nothing may change them: composition and the watchers' views build new ones.
 */
export class PidfTrees {
  private readonly trees = new Map<string, PresenceDoc>();
  private textBytes = 0;
  hits = 0;
  parses = 0;

  /** The tree of `body`, parsed now if it is not known (throws PidfError as parsePidf does). */
  of(body: string): PresenceDoc {
    const kept = this.trees.get(body);
    if (kept) {
      this.hits++;
      // most recently used last
      this.trees.delete(body);
      this.trees.set(body, kept);
      return kept;
    }
    const doc = parsePidf(body);
    this.parses++;
    this.keep(body, doc);
    return doc;
  }

  get size(): number {
    return this.trees.size;
  }

  private keep(body: string, doc: PresenceDoc): void {
    // a document larger than the whole budget is parsed but not kept
    if (body.length > KEPT_TEXT_BYTES) return;
    this.trees.set(body, doc);
    this.textBytes += body.length;
    for (const [oldest] of this.trees) {
      if (this.trees.size <= KEPT_DOCUMENTS && this.textBytes <= KEPT_TEXT_BYTES) break;
      this.trees.delete(oldest);
      this.textBytes -= oldest.length;
    }
  }
}
