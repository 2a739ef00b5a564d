import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseNameAddr,
  formatNameAddr,
  parseParams,
  formatParams,
  parseValueParams,
  quote,
  unquote,
  NameAddr,
  SipParseError,
} from '../../as/src/sip/index.js';

function parseError(reason: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof SipParseError, `expected SipParseError, got ${String(err)}`);
    assert.equal(err.reason, reason);
    assert.equal(err.status, 400);
    return true;
  };
}

describe('parseNameAddr', () => {
  test('quoted display name, URI in brackets, header params', () => {
    const na = parseNameAddr('"Alice Smith" <sip:alice@atlanta.com>;tag=1928301774;expires=3');
    assert.ok(na instanceof NameAddr);
    assert.equal(na.displayName, 'Alice Smith');
    assert.equal(na.uri, 'sip:alice@atlanta.com');
    assert.deepEqual(
      [...na.params],
      [
        ['tag', '1928301774'],
        ['expires', '3'],
      ],
    );
    assert.equal(na.tag, '1928301774');
  });

  test('quoted display name with escaped quotes, backslashes, commas and angle brackets', () => {
    const na = parseNameAddr('"\\"Al\\" <boss>, \\\\ Smith" <sip:alice@atlanta.com>');
    assert.equal(na.displayName, '"Al" <boss>, \\ Smith');
    assert.equal(na.uri, 'sip:alice@atlanta.com');
    assert.equal(na.params.size, 0);
    assert.equal(na.tag, undefined);
  });

  test('token display name (kept as written, trimmed)', () => {
    const na = parseNameAddr('Bob  Smith <sip:bob@biloxi.com>;tag=a6c85cf');
    assert.equal(na.displayName, 'Bob  Smith');
    assert.equal(na.uri, 'sip:bob@biloxi.com');
    assert.equal(na.tag, 'a6c85cf');
  });

  test('UTF-8 display names, quoted and unquoted', () => {
    assert.equal(parseNameAddr('"Jürgen Müller" <sip:jm@example.de>').displayName, 'Jürgen Müller');
    assert.equal(parseNameAddr('Jürgen <sip:jm@example.de>').displayName, 'Jürgen');
  });

  test('angle brackets without display name; empty quoted display name', () => {
    const na = parseNameAddr('<sip:carol@chicago.com>');
    assert.equal(na.displayName, undefined);
    assert.equal(na.uri, 'sip:carol@chicago.com');
    assert.equal(parseNameAddr('"" <sip:carol@chicago.com>').displayName, '');
  });

  test('URI params stay inside the brackets, header params outside', () => {
    const na = parseNameAddr('<sip:alice@pc33.atlanta.com;transport=tcp;lr>;expires=3600;q=0.7');
    assert.equal(na.uri, 'sip:alice@pc33.atlanta.com;transport=tcp;lr');
    assert.deepEqual(
      [...na.params],
      [
        ['expires', '3600'],
        ['q', '0.7'],
      ],
    );
  });

  test('bare addr-spec: parameters after the URI belong to the header (RFC 3261 20.10)', () => {
    const na = parseNameAddr('sip:alice@atlanta.com;tag=88sja8x;transport=udp');
    assert.equal(na.displayName, undefined);
    assert.equal(na.uri, 'sip:alice@atlanta.com');
    assert.equal(na.tag, '88sja8x');
    assert.equal(na.params.get('transport'), 'udp');
    assert.equal(parseNameAddr('  sip:bob@biloxi.com  ').uri, 'sip:bob@biloxi.com');
  });

  test('Contact with quoted feature params holding < > and ;', () => {
    const na = parseNameAddr(
      '<sip:alice@192.0.2.1:5060;ob>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel";+g.oma.sip-im;reg-id=1',
    );
    assert.equal(na.uri, 'sip:alice@192.0.2.1:5060;ob');
    assert.equal(na.params.get('+sip.instance'), '"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"');
    assert.equal(unquote(na.params.get('+sip.instance') ?? ''), '<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>');
    assert.equal(na.params.get('+g.3gpp.icsi-ref'), '"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel"');
    assert.equal(na.params.get('+g.oma.sip-im'), '');
    assert.equal(na.params.get('reg-id'), '1');
    const bare = parseNameAddr('sip:alice@192.0.2.1;+sip.instance="<urn:uuid:1;2>";expires=60');
    assert.equal(bare.uri, 'sip:alice@192.0.2.1');
    assert.equal(bare.params.get('+sip.instance'), '"<urn:uuid:1;2>"');
    assert.equal(bare.params.get('expires'), '60');
  });

  test('whitespace around brackets, ; and = is tolerated; param names lowercased', () => {
    const na = parseNameAddr('  "A"   <sip:a@b.c>  ;  TAG = 5 ; Expires=10 ');
    assert.equal(na.displayName, 'A');
    assert.equal(na.uri, 'sip:a@b.c');
    assert.deepEqual(
      [...na.params],
      [
        ['tag', '5'],
        ['expires', '10'],
      ],
    );
  });

  test('tel, sips and unknown-scheme URIs are accepted (only generic URI syntax is checked)', () => {
    assert.equal(parseNameAddr('<tel:+1-555-0100>').uri, 'tel:+1-555-0100');
    assert.equal(parseNameAddr('<sips:bob@biloxi.com>').uri, 'sips:bob@biloxi.com');
    assert.equal(parseNameAddr('<urn:service:sos>').uri, 'urn:service:sos');
    assert.equal(parseNameAddr('<http://www.example.com/alice/photo.jpg> ;purpose=icon').params.get('purpose'), 'icon');
  });

  test('Contact wildcard', () => {
    const na = parseNameAddr('*');
    assert.equal(na.uri, '*');
    assert.equal(na.displayName, undefined);
  });

  test('aor getter', () => {
    assert.equal(parseNameAddr('"A" <sips:Alice@Atlanta.COM:5061;transport=tls>;tag=9').aor, 'sip:Alice@atlanta.com');
  });

  test('garbage throws SipParseError', () => {
    for (const bad of [
      '',
      '   ',
      '"unterminated <sip:alice@atlanta.com>',
      '<sip:alice@atlanta.com',
      '"Alice" sip:alice@atlanta.com',
      'Alice sip:alice@atlanta.com',
      '<sip:alice@ atlanta.com>',
      '< sip:alice@atlanta.com>',
      'sip:alice@ atlanta.com',
      '<alice@atlanta.com>',
      '<>',
      'Bob "Smith" <sip:bob@x.com>',
      '"A" * ',
      '"A" <*>',
    ]) {
      assert.throws(() => parseNameAddr(bad), parseError('Malformed name-addr'), JSON.stringify(bad));
    }
  });

  test('garbage after the URI throws SipParseError', () => {
    for (const bad of [
      '<sip:alice@atlanta.com> junk',
      '<sip:alice@atlanta.com>;=5',
      '<sip:alice@atlanta.com>;tag="unterminated',
      '<sip:alice@atlanta.com>;tag=1 2',
      '<sip:a@b>, <sip:c@d>',
    ]) {
      assert.throws(() => parseNameAddr(bad), parseError('Malformed header parameters'), JSON.stringify(bad));
    }
  });
});

