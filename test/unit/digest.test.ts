import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DigestAuthenticator, digestResponse, parseDigestHeader } from '../../as/src/http/digest.js';
import { digestHa1 } from '../../as/src/users/user-directory.js';

const REALM = 'example.com';
const ha1 = digestHa1('alice', REALM, 'secret');

function creds(
  auth: DigestAuthenticator,
  opts: { nonce?: string; password?: string; cnonce?: string; uri?: string } = {},
) {
  const header = digestResponse({
    username: 'alice',
    password: opts.password ?? 'secret',
    realm: REALM,
    nonce: opts.nonce ?? auth.nonce(),
    method: 'GET',
    uri: opts.uri ?? '/xcap-root/x',
    ...(opts.cnonce ? { cnonce: opts.cnonce } : {}),
  });
  return parseDigestHeader(header)!;
}

describe('HTTP digest (RFC 7616, MD5, qop=auth)', () => {
  it('accepts the right password and refuses a wrong one', () => {
    const auth = new DigestAuthenticator(REALM, 'server-secret');
    assert.equal(auth.verify(creds(auth), 'GET', ha1), 'ok');
    assert.equal(auth.verify(creds(auth, { password: 'nope' }), 'GET', ha1), 'bad');
    assert.equal(auth.verify(creds(auth), 'GET', undefined), 'bad', 'unknown user');
  });

  it('refuses the same credentials twice (a replayed header) but takes a new cnonce', () => {
    const auth = new DigestAuthenticator(REALM, 'server-secret');
    const nonce = auth.nonce();
    const once = creds(auth, { nonce, cnonce: 'c1' });
    assert.equal(auth.verify(once, 'GET', ha1), 'ok');
    assert.equal(auth.verify(once, 'GET', ha1), 'bad');
    assert.equal(auth.verify(creds(auth, { nonce, cnonce: 'c2' }), 'GET', ha1), 'ok');
  });

  it('refuses a nonce another server secret made, and says stale for an old nonce', () => {
    const auth = new DigestAuthenticator(REALM, 'server-secret', 1000);
    const other = new DigestAuthenticator(REALM, 'other-secret');
    assert.equal(auth.verify(creds(other), 'GET', ha1), 'bad');
    const old = auth.nonce(Date.now() - 5000);
    assert.equal(auth.verify(creds(auth, { nonce: old }), 'GET', ha1), 'stale');
  });

  it('parses quoted values with commas and escapes', () => {
    const c = parseDigestHeader(
      'Digest username="a\\\\b", realm="x, y", nonce="n", uri="/p?q=1,2", response="r", qop=auth, nc=00000001, cnonce="c"',
    );
    assert.equal(c?.username, 'a\\b');
    assert.equal(c?.realm, 'x, y');
    assert.equal(c?.uri, '/p?q=1,2');
    assert.equal(parseDigestHeader('Basic abc'), undefined);
  });
});
