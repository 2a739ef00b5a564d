import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseUri,
  formatUri,
  aor,
  isSameAor,
  percentDecode,
  escapeUser,
  SipParseError,
  UriParseError,
} from '../../as/src/sip/index.js';

function uriError(reason: string, status = 400) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof UriParseError, `expected UriParseError, got ${String(err)}`);
    assert.ok(err instanceof SipParseError);
    assert.equal(err.reason, reason);
    assert.equal(err.status, status);
    return true;
  };
}

describe('parseUri: sip/sips', () => {
  test('simple sip URI', () => {
    const u = parseUri('sip:alice@atlanta.com');
    assert.equal(u.scheme, 'sip');
    assert.equal(u.user, 'alice');
    assert.equal(u.userDecoded, 'alice');
    assert.equal(u.password, undefined);
    assert.equal(u.host, 'atlanta.com');
    assert.equal(u.port, undefined);
    assert.equal(u.params.size, 0);
    assert.deepEqual(u.headers, []);
  });

  test('all components: password, port, params (ordered, lowercased names, raw values), headers', () => {
    const u = parseUri(
      'SIPS:alice:secretword@Gateway.COM:5061;Transport=TLS;LR;maddr=239.255.255.1?subject=project%20x&priority=urgent',
    );
    assert.equal(u.scheme, 'sips');
    assert.equal(u.user, 'alice');
    assert.equal(u.password, 'secretword');
    assert.equal(u.host, 'gateway.com');
    assert.equal(u.port, 5061);
    assert.deepEqual(
      [...u.params],
      [
        ['transport', 'TLS'],
        ['lr', ''],
        ['maddr', '239.255.255.1'],
      ],
    );
    assert.deepEqual(u.headers, [
      ['subject', 'project%20x'],
      ['priority', 'urgent'],
    ]);
  });

  test('host only, with port, IPv4', () => {
    const u = parseUri('sip:192.0.2.4:5070');
    assert.equal(u.user, undefined);
    assert.equal(u.userDecoded, undefined);
    assert.equal(u.host, '192.0.2.4');
    assert.equal(u.port, 5070);
  });

  test('IPv6 reference keeps its brackets, is lowercased, port after it', () => {
    const u = parseUri('sip:[2001:DB8::10]:5070;transport=udp');
    assert.equal(u.host, '[2001:db8::10]');
    assert.equal(u.port, 5070);
    assert.equal(u.params.get('transport'), 'udp');
    const v = parseUri('sip:alice@[2001:db8::9:1]');
    assert.equal(v.user, 'alice');
    assert.equal(v.host, '[2001:db8::9:1]');
    assert.equal(v.port, undefined);
    const w = parseUri('sip:[::ffff:192.0.2.1]');
    assert.equal(w.host, '[::ffff:192.0.2.1]');
  });

  test('RFC 4475 esc01-style escaped user part: raw kept, decoded provided', () => {
    const u = parseUri('sip:sips%3Auser%40example.com@example.net');
    assert.equal(u.user, 'sips%3Auser%40example.com');
    assert.equal(u.userDecoded, 'sips:user@example.com');
    assert.equal(u.host, 'example.net');
  });

  test('escaped NUL and escaped ordinary characters in the user part', () => {
    const u = parseUri('sip:null-%00-null@example.com');
    assert.equal(u.userDecoded, 'null-\u0000-null');
    const v = parseUri('sip:%61lice@atlanta.com;transport=TCP');
    assert.equal(v.user, '%61lice');
    assert.equal(v.userDecoded, 'alice');
  });

  test('telephone-subscriber user with ; belongs to the user part, user=phone is a URI param', () => {
    const u = parseUri('sip:+358-555-1234567;isub=1411;postd=pp22@foo.com;user=phone');
    assert.equal(u.user, '+358-555-1234567;isub=1411;postd=pp22');
    assert.equal(u.host, 'foo.com');
    assert.deepEqual([...u.params], [['user', 'phone']]);
  });

  test('user-unreserved characters (&=+$,;?/) are allowed in the user part', () => {
    const u = parseUri('sip:a&b=c+d$e,f;g?h/i@example.com?x=y');
    assert.equal(u.user, 'a&b=c+d$e,f;g?h/i');
    assert.equal(u.host, 'example.com');
    assert.deepEqual(u.headers, [['x', 'y']]);
  });

  test('leading/trailing whitespace is ignored; first of duplicated params wins', () => {
    const u = parseUri('  sip:bob@biloxi.com;transport=tcp;transport=udp  ');
    assert.equal(u.host, 'biloxi.com');
    assert.equal(u.params.get('transport'), 'tcp');
    assert.equal(u.params.size, 1);
  });

  test('hostname with trailing dot and underscores', () => {
    assert.equal(parseUri('sip:alice@example.com.').host, 'example.com.');
    assert.equal(parseUri('sip:_sip._udp.example.com').host, '_sip._udp.example.com');
  });
});

