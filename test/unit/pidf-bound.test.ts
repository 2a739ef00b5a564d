import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { boundPresence } from '../../as/src/presence/pidf/bound.js';
import {
  makePerson,
  makeTuple,
  parsePidf,
  rpidElement,
  serializePidf,
  type PresenceDoc,
} from '../../as/src/presence/pidf/index.js';

const ENTITY = 'sip:alice@example.com';
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** `n` tuples (the first open, the others closed) each with a long note, a person with activities and a note. */
function bigDoc(n: number, noteChars = 2000): PresenceDoc {
  return {
    entity: ENTITY,
    tuples: Array.from({ length: n }, (_, i) =>
      makeTuple({
        id: `t${i}`,
        basic: i === 0 ? 'open' : 'closed',
        contact: { uri: `sip:alice@10.0.0.${i}` },
        notes: [{ text: 'é'.repeat(noteChars) }],
        elements: [rpidElement('class', 'work')],
      }),
    ),
    persons: [
      makePerson({
        id: 'p1',
        elements: [rpidElement('activities', [rpidElement('busy')])],
        notes: [{ text: 'n'.repeat(noteChars) }],
      }),
    ],
    devices: [],
    notes: [{ text: 'top '.repeat(500) }],
    extensions: [],
  };
}

describe('boundPresence: the composed document within presence.maxComposedBytes', () => {
  it('leaves a document that fits as it is', () => {
    const doc = bigDoc(2, 10);
    const r = boundPresence(doc, 16384);
    assert.equal(r.body, serializePidf(doc));
    assert.equal(r.reduction, undefined);
  });

  it('drops notes and extensions first, keeping every tuple with its basic status and contact', () => {
    const r = boundPresence(bigDoc(20), 4096);
    assert.equal(r.reduction, 'notes');
    assert.ok(bytes(r.body) <= 4096);
    const back = parsePidf(r.body);
    assert.equal(back.tuples.length, 20);
    assert.equal(back.tuples[0]!.basic, 'open');
    assert.equal(back.tuples[3]!.contact?.uri, 'sip:alice@10.0.0.3');
    assert.ok(back.tuples.every((t) => t.notes.length === 0 && t.elements.length === 0));
    assert.deepEqual(back.notes, []);
    assert.equal(back.persons[0]!.id, 'p1');
    assert.deepEqual(back.persons[0]!.elements, []);
  });

  it('then keeps the tuples that fit, in order', () => {
    const r = boundPresence(bigDoc(400), 8192);
    assert.equal(r.reduction, 'tuples');
    assert.ok(bytes(r.body) <= 8192, String(bytes(r.body)));
    const back = parsePidf(r.body);
    assert.ok(back.tuples.length > 10 && back.tuples.length < 400, String(back.tuples.length));
    assert.deepEqual(
      back.tuples.map((t) => t.id),
      Array.from({ length: back.tuples.length }, (_, i) => `t${i}`),
    );
    assert.deepEqual(back.persons, []);
  });

  it('at worst gives one tuple with the overall basic status', () => {
    const doc = bigDoc(3);
    doc.tuples[0] = makeTuple({ id: 'x'.repeat(300), basic: 'open' });
    const r = boundPresence(doc, 300);
    assert.equal(r.reduction, 'basic');
    const back = parsePidf(r.body);
    assert.equal(back.tuples.length, 1);
    assert.equal(back.tuples[0]!.basic, 'open', 'open when any tuple is open');
  });
});
