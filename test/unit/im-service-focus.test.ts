/**
 * The `im` service with the conference focus behind it: an INVITE naming a conference goes to
 * the focus (and one to the conference factory to its ad-hoc creation), any other INVITE and every UPDATE (a re-offer inside a one-to-one session) to
 * sessions (a re-INVITE too: it carries a To tag), BYE of the focus's dialogs and REFER to
 * the focus, any other BYE (a deferred session's) to sessions. Both branches changed this
 * dispatch (conf-focus and the session re-offers); the merge must keep both.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImService } from '../../as/src/im/im-service.js';
import type { ConferenceFocus, ConferenceTarget } from '../../as/src/conference/focus.js';
import type { PagerService } from '../../as/src/im/pager.js';
import type { SessionService } from '../../as/src/im/sessions.js';
import type { IscCall } from '../../as/src/isc/dispatcher.js';
import { reply } from '../../as/src/isc/types.js';

const ROOM = 'sip:lobby@example.com';
const FACTORY = 'sip:conference-factory@example.com';

function setup() {
  const calls: string[] = [];
  const sessions = {
    handle: async (call: IscCall) => (
      calls.push(`sessions ${call.req.method} ${call.req.ruri}`),
      reply(299, 'sessions')
    ),
  } as unknown as SessionService;
  const pager = { handle: async () => reply(299, 'pager') } as unknown as PagerService;
  const focus = {
    isFactory: (ruri: string) => ruri === FACTORY,
    createAdhoc: async (call: IscCall) => (calls.push(`focus create ${call.req.ruri}`), reply(200, 'OK')),
    conferenceOf: async (ruri: string) =>
      ruri === ROOM
        ? ({ uri: ROOM, name: 'lobby', kind: 'room', owner: 'sip:alice@example.com' } as ConferenceTarget)
        : undefined,
    join: async (call: IscCall) => (calls.push(`focus join ${call.req.ruri}`), reply(200, 'OK')),
    holdsDialog: (callId: string) => callId === 'focus-dialog',
    bye: async () => (calls.push('focus BYE'), reply(200, 'OK')),
    refer: async () => (calls.push('focus REFER'), reply(202, 'Accepted')),
  } as unknown as ConferenceFocus;
  return { calls, im: new ImService(pager, sessions, undefined, focus) };
}

const call = (method: string, ruri: string, headers: Record<string, string> = {}) =>
  ({
    req: { method, ruri },
    sip: { headers: { get: (name: string) => headers[name] } },
  }) as unknown as IscCall;

describe('im service with the conference focus', () => {
  it('gives an INVITE to a conference or the factory to the focus and an INVITE to a user to sessions', async () => {
    const { calls, im } = setup();
    assert.equal((await im.handle(call('INVITE', ROOM))).action, 'reply');
    await im.handle(call('INVITE', FACTORY));
    await im.handle(call('INVITE', 'sip:bob@example.com'));
    assert.deepEqual(calls, [`focus join ${ROOM}`, `focus create ${FACTORY}`, 'sessions INVITE sip:bob@example.com']);
  });

  it('still gives an UPDATE (a re-offer inside a session) to sessions', async () => {
    const { calls, im } = setup();
    await im.handle(call('UPDATE', 'sip:bob@127.0.0.1:5062'));
    assert.deepEqual(calls, ['sessions UPDATE sip:bob@127.0.0.1:5062']);
  });

  it("gives BYE of the focus's dialogs and REFER to the focus, another BYE to sessions; without a focus REFER is 481", async () => {
    const { calls, im } = setup();
    await im.handle(call('BYE', 'sip:lobby@127.0.0.1:5060', { 'Call-ID': 'focus-dialog' }));
    await im.handle(call('REFER', 'sip:lobby@127.0.0.1:5060', { 'Call-ID': 'focus-dialog' }));
    await im.handle(call('BYE', 'sip:im-deferred@127.0.0.1:5060', { 'Call-ID': 'deferred-session' }));
    assert.deepEqual(calls, ['focus BYE', 'focus REFER', 'sessions BYE sip:im-deferred@127.0.0.1:5060']);
    const bare = new ImService({} as PagerService, {} as SessionService);
    assert.deepEqual(
      await bare.handle(call('REFER', 'sip:x@example.com')),
      reply(481, 'Call/Transaction Does Not Exist'),
    );
  });

  it('gives a re-INVITE (To tag) to sessions even when its Request-URI names a conference', async () => {
    const { calls, im } = setup();
    await im.handle(call('INVITE', ROOM, { To: '<sip:lobby@example.com>;tag=abc' }));
    assert.deepEqual(calls, [`sessions INVITE ${ROOM}`]);
  });
});