describe('parseUri: tel', () => {
  test('global number with visual separators', () => {
    const u = parseUri('tel:+1-201-555-0123');
    assert.equal(u.scheme, 'tel');
    assert.equal(u.user, '+1-201-555-0123');
    assert.equal(u.host, '');
    assert.equal(u.port, undefined);
    assert.equal(u.params.size, 0);
  });

  test('local number with phone-context and other params', () => {
    const u = parseUri('TEL:7042;Phone-Context=Example.COM;ext=22');
    assert.equal(u.scheme, 'tel');
    assert.equal(u.user, '7042');
    assert.deepEqual(
      [...u.params],
      [
        ['phone-context', 'Example.COM'],
        ['ext', '22'],
      ],
    );
  });

  test('malformed tel numbers', () => {
    assert.throws(() => parseUri('tel:'), uriError('Malformed URI'));
    assert.throws(() => parseUri('tel:+'), uriError('Malformed URI'));
    assert.throws(() => parseUri('tel:+1 555 0000'), uriError('Malformed URI'));
    assert.throws(() => parseUri('tel:abc@host'), uriError('Malformed URI'));
  });
});

describe('parseUri: errors', () => {
  test('unknown schemes are rejected with 416', () => {
    assert.throws(
      () => parseUri('nobodyKnowsThisScheme:totallyopaquecontent'),
      uriError('Unsupported URI scheme', 416),
    );
    assert.throws(() => parseUri('http://example.com/'), uriError('Unsupported URI scheme', 416));
    assert.throws(() => parseUri('mailto:alice@example.com'), uriError('Unsupported URI scheme', 416));
  });

  test('garbage', () => {
    for (const bad of [
      '',
      'alice@example.com',
      ':alice@example.com',
      '1sip:alice@example.com',
      'sip:',
      'sip:@example.com',
      'sip:alice@',
      'sip:alice@example.com:',
      'sip:alice@example.com:70000',
      'sip:alice@example.com:123456',
      'sip:alice@example.com:50a',
      'sip:alice@ example.com',
      'sip:alice@exa mple.com',
      'sip:<alice@example.com>',
      'sip:alice@[2001:db8::1',
      'sip:alice@[zz::1]',
      'sip:2001:db8::1',
      'sip:alice@-bad..host!',
      'sip:alice@example.com;=x',
      'sip:alice@example.com?=x',
      'sip:bad%zzescape@example.com',
    ]) {
      assert.throws(() => parseUri(bad), uriError('Malformed URI'), bad);
    }
  });
});

describe('formatUri', () => {
  test('round trips (modulo lowercased scheme, host and param names)', () => {
    for (const s of [
      'sip:alice@atlanta.com',
      'sips:alice:secretword@gateway.com:5061;transport=TLS;lr;maddr=239.255.255.1?subject=project%20x&priority=urgent',
      'sip:[2001:db8::10]:5070;transport=udp',
      'sip:sips%3Auser%40example.com@example.net',
      'sip:+358-555-1234567;isub=1411;postd=pp22@foo.com;user=phone',
      'sip:192.0.2.4',
      'tel:+1-201-555-0123',
      'tel:7042;phone-context=example.com',
    ]) {
      assert.equal(formatUri(parseUri(s)), s);
    }
    assert.equal(formatUri(parseUri('SIP:Alice@AtLanta.COM;Transport=TCP')), 'sip:Alice@atlanta.com;transport=TCP');
  });

  test('formats from a minimal init object', () => {
    assert.equal(formatUri({ scheme: 'sip', host: 'example.com' }), 'sip:example.com');
    assert.equal(
      formatUri({
        scheme: 'sip',
        user: 'bob',
        host: 'example.com',
        port: 5080,
        params: new Map([
          ['lr', ''],
          ['transport', 'tcp'],
        ]),
      }),
      'sip:bob@example.com:5080;lr;transport=tcp',
    );
    assert.equal(formatUri({ scheme: 'tel', user: '+15550100', params: [['ext', '7']] }), 'tel:+15550100;ext=7');
  });
});

