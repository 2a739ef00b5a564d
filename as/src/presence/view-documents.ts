import { createHash } from 'node:crypto';
import { XmlError, parseXml, type XmlElement } from '../xml/xml-tree.js';
import {
  applyContentFiltersTo,
  filterIndex,
  triggerVersion,
  triggersHold,
  type Filter,
  type PidfIndex,
  type TriggerVersion,
} from './filters/simple-filter.js';
import { PidfError } from './pidf/index.js';
import {
  MAX_VERSION,
  pidfDiffPlan,
  pidfFullOf,
  presenceTree,
  type PidfDiffPlan,
  type PresenceTree,
} from './pidf/pidf-diff.js';

/** Where parses and reuses are counted (the PidfTrees of the instance: ims_as_pidf_parses_total / _tree_reuses_total). */
export interface ParseCounts {
  parses: number;
  hits: number;
}

/** Documents kept by text; beyond, the least recently used goes (with what was derived from it). */
const KEPT_DOCUMENTS = 1_000;
/** And at most this much text behind them (their trees weigh a few times more). */
const KEPT_TEXT_BYTES = 8 * 1024 * 1024;

/**
 * One presence document as watchers are sent it (a view, a filtered view, the polite-block
 * document), parsed at most once however many watchers need its tree: content filters,
 * triggers and partial notification all read the one XML tree. What is derived from it for a
 * watcher's decision (the filtered document per filter set, whether triggers fire against a
 * previous document, the diff from a previous document) is kept on it, so watchers that see
 * the same view under the same filters share the work and the serialised body. Read-only.
 */
export class ViewDocument {
  private xml?: XmlElement;
  private index?: PidfIndex;
  private version?: TriggerVersion;
  private presence?: PresenceTree;
  private sha1?: string;
  private fullAt?: Versioned;
  private readonly filtered = new Map<string, ViewDocument>();
  private readonly fired = new WeakMap<ViewDocument, Map<string, boolean>>();
  private readonly diffs = new WeakMap<ViewDocument, Versioned | null>();

  constructor(
    readonly body: string,
    private readonly owner: ViewDocuments,
  ) {}

  /** Hash of the body: what a subscription remembers as sent. */
  get hash(): string {
    return (this.sha1 ??= createHash('sha1').update(this.body).digest('base64url'));
  }

  /** The document after `filters` (the watcher's content filters for this resource, named by `key`). Throws PidfError. */
  filteredBy(key: string, filters: readonly Filter[]): ViewDocument {
    let out = this.owner.reused(this.filtered.get(key));
    if (!out) {
      out = this.owner.of(applyContentFiltersTo(this.filterIndex(), this.body, filters).body);
      this.filtered.set(key, out);
    }
    return out;
  }

  /** Whether the change from `before` to this document fires one of the triggers of `filters` (named by `key`). */
  firesFrom(before: ViewDocument, key: string, filters: readonly Filter[]): boolean {
    let byKey = this.fired.get(before);
    if (!byKey) this.fired.set(before, (byKey = new Map()));
    let fires = this.owner.reused(byKey.get(key));
    if (fires === undefined) {
      fires = triggersHold(before.triggerVersion(), this.triggerVersion(), filters);
      byKey.set(key, fires);
    }
    return fires;
  }

  /** The pidf-diff from `held` to this document at `version`; undefined: send the full state. */
  diffFrom(held: ViewDocument, version: number): string | undefined {
    if (held.body === this.body) return undefined;
    let plan = this.owner.reused(this.diffs.get(held));
    if (plan === undefined) {
      const diff = pidfDiffPlan(held.presenceTree('previous'), this.presenceTree('current'));
      plan = diff ? versioned(diff) : null;
      this.diffs.set(held, plan);
    }
    return plan?.(version);
  }

  /** This document as a pidf-full (RFC 5262) at `version`. */
  full(version: number): string {
    if (!this.fullAt) this.fullAt = versioned((v) => pidfFullOf(this.presenceTree('pidf'), v));
    else this.owner.counts.hits++;
    return this.fullAt(version);
  }

  private tree(): XmlElement {
    if (this.xml) return this.xml;
    try {
      this.xml = parseXml(this.body).root;
    } catch (e) {
      if (e instanceof XmlError) throw new PidfError('Invalid PIDF: malformed XML', { detail: e.message, cause: e });
      throw e;
    }
    this.owner.counts.parses++;
    return this.xml;
  }

  private filterIndex(): PidfIndex {
    return (this.index ??= filterIndex(this.tree()));
  }

  private triggerVersion(): TriggerVersion {
    return (this.version ??= triggerVersion(this.filterIndex()));
  }

  private presenceTree(what: string): PresenceTree {
    return (this.presence ??= presenceTree(this.tree(), what));
  }
}

/** A document written for any version (pidf-full, pidf-diff): the watchers of a change differ only in it. */
type Versioned = (version: number) => string;

/**
 * `write` done once: its output at version 0 with the root's version attribute (its last
 * attribute, so the first ` version="0"` of the text) as the one place that changes.
 */
function versioned(write: PidfDiffPlan): Versioned {
  const zero = write(0);
  const at = zero.indexOf(' version="0"');
  if (at < 0) return write;
  const head = zero.slice(0, at);
  const tail = zero.slice(at + ' version="0"'.length);
  return (version) => {
    if (!Number.isSafeInteger(version) || version < 0 || version > MAX_VERSION) return write(version); // its RangeError
    return `${head} version="${version}"${tail}`;
  };
}

/**
 * The documents of the NOTIFY path by text: the view a change produced, and the documents
 * watchers hold from earlier NOTIFYs (read back from the store, they find the tree parsed
 * when they were sent). Least recently used go first.
 */
export class ViewDocuments {
  private readonly docs = new Map<string, ViewDocument>();
  private textBytes = 0;

  constructor(readonly counts: ParseCounts = { parses: 0, hits: 0 }) {}

  /** `derived` as found for a watcher: counted as a reuse when it was there. */
  reused<T>(derived: T | undefined): T | undefined {
    if (derived !== undefined) this.counts.hits++;
    return derived;
  }

  of(body: string): ViewDocument {
    const kept = this.docs.get(body);
    if (kept) {
      this.docs.delete(body);
      this.docs.set(body, kept);
      return kept;
    }
    const doc = new ViewDocument(body, this);
    // a document larger than the whole budget is used but not kept
    if (body.length > KEPT_TEXT_BYTES) return doc;
    this.docs.set(body, doc);
    this.textBytes += body.length;
    for (const [oldest] of this.docs) {
      if (this.docs.size <= KEPT_DOCUMENTS && this.textBytes <= KEPT_TEXT_BYTES) break;
      this.docs.delete(oldest);
      this.textBytes -= oldest.length;
    }
    return doc;
  }

  get size(): number {
    return this.docs.size;
  }
}
