import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { datafileLine } from '../../as/src/store/datafile-line.js';

// NeDB's own format is the reference: the embedded store's datafiles are read back by NeDB
const nedbModel = createRequire(import.meta.url)('@seald-io/nedb/lib/model.js') as {
  serialize(doc: unknown): string;
  deserialize(line: string): unknown;
};

const docs: Array<Record<string, unknown>> = [
  {
    _id: 'c1@h|ft|tt', event: 'presence', state: 'active', localCseq: 1000, remoteCseq: 1,
    expiresAt: new Date(1_795_329_748_135), createdAt: new Date(0), routeSet: ['<sip:127.0.0.1:5290;lr>'],
    accept: [], data: { filter: null, nested: { when: new Date(5), list: [1, 'two', null, { deep: true }] } },
  },
  { _id: 'q', text: 'quotes " and \\ backslash, \r\n newlines, \u0001 control, é ü 日本 😀', n: -0.5, big: 1e21, tiny: 5e-7 },
  { _id: 'u', gone: undefined, fn: () => 1, keep: 'yes', inArray: [undefined, () => 2, 3], notFinite: [Infinity, NaN] },
  { _id: 'k', 'odd key "x"': 1, 'with space': { 'ü': 2 }, empty: {}, emptyList: [] },
];

describe('datafile lines (embedded store)', () => {
  for (const doc of docs) {
    it(`writes ${String(doc._id)} exactly as NeDB would, and NeDB reads it back`, () => {
      const line = datafileLine(doc);
      assert.equal(line, nedbModel.serialize(doc));
      assert.deepEqual(nedbModel.deserialize(line), nedbModel.deserialize(nedbModel.serialize(doc)));
    });
  }

  it('keeps Dates as Dates through a reload', () => {
    const back = nedbModel.deserialize(datafileLine({ _id: 'd', at: new Date(1234) })) as { at: Date };
    assert.ok(back.at instanceof Date);
    assert.equal(back.at.getTime(), 1234);
  });
});
