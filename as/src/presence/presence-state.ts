import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { XdmDocuments } from '../xdm/document-store.js';
import type { ProvideSet } from '../xdm/usages/pres-rules.js';
import {
  applyTransformations,
  composePresence,
  politeBlockDocument,
  type PresenceDoc,
  type PresenceSource,
} from './pidf/index.js';
import { boundPresence } from './pidf/bound.js';
import { PidfTrees } from './pidf-trees.js';
import { Publications } from './publications.js';
import { SERVER_SOURCES } from './server-sources.js';
import { LoadingCache } from '../util/loading-cache.js';
import { ViewDocuments, type ViewDocument } from './view-documents.js';

/** Presentities whose composed state is kept; beyond, the least recently composed goes. */
const COMPOSED_KEPT = 50_000;

interface Entry {
  doc: PresenceDoc;
  /** Views by permission set (JSON of the ProvideSet; '' for the full view), serialised once. */
  views: Map<string, ViewDocument>;
}

/**
 * The presentity's composed presence, kept in memory per presentity and recomposed only
 * when one of its sources or its hard state (pidf-manipulation) changes. Watchers with the
 * same permissions share one rendered view, so a change to a presentity with 10,000
 * watchers composes once and renders once per distinct rule outcome.
 */
export class PresenceState {
  /**
   * Composed presentities. The 10,000 NOTIFYs of one change all ask at once, before the first
   * store read is back: they share one composition instead of each parsing every source.
   */
  private readonly cache = new LoadingCache<Entry>({ maxEntries: COMPOSED_KEPT });
  /** What the user's own clients (and the hard state) say, without the server's agent sources; null: nothing. */
  private readonly own = new LoadingCache<PresenceDoc | null>({ maxEntries: COMPOSED_KEPT });

  constructor(
    private readonly deps: {
      publications: Publications;
      docs: XdmDocuments;
      log: Logger;
      /** Largest view sent to a watcher (presence.maxComposedBytes); larger ones are reduced (pidf/bound.ts). */
      maxComposedBytes?: number;
      metrics?: Metrics;
      /** Parsed documents shared with the PUBLISH path (one made here when absent). */
      pidfTrees?: PidfTrees;
    },
  ) {
    this.trees = deps.pidfTrees ?? new PidfTrees();
    // the NOTIFY path's parses count with the PUBLISH path's (one metric: documents parsed)
    this.documents = new ViewDocuments(this.trees);
  }

  /**
   * The documents sent to watchers, by text, each parsed at most once (filters, triggers and
   * partial notification share its tree), with what watchers' decisions derived from them.
   */
  readonly documents: ViewDocuments;

  /** Publications and hard state parsed once: only a changed source is parsed again. */
  private readonly trees: PidfTrees;

  /** A source or the hard state of the presentity changed (as/src/reactions.ts says when). */
  forget(entity: string): void {
    this.cache.forget(entity);
    this.own.forget(entity);
  }

  /** Changes may have been missed (another instance's): compose everything again. */
  clear(): void {
    this.cache.clear();
    this.own.clear();
  }

  /**
   * The presence the user set, composed from their own clients' publications and the hard
   * state (external agents' too), leaving out the sources the server publishes for them
   * (registration state, IM activity): presence-aware delivery asks what the user says. Undefined when the user says
   * nothing at all.
   */
  async ownPresence(entity: string): Promise<PresenceDoc | undefined> {
    return (await this.own.get(entity, () => this.composeOwn(entity))) ?? undefined;
  }

  /** The PIDF a watcher with `provide` permissions sees (undefined: everything). */
  async view(entity: string, provide?: ProvideSet): Promise<string> {
    return (await this.viewDocument(entity, provide)).body;
  }

  /**
   * view() as the shared document of the change: every watcher with the same permissions
   * gets the same object (one serialisation, at most one parse, whatever it is filtered by).
   */
  async viewDocument(entity: string, provide?: ProvideSet): Promise<ViewDocument> {
    const entry = await this.cache.get(entity, () => this.compose(entity));
    const key = provide ? this.keyOf(provide) : '';
    let view = entry.views.get(key);
    if (view === undefined) {
      const visible = provide ? applyTransformations(entry.doc, provide) : entry.doc;
      // nothing left to show looks exactly like an offline presentity (and like polite-block)
      const bounded = boundPresence(
        visible.tuples.length ? visible : politeBlockDocument(entity),
        this.deps.maxComposedBytes ?? Infinity,
      );
      if (bounded.reduction) {
        // counted once per rendered view, not per NOTIFY: views are shared and kept
        this.deps.metrics?.count('ims_as_presence_document_reductions_total', { step: bounded.reduction });
        this.deps.log.warn(
          { entity, step: bounded.reduction, limit: this.deps.maxComposedBytes },
          'composed presence document over the limit: reduced',
        );
      }
      view = this.documents.of(bounded.body);
      entry.views.set(key, view);
    }
    return view;
  }

  /**
   * The views' key of a permission set. A watcher's permission set is the same object from
   * one change to the next (its dialog keeps it), so it is written out once, not once per
   * NOTIFY; permission sets are replaced, never changed in place.
   */
  private keyOf(provide: ProvideSet): string {
    let key = this.provideKeys.get(provide);
    if (key === undefined) {
      key = JSON.stringify(provide);
      this.provideKeys.set(provide, key);
    }
    return key;
  }

  private readonly provideKeys = new WeakMap<ProvideSet, string>();

  private async compose(entity: string): Promise<Entry> {
    const { sources, hard } = await this.sources(entity);
    return { doc: composePresence(entity, sources, hard), views: new Map() };
  }

  private async composeOwn(entity: string): Promise<PresenceDoc | null> {
    const { sources, hard } = await this.sources(entity);
    const own = sources.filter((s) => !(s.agent && SERVER_SOURCES.has(s.sourceId)));
    if (own.length === 0 && !hard) return null;
    return composePresence(entity, own, hard);
  }

  private async sources(entity: string): Promise<{ sources: PresenceSource[]; hard?: PresenceDoc }> {
    const pubs = await this.deps.publications.of(entity, 'presence');
    const sources: PresenceSource[] = [];
    for (const p of pubs) {
      try {
        sources.push({
          sourceId: p.sourceId,
          doc: this.trees.of(p.body),
          publishedAt: p.publishedAt,
          agent: Publications.isAgentSource(p),
        });
      } catch (err) {
        this.deps.log.warn(
          { entity, sourceId: p.sourceId, err: (err as Error).message },
          'stored publication unreadable; left out',
        );
      }
    }
    let hard: PresenceDoc | undefined;
    const manip = await this.deps.docs.get({ auid: 'pidf-manipulation', tree: 'users', xui: entity, path: 'index' });
    if (manip) {
      try {
        hard = this.trees.of(manip.body);
      } catch (err) {
        this.deps.log.warn({ entity, err: (err as Error).message }, 'pidf-manipulation document unreadable; left out');
      }
    }
    return hard ? { sources, hard } : { sources };
  }
}
