import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeDocument, encodeDocument } from '../../as/src/store/document-json.js';

const docs: Array<Record<string, unknown>> = [
  {
    _id: 'c1@h|ft|tt',
    event: 'presence',
    state: 'active',
    localCseq: 1000,
    remoteCseq: 1,
    expiresAt: new Date(1_795_329_748_135),
    createdAt: new Date(0),
    routeSet: ['<sip:127.0.0.1:5290;lr>'],
    accept: [],
    data: { filter: null, nested: { when: new Date(5), list: [1, 'two', null, { deep: true }] } },
  },
  {
    _id: 'q',
    text: 'quotes " and \\ backslash, \r\n newlines, \u0001 control, é ü 日本 😀',
    n: -0.5,
    big: 1e21,
    tiny: 5e-7,
  },
  { _id: 'k', 'odd key "x"': 1, 'with space': { ü: 2 }, empty: {}, emptyList: [] },
];

describe('document JSON (embedded store)', () => {
  for (const doc of docs) {
    it(`round-trips ${String(doc._id)} and is plain JSON`, () => {
      const text = encodeDocument(doc);
      assert.deepEqual(decodeDocument(text), doc);
      assert.doesNotThrow(() => JSON.parse(text));
    });
  }

  it('writes Dates as {"$$date":ms} (the NeDB datafile format) and reads them back as Dates', () => {
    const text = encodeDocument({ _id: 'd', at: new Date(1234), list: [new Date(5)] });
    assert.equal(text, '{"_id":"d","at":{"$$date":1234},"list":[{"$$date":5}]}');
    const back = decodeDocument<{ at: Date; list: Date[] }>(text);
    assert.ok(back.at instanceof Date);
    assert.equal(back.at.getTime(), 1234);
    assert.ok(back.list[0] instanceof Date);
  });

  it('leaves out undefined and functions as JSON.stringify does, non-finite numbers become null', () => {
    const doc = {
      _id: 'u',
      gone: undefined,
      fn: () => 1,
      keep: 'yes',
      inArray: [undefined, () => 2, 3],
      notFinite: [Infinity, NaN],
    };
    assert.equal(encodeDocument(doc), JSON.stringify(doc));
  });
});