describe('aor / isSameAor', () => {
  test('sip AoR drops port, params, headers and password, lowercases host, maps sips to sip', () => {
    assert.equal(aor('sips:alice:pw@Example.COM:5061;transport=tls?subject=x'), 'sip:alice@example.com');
    assert.equal(aor(parseUri('sip:bob@biloxi.com;user=phone')), 'sip:bob@biloxi.com');
    assert.equal(aor('sip:example.com:5060'), 'sip:example.com');
    assert.equal(aor('sip:[2001:DB8::1]:5060'), 'sip:[2001:db8::1]');
  });

  test('user part is canonically escaped: equivalent escapings give one AoR', () => {
    assert.equal(aor('sip:%61lice@atlanta.com'), 'sip:alice@atlanta.com');
    assert.equal(aor('sip:sips%3auser%40example.com@example.net'), 'sip:sips%3Auser%40example.com@example.net');
    // the user part stays case-sensitive (RFC 3261 19.1.4)
    assert.notEqual(aor('sip:Alice@atlanta.com'), aor('sip:alice@atlanta.com'));
  });

  test('accepts a name-addr string', () => {
    assert.equal(aor('"Alice" <sips:alice@Atlanta.com:5061>;tag=1928301774'), 'sip:alice@atlanta.com');
  });

  test('tel AoR: visual separators removed; local numbers keep phone-context', () => {
    assert.equal(aor('tel:+1-201-555-0123;foo=bar'), 'tel:+12015550123');
    assert.equal(aor('tel:(0)7042;phone-context=Example.com'), 'tel:07042;phone-context=example.com');
    assert.equal(aor('tel:*31#'), 'tel:*31#');
  });

  test('isSameAor', () => {
    assert.equal(isSameAor('sip:alice@atlanta.com', 'sips:%61lice@ATLANTA.com:5061;transport=tls'), true);
    assert.equal(isSameAor('sip:alice@atlanta.com', '<sip:alice@atlanta.com>'), true);
    assert.equal(isSameAor('sip:alice@atlanta.com', 'sip:bob@atlanta.com'), false);
    assert.equal(isSameAor('sip:alice@atlanta.com', 'sip:alice@biloxi.com'), false);
    assert.equal(isSameAor('tel:+1-555-0100', 'tel:+15550100'), true);
    assert.equal(isSameAor('sip:alice@atlanta.com', 'garbage'), false);
    assert.equal(isSameAor('http://x', 'http://x'), false);
  });

  test('aor throws on garbage', () => {
    assert.throws(() => aor('not a uri'), UriParseError);
    assert.throws(() => aor('<sip:alice@atlanta.com'), UriParseError);
  });
});

describe('percentDecode / escapeUser', () => {
  test('percentDecode', () => {
    assert.equal(percentDecode('plain'), 'plain');
    assert.equal(percentDecode('a%20b%2Cc'), 'a b,c');
    assert.equal(percentDecode('j%C3%BCrgen'), 'jürgen');
    // escaped bytes that are not valid UTF-8 become U+FFFD instead of throwing
    assert.equal(percentDecode('x%FFy'), 'x\uFFFDy');
    assert.throws(() => percentDecode('bad%2'), uriError('Malformed URI'));
    assert.throws(() => percentDecode('bad%G0'), uriError('Malformed URI'));
  });

  test('escapeUser escapes only what the user part cannot hold', () => {
    assert.equal(escapeUser('alice'), 'alice');
    assert.equal(escapeUser('+1;phone-context=x'), '+1;phone-context=x');
    assert.equal(escapeUser('a b@c:d%'), 'a%20b%40c%3Ad%25');
    assert.equal(escapeUser('jürgen'), 'j%C3%BCrgen');
    assert.equal(percentDecode(escapeUser('weird <"user"> @:%')), 'weird <"user"> @:%');
  });
});
