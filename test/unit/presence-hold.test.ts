/**
 * Presence-aware delivery's predicate (as/src/im/presence-hold.ts): which presence documents
 * hold a user's messages, read from PIDF as clients publish it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { presenceHold, saysBusy, saysClosed } from '../../as/src/im/presence-hold.js';
import { composePresence, parsePidf } from '../../as/src/presence/pidf/index.js';

const BOB = 'sip:bob@example.com';
const pidf = (inner: string) =>
  parsePidf(
    `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" ` +
      `xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="${BOB}">${inner}</presence>`,
  );
const tuple = (id: string, basic: string, note = '') =>
  `<tuple id="${id}"><status><basic>${basic}</basic></status>${note ? `<note>${note}</note>` : ''}</tuple>`;
const person = (activities: string[]) =>
  `<dm:person id="p1"><rpid:activities>${activities.map((a) => `<rpid:${a}/>`).join('')}</rpid:activities></dm:person>`;

describe('presence-aware delivery: the presence predicate', () => {
  it('closed: every tuple with a status is closed; one open tuple opens', () => {
    assert.equal(saysClosed(pidf(tuple('a', 'closed'))), true);
    assert.equal(saysClosed(pidf(tuple('a', 'closed') + tuple('b', 'closed'))), true);
    assert.equal(saysClosed(pidf(tuple('a', 'closed') + tuple('b', 'open'))), false);
    assert.equal(saysClosed(pidf(tuple('a', 'open'))), false);
    assert.equal(saysClosed(pidf('<tuple id="x"><status/></tuple>')), false, 'a tuple without basic says nothing');
    assert.equal(saysClosed(pidf(person(['busy']))), false, 'no tuple: nothing is closed');
  });

  it('busy: RPID busy or on-the-phone, or a note saying so', () => {
    assert.equal(saysBusy(pidf(tuple('a', 'open') + person(['busy']))), true);
    assert.equal(saysBusy(pidf(tuple('a', 'open') + person(['on-the-phone']))), true);
    assert.equal(saysBusy(pidf(tuple('a', 'open') + person(['meal', 'away']))), false);
    assert.equal(saysBusy(pidf(tuple('a', 'open', ' Do  Not Disturb '))), true, 'tuple note, case and spaces aside');
    assert.equal(saysBusy(pidf(tuple('a', 'open', 'On the phone'))), true);
    assert.equal(saysBusy(pidf(tuple('a', 'open') + '<note>DND</note>')), true, 'presence-level note');
    assert.equal(
      saysBusy(pidf(tuple('a', 'open') + '<dm:person id="p"><dm:note>Busy</dm:note></dm:person>')),
      true,
      'person note',
    );
    assert.equal(saysBusy(pidf(tuple('a', 'open', 'not busy at all'))), false, 'only a note that says just that');
    assert.equal(saysBusy(pidf(tuple('a', 'open', 'Online'))), false);
  });

  it('holds only for the conditions the user chose, and never for a user who said nothing', () => {
    const closed = pidf(tuple('a', 'closed'));
    const busy = pidf(tuple('a', 'open') + person(['busy']));
    const open = pidf(tuple('a', 'open'));
    assert.equal(presenceHold(closed, ['closed', 'busy']), 'closed');
    assert.equal(presenceHold(busy, ['closed', 'busy']), 'busy');
    assert.equal(presenceHold(open, ['closed', 'busy']), undefined);
    assert.equal(presenceHold(busy, ['closed']), undefined, 'busy is not chosen');
    assert.equal(presenceHold(closed, ['busy']), undefined, 'closed is not chosen');
    assert.equal(presenceHold(closed, []), undefined, 'setting absent');
    assert.equal(presenceHold(undefined, ['closed', 'busy']), undefined, 'no publication at all');
  });

  it('reads the composed presence: the newest person wins, an open device opens', () => {
    const phone = {
      sourceId: 'phone',
      doc: pidf(tuple('t1', 'closed') + person(['busy'])),
      publishedAt: new Date(1000),
    };
    const desk = { sourceId: 'desk', doc: pidf(tuple('t1', 'open') + person(['away'])), publishedAt: new Date(2000) };
    const composed = composePresence(BOB, [phone, desk]);
    assert.equal(presenceHold(composed, ['closed', 'busy']), undefined, 'desk is open and its newer person says away');
    const closedOnly = composePresence(BOB, [phone, { ...desk, doc: pidf(tuple('t1', 'closed')) }]);
    assert.equal(presenceHold(closedOnly, ['closed']), 'closed');
    assert.equal(presenceHold(closedOnly, ['busy']), 'busy', "the phone's person is the only one");
  });
});
