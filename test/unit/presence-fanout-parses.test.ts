import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Subscription } from '../../as/src/events/event-package.js';
import { silentLogger } from '../../as/src/log/logger.js';
import {
  SIMPLE_FILTER_CONTENT_TYPE,
  applyContentFilters,
  filtersFor,
  mergeFilterSets,
  parseFilterSet,
  triggersFire,
} from '../../as/src/presence/filters/simple-filter.js';
import { PIDF_DIFF_CONTENT_TYPE, pidfDiff, pidfFull } from '../../as/src/presence/pidf/pidf-diff.js';
import { PidfTrees } from '../../as/src/presence/pidf-trees.js';
import { PresencePackage, type PresenceSubData } from '../../as/src/presence/presence-package.js';
import { PresenceState } from '../../as/src/presence/presence-state.js';
import { ResourceListServer, type ListSubData } from '../../as/src/presence/rls/list-server.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import type { Publication, Publications } from '../../as/src/presence/publications.js';
import type { XdmDocuments } from '../../as/src/xdm/document-store.js';
import { emptyProvideSet, type ProvideSet } from '../../as/src/xdm/usages/pres-rules.js';
import { storedSubscription } from '../helpers/subscription-fixture.js';

// The presence package's NOTIFY path for many watchers of one change: the composed document
// and each view are parsed once per change, whatever the number of watchers (issue 13), and
// every watcher gets what the text-in, text-out functions give it.

const ALICE = 'sip:alice@example.com';
const PIDF_NS = 'urn:ietf:params:xml:ns:pidf';
const DM_NS = 'urn:ietf:params:xml:ns:pidf:data-model';
const RPID_NS = 'urn:ietf:params:xml:ns:pidf:rpid';

function pidf(round: number): string {
  const tuples = [0, 1, 2]
    .map(
      (i) =>
        `<tuple id="t${i}"><status><basic>${(round + i) % 2 ? 'closed' : 'open'}</basic></status>` +
        `<contact>sip:alice@192.0.2.${i + 1}</contact><note>round ${round}</note></tuple>`,
    )
    .join('');
  return (
    `<?xml version="1.0" encoding="UTF-8"?><presence xmlns="${PIDF_NS}" xmlns:dm="${DM_NS}" xmlns:rp="${RPID_NS}" entity="${ALICE}">` +
    `${tuples}<dm:person id="p1"><rp:activities><rp:${round % 2 ? 'busy' : 'meeting'}/></rp:activities>` +
    `<rp:mood><rp:happy/></rp:mood><dm:note>round ${round}</dm:note></dm:person></presence>`
  );
}

const FILTER = `<?xml version="1.0" encoding="UTF-8"?>
<filter-set xmlns="urn:ietf:params:xml:ns:simple-filter">
  <ns-bindings><ns-binding prefix="pidf" urn="${PIDF_NS}"/><ns-binding prefix="dm" urn="${DM_NS}"/></ns-bindings>
  <filter id="f1"><what><include type="xpath">/pidf:presence/pidf:tuple/pidf:status</include>
  <include type="xpath">/pidf:presence/dm:person</include></what>
  <trigger><changed>/pidf:presence/pidf:tuple/pidf:status/pidf:basic</changed></trigger></filter>
</filter-set>`;

/** The filters of FILTER for `resource`, compiled from its text. */
function filtersOf(resource: string) {
  return filtersFor(mergeFilterSets(undefined, parseFilterSet(FILTER, SIMPLE_FILTER_CONTENT_TYPE))!, resource);
}

/** Two permission sets that show different parts: two views. */
function provide(k: number): ProvideSet {
  const p = emptyProvideSet();
  p.services.all = true;
  p.persons.all = true;
  p.activities = true;
  p.note = k === 0;
  p.mood = k === 1;
  return p;
}

/** A presence package over a presentity whose one publication the test replaces. */
function setUp() {
  let body = pidf(0);
  const publications = {
    of: async () => [{ _id: 'e1', sourceId: 's1', body, publishedAt: new Date(0) } as unknown as Publication],
  } as unknown as Publications;
  const docs = { get: async () => null } as unknown as XdmDocuments;
  const trees = new PidfTrees();
  const state = new PresenceState({ publications, docs, log: silentLogger(), pidfTrees: trees });
  const unused = () => {
    throw new Error('not on the NOTIFY path');
  };
  const pkg = new PresencePackage({
    presentities: { exists: unused } as never,
    domain: { canonical: unused } as never,
    authorizer: { decide: unused } as never,
    state,
    expiry: { minExpires: 60, maxExpires: 7200, defaultExpires: 3600 },
  });
  const publish = (round: number) => {
    body = pidf(round);
    state.forget(ALICE);
  };
  return { pkg, state, trees, publish };
}

/** `n` watchers: every other one filtered, every third one partial, three permission outcomes. */
function watchers(n: number): Subscription[] {
  return Array.from({ length: n }, (_, i) => {
    const data: PresenceSubData = { handling: 'allow' };
    if (i % 3 !== 2) data.provide = provide(i % 3);
    if (i % 2 === 0) data.filters = [FILTER];
    const accept = ['application/pidf+xml', ...(i % 3 === 0 ? [PIDF_DIFF_CONTENT_TYPE] : [])];
    return storedSubscription(`w${i}|ft|tt`, 'presence', ALICE, { accept, data });
  });
}

/** One change notified to every watcher; their data updated as the notifier would. */
async function notifyAll(pkg: PresencePackage, subs: Subscription[], fullState: boolean) {
  const out = [];
  for (const sub of subs) {
    const r = await pkg.content(sub, { fullState, version: sub.notifyCount });
    assert.ok(r);
    out.push(r);
    if (!r.unchanged) {
      sub.data = r.data!;
      sub.notifyCount++;
    }
  }
  return out;
}

