import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Koa from 'koa';
import Router from 'koa-router';
import { IscDispatcher, encodeContext, type IscService } from '../../as/src/isc/dispatcher.js';
import { iscGuard } from '../../as/src/isc/guard.js';
import { chargingVectorOf, kamailioTime, reply, type IscRequest } from '../../as/src/isc/types.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { StoreOutages } from '../../as/src/store/store-fault.js';

const MESSAGE = [
  'MESSAGE sip:bob@example.com SIP/2.0',
  'Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1',
  'From: <sip:alice@example.com>;tag=a1',
  'To: <sip:bob@example.com>',
  'Call-ID: c1',
  'CSeq: 1 MESSAGE',
  'Content-Type: text/plain',
  'Content-Length: 2',
  '',
  'hi',
].join('\r\n');

function request(over: Partial<IscRequest> = {}): IscRequest {
  return {
    v: 1,
    service: 'im',
    method: 'MESSAGE',
    ruri: 'sip:bob@example.com',
    srcIp: '127.0.0.1',
    srcPort: 5070,
    proto: 'udp',
    toTag: 't',
    ts: '1700000000.250000',
    msg: MESSAGE,
    ...over,
  };
}

describe('ISC dispatcher', () => {
  const metrics = new Metrics();
  const outcomes: Array<[string, number]> = [];
  const fast: IscService = {
    name: 'im',
    handle: async (call) => ({ action: 'continue', ctx: encodeContext('im', call.sip.headers.get('Call-ID')!) }),
    onOutcome: async (ctx, code) => void outcomes.push([ctx, code]),
  };
  const dispatcher = new IscDispatcher({
    log: silentLogger(),
    metrics,
    deadlineMs: 50,
    outages: new StoreOutages(),
  }).register(fast);

  it('parses the SIP message once and hands it to the service named by the filter criteria', async () => {
    const d = await dispatcher.request(request());
    assert.deepEqual(d, { action: 'continue', ctx: 'im:c1' });
    assert.equal(
      metrics.value('ims_as_isc_decisions_total', { service: 'im', method: 'MESSAGE', decision: 'continue' }),
      1,
    );
  });

  it('routes the outcome back to the service that set the context', async () => {
    await dispatcher.event({ type: 'outcome', ctx: 'im:c1', code: 200, ts: '1700000001.0' });
    assert.deepEqual(outcomes, [['c1', 200]]);
  });

  it("answers 400 with the parser's reason for a malformed message", async () => {
    const d = await dispatcher.request(
      request({ msg: 'MESSAGE sip:bob@example.com SIP/2.0\r\nbroken header\r\n\r\n' }),
    );
    assert.equal(d.action, 'reply');
    assert.equal((d as { code: number }).code, 400);
  });

  it('refuses frames that schemas/isc-*.schema.json refuse, and counts them', async () => {
    const { msg: _msg, ...noMessage } = request();
    for (const bad of [
      noMessage,
      { ...request(), srcPort: '5070' },
      { ...request(), service: 'voicemail' },
      { ...request(), v: 2 },
      null,
      'MESSAGE',
    ]) {
      assert.deepEqual(await dispatcher.request(bad), reply(400, 'Bad ISC Request'), JSON.stringify(bad));
    }
    assert.equal(metrics.value('ims_as_isc_frames_refused_total', { kind: 'request' }), 6);
    assert.equal(await dispatcher.event({ type: 'outcome', ctx: 'im:c2', code: '200', ts: '1700000001.0' }), false);
    assert.equal(
      await dispatcher.event({ type: 'registration', aor: 'sip:bob@example.com', ts: '1' }),
      false,
      'no contacts',
    );
    assert.equal(await dispatcher.event({ type: 'surprise', ts: '1' }), false);
    assert.equal(metrics.value('ims_as_isc_frames_refused_total', { kind: 'event' }), 3);
    assert.ok(!outcomes.some(([ctx]) => ctx === 'c2'), 'a refused outcome reaches no service');
  });

  it('answers 501 for a service that is not there', async () => {
    const d = await dispatcher.request(request({ service: 'presence' }));
    assert.deepEqual(d, reply(501, 'Not Implemented'));
  });

  it('answers 503 when a service does not decide before the deadline, and 500 when it throws', async () => {
    const slow = new IscDispatcher({
      log: silentLogger(),
      metrics,
      deadlineMs: 30,
      outages: new StoreOutages(),
    }).register({ name: 'im', handle: () => new Promise((r) => setTimeout(() => r(reply(200, 'OK')), 500)) });
    const started = Date.now();
    const d = await slow.request(request());
    assert.equal((d as { code: number }).code, 503);
    assert.ok(Date.now() - started < 300);
    const broken = new IscDispatcher({
      log: silentLogger(),
      metrics,
      deadlineMs: 30,
      outages: new StoreOutages(),
    }).register({
      name: 'im',
      handle: async () => {
        throw new Error('boom');
      },
    });
    assert.equal(((await broken.request(request())) as { code: number }).code, 500);
  });

  it('answers 503 with Retry-After when the store is out (disk full), and remembers it for /health', async () => {
    const outages = new StoreOutages();
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const d = await new IscDispatcher({ log: silentLogger(), metrics, deadlineMs: 30, outages })
      .register({
        name: 'im',
        handle: async () => {
          throw full;
        },
      })
      .request(request());
    assert.deepEqual(d, reply(503, 'Service Unavailable', { headers: [['Retry-After', '5']] }));
    assert.match(outages.recent()?.message ?? '', /ENOSPC/);
  });

  it("reads Kamailio's seconds.microseconds timestamps", () => {
    assert.equal(kamailioTime('1700000000.250000').toISOString(), '2023-11-14T22:13:20.250Z');
  });
});

