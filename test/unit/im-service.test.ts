/**
 * The `im` ISC service routes by method (MESSAGE to pager mode, INVITE to sessions, anything
 * else 501) and each outcome back to the mode whose context it carries.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImService } from '../../as/src/im/im-service.js';
import type { PagerService } from '../../as/src/im/pager.js';
import type { SessionService } from '../../as/src/im/sessions.js';
import type { IscCall } from '../../as/src/isc/dispatcher.js';
import { reply } from '../../as/src/isc/types.js';

function recorder() {
  const calls: string[] = [];
  const mode = (name: string) => ({
    handle: async (call: IscCall) => (calls.push(`${name} ${call.req.method}`), reply(299, name)),
    onOutcome: async (payload: string, code: number) => void calls.push(`${name} outcome ${code} ${payload}`),
  });
  return { calls, pager: mode('pager') as unknown as PagerService, sessions: mode('sessions') as unknown as SessionService };
}

const call = (method: string) => ({ req: { method } }) as unknown as IscCall;

describe('im service: pager mode and sessions behind one ISC service', () => {
  it('hands MESSAGE to pager mode, INVITE to sessions, and answers any other method 501', async () => {
    const { calls, pager, sessions } = recorder();
    const im = new ImService(pager, sessions);
    assert.equal((await im.handle(call('MESSAGE'))).action, 'reply');
    await im.handle(call('INVITE'));
    const other = await im.handle(call('SUBSCRIBE'));
    assert.deepEqual(other, reply(501, 'Not Implemented'));
    assert.deepEqual(calls, ['pager MESSAGE', 'sessions INVITE']);
  });

  it('routes a session context to sessions (without its prefix) and anything else to pager mode', async () => {
    const { calls, pager, sessions } = recorder();
    const im = new ImService(pager, sessions);
    await im.onOutcome('session:{"callId":"c1"}', 200, new Date());
    await im.onOutcome('{"callId":"m1"}', 202, new Date());
    assert.deepEqual(calls, ['sessions outcome 200 {"callId":"c1"}', 'pager outcome 202 {"callId":"m1"}']);
  });
});
