import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { associatedUriHeader } from '../../as/src/registrations/associated-uris.js';

describe('P-Associated-URI of a registration (RFC 7315)', () => {
  it("lists the user's name first, then aliases and the number", () => {
    assert.equal(
      associatedUriHeader('sip:alice@example.com', { tel: '+15551234', aliases: ['sip:alice.smith@example.com'] }),
      '<sip:alice@example.com>, <sip:alice.smith@example.com>, <tel:+15551234>',
    );
  });
  it('is the name alone for a user with no other identity', () => {
    assert.equal(associatedUriHeader('sip:bob@example.com', { aliases: [] }), '<sip:bob@example.com>');
  });
});
