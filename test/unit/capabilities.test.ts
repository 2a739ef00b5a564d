import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  chooseTargets,
  contactParamsOf,
  parsePreferences,
  takesMethod,
} from '../../as/src/registrations/capabilities.js';

const ICSI_MMTEL = 'urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel';

describe('registered capabilities (RFC 3840) and caller preferences (RFC 3841)', () => {
  it('reads each contact of a REGISTER with its feature tags, quotes removed, expires left out', () => {
    const params = contactParamsOf(
      '<sip:bob@10.0.0.1:5070>;+g.oma.sip-im;methods="INVITE,MESSAGE";expires=600;+sip.instance="<urn:uuid:00000000-0000-0000-0000-000000000001>";reg-id=1, ' +
        `<sip:bob@10.0.0.2:5072;transport=tcp>;+g.3gpp.icsi-ref="${ICSI_MMTEL}";q=0.5`,
    );
    assert.deepEqual(params.get('sip:bob@10.0.0.1:5070'), {
      '+g.oma.sip-im': '',
      methods: 'INVITE,MESSAGE',
      '+sip.instance': '<urn:uuid:00000000-0000-0000-0000-000000000001>',
      'reg-id': '1',
    });
    assert.deepEqual(params.get('sip:bob@10.0.0.2:5072;transport=tcp'), {
      '+g.3gpp.icsi-ref': ICSI_MMTEL,
      q: '0.5',
    });
  });

  it("takes the REGISTER's Allow as the methods of contacts that name none", () => {
    const params = contactParamsOf('<sip:a@h1>, <sip:a@h2>;methods="MESSAGE"', 'INVITE, ACK, BYE');
    assert.equal(params.get('sip:a@h1')?.methods, 'INVITE,ACK,BYE');
    assert.equal(params.get('sip:a@h2')?.methods, 'MESSAGE');
  });

  it('skips a malformed contact and the wildcard, keeping the others', () => {
    const params = contactParamsOf('no uri here, *, <sip:a@h2>;+g.oma.sip-im');
    assert.deepEqual([...params.keys()], ['sip:a@h2']);
  });

  it('a contact takes the methods it declared, and every method when it declared none', () => {
    assert.equal(takesMethod({ methods: 'INVITE,ACK,BYE' }, 'MESSAGE'), false);
    assert.equal(takesMethod({ methods: 'invite,message' }, 'MESSAGE'), true);
    assert.equal(takesMethod({}, 'MESSAGE'), true);
    assert.equal(takesMethod(undefined, 'MESSAGE'), true);
  });

  const chat = { uri: 'sip:bob@h1', params: { '+g.oma.sip-im': '', methods: 'INVITE,ACK,BYE,MESSAGE' } };
  const voice = { uri: 'sip:bob@h2', params: { '+g.3gpp.icsi-ref': ICSI_MMTEL, methods: 'INVITE,ACK,BYE' } };
  const plain = { uri: 'sip:bob@h3' };

  it('forks a MESSAGE only to contacts that take MESSAGE', () => {
    assert.deepEqual(chooseTargets([chat, voice, plain], { method: 'MESSAGE' }), {
      targets: ['sip:bob@h1', 'sip:bob@h3'],
      narrowed: true,
    });
    assert.deepEqual(chooseTargets([chat, plain], { method: 'MESSAGE' }), {
      targets: ['sip:bob@h1', 'sip:bob@h3'],
      narrowed: false,
    });
  });

  it('an MSRP session prefers the contacts with the IM feature tag, and goes to all when none has it', () => {
    assert.deepEqual(chooseTargets([chat, voice, plain], { method: 'INVITE', preferIm: true }).targets, ['sip:bob@h1']);
    assert.deepEqual(chooseTargets([voice, plain], { method: 'INVITE', preferIm: true }), {
      targets: ['sip:bob@h2', 'sip:bob@h3'],
      narrowed: false,
    });
  });

  it('Accept-Contact with require and explicit keeps only contacts that declared a matching feature', () => {
    const accept = parsePreferences('*;+g.oma.sip-im;require;explicit');
    assert.deepEqual(accept, [{ features: { '+g.oma.sip-im': '' }, require: true, explicit: true }]);
    assert.deepEqual(chooseTargets([chat, voice, plain], { method: 'INVITE', accept }).targets, ['sip:bob@h1']);
  });

  it('Accept-Contact with require alone drops only contacts whose declared value does not match', () => {
    const accept = parsePreferences(`*;+g.3gpp.icsi-ref="${ICSI_MMTEL}";require`);
    const other = { uri: 'sip:bob@h4', params: { '+g.3gpp.icsi-ref': 'urn%3Aurn-7%3A3gpp-service.ims.icsi.other' } };
    assert.deepEqual(chooseTargets([chat, voice, plain, other], { method: 'INVITE', accept }).targets, [
      'sip:bob@h1',
      'sip:bob@h2',
      'sip:bob@h3',
    ]);
  });

  it('Accept-Contact without require removes nothing (it only orders a sequential search)', () => {
    const accept = parsePreferences('*;+g.oma.sip-im');
    assert.equal(chooseTargets([chat, voice, plain], { method: 'INVITE', accept }).narrowed, false);
  });

  it('Reject-Contact drops the contacts that declared the features it names, with a matching value', () => {
    const reject = parsePreferences(`*;+g.3gpp.icsi-ref="${ICSI_MMTEL}"`);
    assert.deepEqual(chooseTargets([chat, voice, plain], { method: 'INVITE', reject }).targets, [
      'sip:bob@h1',
      'sip:bob@h3',
    ]);
  });

  it('methods lists in a predicate match any of their values; a negated value excludes', () => {
    const wantsMessage = parsePreferences('*;methods="MESSAGE";require;explicit');
    assert.deepEqual(chooseTargets([chat, voice], { method: 'INVITE', accept: wantsMessage }).targets, ['sip:bob@h1']);
    const notMessage = parsePreferences('*;methods="!MESSAGE";require;explicit');
    assert.deepEqual(chooseTargets([chat, voice], { method: 'INVITE', accept: notMessage }).targets, ['sip:bob@h2']);
  });

  it('nobody left is an empty choice (the caller gets 480)', () => {
    const accept = parsePreferences('*;+g.oma.sip-im;require;explicit');
    assert.deepEqual(chooseTargets([voice, plain], { method: 'INVITE', accept }), { targets: [], narrowed: true });
  });

  it('ignores Accept-Contact values that are not "*" with parameters', () => {
    assert.deepEqual(parsePreferences('sip:x@y;+g.oma.sip-im'), []);
    assert.deepEqual(parsePreferences(undefined), []);
  });
});