describe('ISC guard', () => {
  let base = '';
  let server: ReturnType<Koa['listen']>;
  before(async () => {
    const app = new Koa();
    const r = new Router();
    r.use(iscGuard({ secret: 'shared-secret-123456', trustedAddresses: ['127.0.0.1'] }));
    r.get('/x', (ctx) => void (ctx.body = 'ok'));
    app.use(r.routes());
    server = app.listen(0, '127.0.0.1');
    await new Promise((res) => server.once('listening', res));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => void server.close());

  it('lets Kamailio in with the secret as basic-auth password', async () => {
    const res = await fetch(`${base}/x`, {
      headers: { authorization: `Basic ${Buffer.from('kamailio:shared-secret-123456').toString('base64')}` },
    });
    assert.equal(res.status, 200);
  });

  it('refuses a wrong or missing secret with 401', async () => {
    assert.equal((await fetch(`${base}/x`)).status, 401);
    const res = await fetch(`${base}/x`, {
      headers: { authorization: `Basic ${Buffer.from('kamailio:wrong').toString('base64')}` },
    });
    assert.equal(res.status, 401);
  });

  it('refuses an address that is not a trusted Kamailio with 403', async () => {
    const app = new Koa();
    const r = new Router();
    r.use(iscGuard({ secret: 'shared-secret-123456', trustedAddresses: ['10.9.9.9'] }));
    r.get('/x', (ctx) => void (ctx.body = 'ok'));
    app.use(r.routes());
    const s = app.listen(0, '127.0.0.1');
    await new Promise((res) => s.once('listening', res));
    const res = await fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/x`, {
      headers: { authorization: `Basic ${Buffer.from('kamailio:shared-secret-123456').toString('base64')}` },
    });
    assert.equal(res.status, 403);
    s.close();
  });
});

describe('chargingVectorOf: the P-Charging-Vector Kamailio made for a request that had none', () => {
  it('the header as received wins; the ISC field is cleaned of a header name and line end; control characters refused', () => {
    assert.equal(chargingVectorOf('icid-value=a', { pcv: 'icid-value=b' }), 'icid-value=a');
    assert.equal(
      chargingVectorOf(undefined, { pcv: 'icid-value=b;icid-generated-at=127.0.0.1' }),
      'icid-value=b;icid-generated-at=127.0.0.1',
    );
    assert.equal(chargingVectorOf(undefined, { pcv: 'P-Charging-Vector: icid-value=c\r\n' }), 'icid-value=c');
    assert.equal(chargingVectorOf(undefined, { pcv: 'icid-value=d\r\nX-Evil: 1' }), undefined);
    assert.equal(chargingVectorOf(undefined, {}), undefined);
  });
});
