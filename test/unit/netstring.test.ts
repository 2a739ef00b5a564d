import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NetstringDecoder, NetstringError, encodeNetstring } from '../../as/src/isc/netstring.js';

describe('netstring framing (evapi)', () => {
  it('encodes the byte length, not the character count', () => {
    assert.equal(encodeNetstring('héllo').toString('utf8'), '6:héllo,');
    assert.equal(encodeNetstring('').toString(), '0:,');
  });

  it('decodes payloads split across and packed into chunks', () => {
    const d = new NetstringDecoder();
    const wire = Buffer.concat([encodeNetstring('{"type":"outcome"}'), encodeNetstring('ünï'), encodeNetstring('x')]);
    const got: string[] = [];
    for (let i = 0; i < wire.length; i += 3) got.push(...d.push(wire.subarray(i, i + 3)));
    assert.deepEqual(got, ['{"type":"outcome"}', 'ünï', 'x']);
    assert.deepEqual(d.push(wire), ['{"type":"outcome"}', 'ünï', 'x']);
  });

  it('refuses broken framing instead of resynchronising on garbage', () => {
    assert.throws(() => new NetstringDecoder().push(Buffer.from('3:abc;')), NetstringError);
    assert.throws(() => new NetstringDecoder().push(Buffer.from('x3:abc,')), /bad length prefix/);
    assert.throws(() => new NetstringDecoder(10).push(Buffer.from('11:')), /over the 10 limit/);
    assert.throws(() => new NetstringDecoder().push(Buffer.from('12345678901234')), /length prefix too long/);
  });
});
