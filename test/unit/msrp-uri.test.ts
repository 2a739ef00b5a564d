import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MsrpUriError,
  formatMsrpUri,
  msrpAuthorityKey,
  msrpUriEquals,
  parseMsrpPath,
  parseMsrpUri,
} from '../../as/src/msrp/uri.js';

describe('MSRP URIs (RFC 4975 section 6)', () => {
  it('reads the URIs of the RFC examples and writes them back unchanged', () => {
    for (const text of [
      'msrp://atlanta.example.com:7654/jshA7weztas;tcp',
      'msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp',
      'msrps://alice@intra.example.com;tcp',
      'msrp://bob.example.com:8888/9di4eae923wzd;tcp',
      'msrps://[2001:db8::1]:2855/a+b=c/d;tcp;foo=bar',
    ]) {
      assert.equal(formatMsrpUri(parseMsrpUri(text)), text);
    }
    assert.deepEqual(parseMsrpUri('msrp://atlanta.example.com:7654/jshA7weztas;tcp'), {
      scheme: 'msrp',
      host: 'atlanta.example.com',
      port: 7654,
      sessionId: 'jshA7weztas',
      transport: 'tcp',
      params: [],
    });
    const relay = parseMsrpUri('msrps://alice@intra.example.com;tcp');
    assert.deepEqual([relay.user, relay.sessionId, relay.port], ['alice', undefined, undefined]);
  });

  it('compares scheme, host and transport without case, the session id exactly, and ignores the user part', () => {
    const a = parseMsrpUri('msrp://Atlanta.Example.COM:7654/jshA7weztas;tcp');
    assert.ok(msrpUriEquals(a, parseMsrpUri('MSRP://atlanta.example.com:7654/jshA7weztas;TCP')));
    assert.ok(msrpUriEquals(a, parseMsrpUri('msrp://u@atlanta.example.com:7654/jshA7weztas;tcp;x=1')));
    assert.ok(!msrpUriEquals(a, parseMsrpUri('msrp://atlanta.example.com:7654/JSHA7WEZTAS;tcp')), 'session id case');
    assert.ok(!msrpUriEquals(a, parseMsrpUri('msrps://atlanta.example.com:7654/jshA7weztas;tcp')), 'scheme');
    assert.ok(!msrpUriEquals(a, parseMsrpUri('msrp://atlanta.example.com/jshA7weztas;tcp')), 'absent port');
  });

  it('keys connections by scheme, host and port (2855 when absent)', () => {
    assert.equal(msrpAuthorityKey(parseMsrpUri('msrp://Relay.example.com/x;tcp')), 'msrp://relay.example.com:2855');
  });

  it('refuses what is not an MSRP URI', () => {
    for (const bad of [
      'sip:alice@example.com',
      'msrp://host:7654/abc',
      'msrp://host:99999/abc;tcp',
      'http://host/abc;tcp',
      'msrp://ho st/abc;tcp',
      'msrp://host/ab c;tcp',
      'msrp://host/abc;',
    ]) {
      assert.throws(() => parseMsrpUri(bad), MsrpUriError, bad);
    }
  });

  it('reads a path: URIs separated by whitespace', () => {
    const path = parseMsrpPath('msrp://relay.example.com:2855/r1;tcp  msrp://alice.example.com:7394/2s93i9ek2a;tcp');
    assert.deepEqual(
      path.map((u) => u.sessionId),
      ['r1', '2s93i9ek2a'],
    );
    assert.throws(() => parseMsrpPath('  '), MsrpUriError);
  });
});