describe('parseParams / parseValueParams', () => {
  test('ordered map, lowercased names, raw values, value-less params', () => {
    const p = parseParams(';a=b;C;D="x;y \\" z";e=[2001:db8::1];f=');
    assert.deepEqual(
      [...p],
      [
        ['a', 'b'],
        ['c', ''],
        ['d', '"x;y \\" z"'],
        ['e', '[2001:db8::1]'],
        ['f', ''],
      ],
    );
    assert.equal(unquote(p.get('d') ?? ''), 'x;y " z');
  });

  test('leading ; is optional; empty input gives an empty map; tolerated ;; and trailing ;', () => {
    assert.deepEqual(
      [...parseParams('received=192.0.2.1;rport=5060')],
      [
        ['received', '192.0.2.1'],
        ['rport', '5060'],
      ],
    );
    assert.equal(parseParams('').size, 0);
    assert.deepEqual(
      [...parseParams(';a;;b;')],
      [
        ['a', ''],
        ['b', ''],
      ],
    );
  });

  test('first occurrence of a duplicated name wins', () => {
    assert.equal(parseParams(';tag=1;tag=2').get('tag'), '1');
  });

  test('malformed', () => {
    assert.throws(() => parseParams(';a=b c'), parseError('Malformed header parameters'));
    assert.throws(() => parseParams(';a="b'), parseError('Malformed header parameters'));
    assert.throws(() => parseParams(';<x>'), parseError('Malformed header parameters'));
  });

  test('parseValueParams splits Event / Subscription-State / Content-Type values', () => {
    const ev = parseValueParams('presence;id=7');
    assert.equal(ev.value, 'presence');
    assert.deepEqual([...ev.params], [['id', '7']]);
    const ss = parseValueParams('terminated ; reason=timeout');
    assert.equal(ss.value, 'terminated');
    assert.equal(ss.params.get('reason'), 'timeout');
    const ct = parseValueParams('multipart/related;type="application/rlmi+xml";boundary="a;b"');
    assert.equal(ct.value, 'multipart/related');
    assert.equal(unquote(ct.params.get('boundary') ?? ''), 'a;b');
    const plain = parseValueParams(' message-summary ');
    assert.equal(plain.value, 'message-summary');
    assert.equal(plain.params.size, 0);
  });
});

