import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../as/src/log/logger.js';
import { PidfTrees } from '../../as/src/presence/pidf-trees.js';
import { PresenceState } from '../../as/src/presence/presence-state.js';
import type { Publications, Publication } from '../../as/src/presence/publications.js';
import type { XdmDocuments } from '../../as/src/xdm/document-store.js';

const ALICE = 'sip:alice@example.com';
const pidf = (note: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${ALICE}"><tuple id="t1"><status><basic>open</basic></status><note>${note}</note></tuple></presence>`;

/** Publications whose reads are counted and answered when the test says so. */
function slowSources(note: () => string) {
  let reads = 0;
  const waiting: Array<() => void> = [];
  const publications = {
    of: async () => {
      reads++;
      const body = note(); // what the store held when the read began
      await new Promise<void>((r) => waiting.push(r));
      return [{ _id: 'etag1', sourceId: 's1', body, publishedAt: new Date() } as unknown as Publication];
    },
  } as unknown as Publications;
  const docs = { get: async () => undefined } as unknown as XdmDocuments;
  return {
    state: new PresenceState({ publications, docs, log: silentLogger() }),
    reads: () => reads,
    answer: () => waiting.splice(0).forEach((r) => r()),
  };
}

test('watchers asking at once share one composition of the presentity', async () => {
  const src = slowSources(() => pidf('lunch'));
  const views = Array.from({ length: 100 }, () => src.state.view(ALICE));
  await new Promise((r) => setImmediate(r));
  src.answer();
  const bodies = await Promise.all(views);
  assert.equal(src.reads(), 1);
  for (const b of bodies) assert.match(b, /lunch/);
  await src.state.view(ALICE);
  assert.equal(src.reads(), 1, 'the composed state is kept');
});

test('a change during a composition is not hidden by it', async () => {
  let note = 'before';
  const src = slowSources(() => pidf(note));
  const first = src.state.view(ALICE);
  await new Promise((r) => setImmediate(r));
  src.state.forget(ALICE); // the source changed while the first composition was reading
  note = 'after';
  src.answer();
  await first;
  const later = src.state.view(ALICE);
  await new Promise((r) => setImmediate(r));
  src.answer();
  assert.match(await later, /after/);
  assert.equal(src.reads(), 2);
});

test('a publication is parsed once: the PUBLISH check and every later composition share its tree', async () => {
  const trees = new PidfTrees();
  const bodies = [pidf('phone').replace('t1', 'p1'), pidf('desk').replace('t1', 'd1')];
  let stored = 1;
  const publications = {
    of: async () =>
      bodies
        .slice(0, stored)
        .map(
          (body, i) => ({ _id: `e${i}`, sourceId: `s${i}`, body, publishedAt: new Date() }) as unknown as Publication,
        ),
  } as unknown as Publications;
  const docs = { get: async () => undefined } as unknown as XdmDocuments;
  const state = new PresenceState({ publications, docs, log: silentLogger(), pidfTrees: trees });

  trees.of(bodies[0]!); // what the PUBLISH path does to check the body
  assert.match(await state.view(ALICE), /phone/);
  assert.equal(trees.parses, 1, 'the composition used the checked tree');

  // a second device publishes: the presentity is composed again, the first source is not parsed again
  trees.of(bodies[1]!);
  stored = 2;
  state.forget(ALICE);
  const both = await state.view(ALICE);
  assert.match(both, /phone/);
  assert.match(both, /desk/);
  assert.equal(trees.parses, 2);
  assert.ok(trees.hits >= 3);
});

test('the same text gives the same tree; a refused document is not kept', () => {
  const trees = new PidfTrees();
  const a = pidf('a');
  const first = trees.of(a);
  assert.equal(trees.of(a), first, 'the same text gives the same tree');
  assert.throws(() => trees.of('<presence'), 'a malformed document is refused as parsePidf refuses it');
  assert.equal(trees.size, 1, 'nothing kept of a refused document');
});