/** Parses and reuses of the documents of one change (the second), with `n` watchers. */
async function secondChange(n: number) {
  const { pkg, trees, publish } = setUp();
  const subs = watchers(n);
  await notifyAll(pkg, subs, true);
  publish(1);
  const before = { parses: trees.parses, hits: trees.hits };
  await notifyAll(pkg, subs, false);
  return { parses: trees.parses - before.parses, hits: trees.hits - before.hits };
}

describe('presence fan-out: documents parsed once per change, not once per watcher', () => {
  it('the parses of a change do not grow with the number of watchers; the watchers reuse them', async () => {
    const few = await secondChange(12);
    const many = await secondChange(240);
    assert.equal(many.parses, few.parses, `${few.parses} parses with 12 watchers, ${many.parses} with 240`);
    // the publication, the views the filters and partial watchers read, the documents they held
    assert.ok(many.parses <= 10, `${many.parses} parses for one change`);
    // every filtered or partial watcher after the first of its kind is served a shared result
    assert.ok(many.hits >= 200, `${many.hits} reuses with 240 watchers`);
  });

  it('each watcher gets what the document-at-a-time functions give it', async () => {
    const { pkg, state, publish } = setUp();
    const subs = watchers(24);
    // what each watcher was last sent, filtered (not the pidf-diff): a NOTIFY only when it changes
    const lastSent = new Map<string, string>();
    for (const sub of subs) {
      const first = await notifyAll(pkg, [sub], true);
      const data = sub.data as PresenceSubData;
      const view = await state.view(ALICE, data.provide);
      lastSent.set(sub._id, data.filters ? applyContentFilters(view, filtersOf(ALICE)) : view);
      assert.ok(first[0]);
    }
    for (const round of [1, 2, 3]) {
      const expectedShown: string[] = [];
      publish(round);
      const expected: Array<{ unchanged: boolean; body: string }> = [];
      for (const sub of subs) {
        const data = sub.data as PresenceSubData;
        const authorized = await state.view(ALICE, data.provide);
        const filters = data.filters ? filtersOf(ALICE) : [];
        const body = filters.length ? applyContentFilters(authorized, filters) : authorized;
        expectedShown.push(body);
        const version = sub.notifyCount + 1;
        const fires = filters.length === 0 || triggersFire(data.base, authorized, filters);
        const partial = sub.accept.includes(PIDF_DIFF_CONTENT_TYPE);
        expected.push({
          unchanged: body === lastSent.get(sub._id) || !fires,
          body: partial ? (pidfDiff(data.held!, body, version) ?? pidfFull(body, version)) : body,
        });
      }
      const got = await notifyAll(pkg, subs, false);
      got.forEach((r, i) => {
        if (!r.unchanged) lastSent.set(subs[i]!._id, expectedShown[i]!);
        assert.equal(Boolean(r.unchanged), expected[i]!.unchanged, `watcher ${i}, round ${round}: notified or not`);
        if (!r.unchanged) assert.equal(r.body, expected[i]!.body, `watcher ${i}, round ${round}: body`);
      });
      assert.ok(
        got.some((r) => !r.unchanged && r.contentType === PIDF_DIFF_CONTENT_TYPE && r.body.includes('pidf-diff')),
        'some watchers get a partial notification',
      );
    }
  });
});

describe('resource list fan-out: member documents parsed once per change, not once per list watcher', () => {
  const LIST = 'sip:friends@example.com';

  /** A list server whose members are all allowed, over the presence state of setUp. */
  function listServer(state: PresenceState) {
    return new ResourceListServer({
      docs: {} as never,
      domain: { domain: 'example.com', canonical: (uri: string) => uri } as never,
      presentities: { exists: async () => true } as never,
      authorizer: { decide: async () => ({ handling: 'allow' }) } as never,
      state,
      notifier: () => ({}) as never,
      limits: { maxNotifyBytes: 1_000_000, maxMembers: 100, maxDepth: 4 },
      log: silentLogger(),
      metrics: new Metrics(),
    });
  }

  async function secondListChange(n: number) {
    const { state, trees, publish } = setUp();
    const rls = listServer(state);
    const subs = Array.from({ length: n }, (_, i) => {
      const data: ListSubData = { kind: 'list', owner: ALICE, uri: LIST, members: [{ uri: ALICE }], sources: [] };
      return storedSubscription(`l${i}|ft|tt`, 'presence', LIST, {
        accept: ['multipart/related', 'application/rlmi+xml', PIDF_DIFF_CONTENT_TYPE],
        data,
      });
    });
    const notify = async (fullState: boolean) => {
      const bodies: string[] = [];
      for (const sub of subs) {
        const r = await rls.content(sub, { fullState, version: sub.notifyCount });
        sub.data = r.data!;
        sub.notifyCount++;
        bodies.push(r.body);
      }
      return bodies;
    };
    await notify(true);
    publish(1);
    const before = { parses: trees.parses, hits: trees.hits };
    const bodies = await notify(false);
    return { parses: trees.parses - before.parses, hits: trees.hits - before.hits, bodies };
  }

  it('the parses of a change do not grow with the number of list watchers; they get a partial document', async () => {
    const few = await secondListChange(5);
    const many = await secondListChange(60);
    assert.equal(many.parses, few.parses, `${few.parses} parses with 5 list watchers, ${many.parses} with 60`);
    assert.ok(many.parses <= 3, `${many.parses} parses for one change`);
    assert.ok(many.hits >= 59, `${many.hits} reuses with 60 list watchers`);
    for (const body of many.bodies) assert.match(body, /pidf-diff/, 'each list watcher is sent what changed');
  });
});
