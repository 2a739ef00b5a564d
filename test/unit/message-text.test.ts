import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { messageText } from '../../as/src/isc/message-text.js';
import type { IscRequest } from '../../as/src/isc/types.js';

const base = {
  v: 1,
  service: 'im',
  method: 'MESSAGE',
  ruri: 'sip:bob@example.com',
  srcIp: '127.0.0.1',
  srcPort: 5062,
  proto: 'udp',
  toTag: 't',
  ts: '1.0',
} as const;
const head = (ctype: string | null) =>
  [
    'MESSAGE sip:bob@example.com SIP/2.0',
    'Call-ID: x',
    ...(ctype ? [`Content-Type: ${ctype}`] : []),
    'Content-Length: 5',
    '',
    '',
  ].join('\r\n');
const as64 = (parts: Array<string | Buffer>) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))).toString('base64');

describe('ISC message text (UTF-8 and NUL at the edge)', () => {
  it('passes a valid message through unchanged', () => {
    const msg = head('text/plain') + 'héllo';
    assert.deepEqual(messageText({ ...base, msg } as IscRequest), { text: msg });
  });

  it('answers 400 for headers that are not UTF-8', () => {
    const msg64 = as64([
      'MESSAGE sip:bob@example.com SIP/2.0\r\nSubject: caf',
      Buffer.from([0xe9]),
      '\r\nContent-Length: 0\r\n\r\n',
    ]);
    const r = messageText({ ...base, msg64 } as IscRequest);
    assert.equal(r.refusal?.code, 400);
    assert.equal(r.refusal?.reason, 'Invalid UTF-8 In Headers');
  });

  it('answers 400 for a text, XML or CPIM body that is not UTF-8, and when Content-Type is absent', () => {
    for (const ctype of ['text/plain;charset=utf-8', 'message/cpim', 'application/pidf+xml', 'application/xml', null]) {
      const r = messageText({ ...base, msg64: as64([head(ctype), Buffer.from([0x61, 0xff, 0x62])]) } as IscRequest);
      assert.equal(r.refusal?.code, 400, String(ctype));
      assert.equal(r.refusal?.reason, 'Invalid UTF-8 In Body');
    }
  });

  it('answers 415 with Accept for a binary body (the AS would corrupt it)', () => {
    const r = messageText({
      ...base,
      msg64: as64([head('application/octet-stream'), Buffer.from([0xff, 0x00, 0x80])]),
    } as IscRequest);
    assert.equal(r.refusal?.code, 415);
    assert.match(r.refusal?.hdrs ?? '', /^Accept: text\/plain, message\/cpim/);
    const p = messageText({
      ...base,
      service: 'presence',
      msg64: as64([head('image/png'), Buffer.from([0xff])]),
    } as IscRequest);
    assert.match(p.refusal?.hdrs ?? '', /^Accept: application\/pidf\+xml\r\n/);
  });

  it('answers 400 for NUL in the headers or in a textual body, and lets NUL through in a binary one', () => {
    assert.equal(
      messageText({ ...base, msg: 'MESSAGE sip:b@x SIP/2.0\r\nSubject: a\0b\r\n\r\n' } as IscRequest).refusal?.reason,
      'NUL In Headers',
    );
    assert.equal(
      messageText({ ...base, msg: head('text/plain') + 'ab\0cd' } as IscRequest).refusal?.reason,
      'NUL In Body',
    );
    const bin = head('application/octet-stream') + 'ab\0cd';
    assert.deepEqual(messageText({ ...base, msg: bin } as IscRequest), { text: bin });
  });
});
