import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fields, table } from '../../as/src/cli/table.js';

describe('ims-ctl tables', () => {
  it('aligns columns to their widest cell, shows missing values as -, keeps one line per row', () => {
    const out = table(
      ['id', 'state'],
      [
        ['a1', 'active'],
        ['b22222', undefined],
        ['c', 'two\nlines'],
      ],
    );
    assert.equal(
      out,
      ['ID      STATE', '------  ---------', 'a1      active', 'b22222  -', 'c       two lines'].join('\n'),
    );
  });
  it('an empty table is its header and rule', () => {
    assert.equal(table(['contact'], []), 'CONTACT\n-------');
  });
  it('fields align labels and print dates as ISO text', () => {
    assert.equal(
      fields([
        ['user', 'sip:a@x'],
        ['stored messages', 2],
        ['at', new Date(0)],
      ]),
      'user:            sip:a@x\nstored messages: 2\nat:              1970-01-01T00:00:00.000Z',
    );
  });
});
