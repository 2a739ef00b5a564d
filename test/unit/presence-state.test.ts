import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../as/src/log/logger.js';
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
