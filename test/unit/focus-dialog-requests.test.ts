/**
 * What the focus answers inside a participant's dialog (as/src/conference/focus-dialog-requests.ts):
 * re-offers, UPDATE, INFO (RFC 6086: 469 for a package, legacy INFO 200 or 415), OPTIONS, 405.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FOCUS_DIALOG_ALLOW, focusDialogDecision } from '../../as/src/conference/focus-dialog-requests.js';

const SDP = (path: string) =>
  [
    'v=0',
    'o=u 1 1 IN IP4 127.0.0.1',
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    'm=message 9 TCP/MSRP *',
    'a=accept-types:text/plain',
    `a=path:${path}`,
    '',
  ].join('\r\n');
const req = (method: string, o: { contentType?: string; body?: string; infoPackage?: string } = {}) => ({
  method,
  contentType: o.contentType ?? (o.body ? 'application/sdp' : ''),
  body: o.body ?? '',
  ...(o.infoPackage !== undefined ? { infoPackage: o.infoPackage } : {}),
});

describe('requests in a focus dialog', () => {
  it('a re-INVITE with an MSRP offer: the focus answers with its SDP and learns the path', () => {
    const d = focusDialogDecision(req('INVITE', { body: SDP('msrp://127.0.0.1:9/new;tcp') }));
    assert.equal(d.kind, 'sdp');
    assert.deepEqual(d.kind === 'sdp' && d.media?.path, ['msrp://127.0.0.1:9/new;tcp']);
  });

  it('a re-INVITE without a body: the focus offers (no media learnt); UPDATE without a body: 200 alone', () => {
    assert.deepEqual(focusDialogDecision(req('INVITE')), { kind: 'sdp' });
    assert.deepEqual(focusDialogDecision(req('UPDATE')), { kind: 'ok' });
    assert.equal(focusDialogDecision(req('UPDATE', { body: SDP('msrp://h:1/x;tcp') })).kind, 'sdp');
  });

  it('a re-offer that is not SDP: 415 with Accept; SDP without MSRP path: 488', () => {
    const d = focusDialogDecision(req('INVITE', { contentType: 'text/plain', body: 'hi' }));
    assert.ok(d.kind === 'reply' && d.code === 415);
    assert.deepEqual(d.kind === 'reply' && d.headers, [['Accept', 'application/sdp']]);
    const bad = focusDialogDecision(req('UPDATE', { body: 'v=0\r\nm=audio 9 RTP/AVP 0\r\n' }));
    assert.ok(bad.kind === 'reply' && bad.code === 488);
  });

  it('INFO: a named Info Package gets 469 with an empty Recv-Info; legacy INFO: 200 without a body, 415 with one', () => {
    const pkg = focusDialogDecision(req('INFO', { infoPackage: 'foo', contentType: 'application/foo', body: 'x' }));
    assert.ok(pkg.kind === 'reply' && pkg.code === 469 && pkg.reason === 'Bad Info Package');
    assert.deepEqual(pkg.kind === 'reply' && pkg.headers, [['Recv-Info', '']]);
    assert.deepEqual(focusDialogDecision(req('INFO')), { kind: 'ok' });
    const body = focusDialogDecision(req('INFO', { contentType: 'application/dtmf-relay', body: 'Signal=1' }));
    assert.ok(body.kind === 'reply' && body.code === 415);
  });

  it('OPTIONS: 200 with Allow and Accept; any other method: 405 with Allow', () => {
    const o = focusDialogDecision(req('OPTIONS'));
    assert.ok(o.kind === 'reply' && o.code === 200);
    assert.deepEqual(o.kind === 'reply' && o.headers, [
      ['Allow', FOCUS_DIALOG_ALLOW],
      ['Accept', 'application/sdp'],
    ]);
    for (const m of ['MESSAGE', 'PRACK', 'PUBLISH', 'NOTIFY']) {
      const d = focusDialogDecision(req(m, { contentType: 'text/plain', body: 'x' }));
      assert.ok(d.kind === 'reply' && d.code === 405, m);
      assert.deepEqual(d.kind === 'reply' && d.headers, [['Allow', FOCUS_DIALOG_ALLOW]]);
    }
  });
});