describe('formatNameAddr / formatParams / quote', () => {
  test('formats with quoted display name and brackets', () => {
    assert.equal(
      formatNameAddr({ displayName: 'Alice', uri: 'sip:alice@atlanta.com', params: { tag: '1928301774' } }),
      '"Alice" <sip:alice@atlanta.com>;tag=1928301774',
    );
    assert.equal(
      formatNameAddr({ uri: 'sip:alice@atlanta.com;transport=tcp' }),
      '<sip:alice@atlanta.com;transport=tcp>',
    );
    assert.equal(formatNameAddr({ displayName: '', uri: 'sip:a@b' }), '<sip:a@b>');
    assert.equal(formatNameAddr({ uri: '*' }), '*');
  });

  test('display names are escaped; CR/LF cannot leak into the header', () => {
    const s = formatNameAddr({ displayName: 'Evil "x" \\ \r\nVia: injected', uri: 'sip:e@x' });
    assert.equal(s, '"Evil \\"x\\" \\\\   Via: injected" <sip:e@x>');
    assert.equal(parseNameAddr(s).displayName, 'Evil "x" \\   Via: injected');
  });

  test('invalid URIs are refused', () => {
    assert.throws(() => formatNameAddr({ uri: 'sip:a@b>;x' }), TypeError);
    assert.throws(() => formatNameAddr({ uri: 'sip:a@b\r\nX: y' }), TypeError);
  });

  test('formatParams: Map / pairs / record; quotes values that need it', () => {
    assert.equal(
      formatParams(
        new Map([
          ['lr', ''],
          ['tag', 'x'],
        ]),
      ),
      ';lr;tag=x',
    );
    assert.equal(formatParams([['expires', '60']]), ';expires=60');
    assert.equal(formatParams({ '+sip.instance': '"<urn:uuid:1>"' }), ';+sip.instance="<urn:uuid:1>"');
    assert.equal(formatParams({ text: 'two words; and "quotes"' }), ';text="two words; and \\"quotes\\""');
    assert.equal(formatParams({ received: '[2001:db8::1]' }), ';received=[2001:db8::1]');
    assert.equal(formatParams(undefined), '');
    assert.throws(() => formatParams({ 'bad name': 'x' }), TypeError);
  });

  test('round trip parse -> format -> parse', () => {
    for (const s of [
      '"Alice Smith" <sip:alice@atlanta.com>;tag=1928301774',
      '<sip:alice@192.0.2.1:5060;ob>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1;+g.oma.sip-im',
      '"\\"quoted\\" name" <tel:+15550100>;tag=x',
    ]) {
      const a = parseNameAddr(s);
      assert.equal(formatNameAddr(a), s);
      assert.equal(a.toString(), s);
      const b = parseNameAddr(formatNameAddr(a));
      assert.deepEqual([b.displayName, b.uri, [...b.params]], [a.displayName, a.uri, [...a.params]]);
    }
    // a bare addr-spec gains brackets, its header params stay header params
    assert.equal(formatNameAddr(parseNameAddr('sip:bob@biloxi.com;tag=a6c85cf')), '<sip:bob@biloxi.com>;tag=a6c85cf');
  });

  test('quote / unquote', () => {
    assert.equal(quote('a "b" \\c'), '"a \\"b\\" \\\\c"');
    assert.equal(unquote(quote('a "b" \\c')), 'a "b" \\c');
    assert.equal(unquote('token'), 'token');
    assert.equal(unquote('"'), '"');
    assert.equal(unquote('""'), '');
  });
});
