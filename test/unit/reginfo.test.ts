import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REGINFO_NS, buildReginfo, parseReginfo, reginfoId } from '../../as/src/registrations/reginfo.js';

describe('reginfo (RFC 3680)', () => {
  it('writes a full-state document with one registration and its contacts', () => {
    const xml = buildReginfo({
      version: 3,
      state: 'full',
      aor: 'sip:alice@example.com',
      registrationState: 'active',
      contacts: [
        { uri: 'sip:alice@192.0.2.1:5060', state: 'active', event: 'refreshed', expires: 599.6 },
        { uri: 'sip:alice@192.0.2.2;transport=tcp', state: 'terminated', event: 'expired' },
      ],
    });
    assert.match(
      xml,
      new RegExp(`^<\\?xml version="1.0" encoding="UTF-8"\\?><reginfo xmlns="${REGINFO_NS}" version="3" state="full">`),
    );
    assert.match(xml, /<registration aor="sip:alice@example\.com" id="[0-9a-f]{12}" state="active">/);
    assert.match(
      xml,
      /<contact id="[0-9a-f]{12}" state="active" event="refreshed" expires="600"><uri>sip:alice@192\.0\.2\.1:5060<\/uri><\/contact>/,
    );
    assert.match(
      xml,
      /<contact id="[0-9a-f]{12}" state="terminated" event="expired"><uri>sip:alice@192\.0\.2\.2;transport=tcp<\/uri><\/contact>/,
    );
  });

  it('keeps ids stable per URI and escapes what XML needs escaped', () => {
    assert.equal(reginfoId('sip:a@b'), reginfoId('sip:a@b'));
    assert.notEqual(reginfoId('sip:a@b'), reginfoId('sip:a@c'));
    const xml = buildReginfo({
      version: 0,
      state: 'full',
      aor: 'sip:a&b@example.com',
      registrationState: 'init',
      contacts: [{ uri: 'sip:x@h;p=<1>', state: 'active', event: 'registered', expires: 0 }],
    });
    assert.match(xml, /aor="sip:a&amp;b@example\.com"/);
    assert.match(xml, /<uri>sip:x@h;p=&lt;1&gt;<\/uri>/);
  });

  it('reads back what it writes', () => {
    const info = {
      version: 7,
      state: 'full' as const,
      aor: 'sip:bob@example.com',
      registrationState: 'terminated' as const,
      contacts: [{ uri: 'sip:bob@198.51.100.7', state: 'terminated' as const, event: 'unregistered' as const }],
    };
    assert.deepEqual(parseReginfo(buildReginfo(info)), info);
    assert.throws(() => parseReginfo('<presence xmlns="urn:ietf:params:xml:ns:pidf"/>'), /not a reginfo document/);
    assert.throws(() =>
      parseReginfo('<!DOCTYPE x [<!ENTITY a "b">]><reginfo xmlns="urn:ietf:params:xml:ns:reginfo"/>'),
    );
  });

  it('shows every identity of the implicit registration set as a registration with the same contacts, ids unique', () => {
    const xml = buildReginfo({
      version: 0,
      state: 'full',
      aor: 'sip:alice@example.com',
      registrationState: 'active',
      contacts: [{ uri: 'sip:alice@192.0.2.1:5060', state: 'active', event: 'registered', expires: 600 }],
      implicit: ['sip:alice.smith@example.com', 'tel:+15551234'],
    });
    const regs = [...xml.matchAll(/<registration aor="([^"]+)"[^>]*>(.*?)<\/registration>/g)];
    assert.deepEqual(
      regs.map((r) => r[1]),
      ['sip:alice@example.com', 'sip:alice.smith@example.com', 'tel:+15551234'],
    );
    for (const r of regs) assert.match(r[2]!, /<uri>sip:alice@192\.0\.2\.1:5060<\/uri>/);
    const ids = [...xml.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]);
    assert.equal(new Set(ids).size, ids.length, 'every id once');
    const back = parseReginfo(xml);
    assert.equal(back.aor, 'sip:alice@example.com');
    assert.deepEqual(back.implicit, ['sip:alice.smith@example.com', 'tel:+15551234']);
  });
});
