/**
 * The IM session service on its own: the participating function on an INVITE with an MSRP
 * offer (barring, the recipient's policy, unknown and offline recipients, a missing MSRP
 * offer), the decision Kamailio carries out (the offer rewritten to the AS, the AS URI for the
 * answer), the answer and the end events, the MSRP side ending the dialog, history and the
 * records. What lies around it is faked: users, policies, charging, history and the anchor.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { beforeEach, describe, it, mock } from 'node:test';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Charging } from '../../as/src/charging/charging.js';
import type { ChargeableEvent } from '../../as/src/charging/record.js';
import type { ConversationHistory, HistoryInput } from '../../as/src/im/history.js';
import type { DeferredEndpoint } from '../../as/src/im/deferred-endpoint.js';
import type { ImMessage } from '../../as/src/im/message-store.js';
import type { ImPolicies } from '../../as/src/im/im-policies.js';
import type { AnchorMessage, MediaAnchor } from '../../as/src/im/session-anchor.js';
import { parseMsrpMedia } from '../../as/src/msrp/sdp.js';
import { SessionService, type DialogTerminator } from '../../as/src/im/sessions.js';
import type { IscCall } from '../../as/src/isc/dispatcher.js';
import type { ContinueDecision, IscRequest, ReplyDecision } from '../../as/src/isc/types.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { parseSipMessage, type SipRequest } from '../../as/src/sip/index.js';
import { LocalDomain } from '../../as/src/users/local-domain.js';
import type { UserDirectory } from '../../as/src/users/user-directory.js';
import { defaultImPolicy, type ImPolicy } from '../../as/src/xdm/usages/im-policy.js';

/** The first MSRP media of an SDP (the one a session uses). */
const msrpMediaOf = (sdp: string) => parseMsrpMedia(sdp)[0];

const ALICE = 'sip:alice@example.com';
const BOB = 'sip:bob@example.com';
const A_PATH = 'msrp://192.0.2.1:7394/2s93i93idj;tcp';
const B_PATH = 'msrp://192.0.2.2:8493/9di4eae923wzd;tcp';

class FakeAnchor extends EventEmitter implements MediaAnchor {
  opened = new Map<string, { path: string[]; acceptTypes?: string[]; setup?: string; maxMessageBytes?: number }>();
  answers: Array<{ key: string; path: string[]; setup?: string }> = [];
  closed: Array<{ key: string; reason: string }> = [];
  open(key: string, offerer: { path: string[]; acceptTypes?: string[]; setup?: string; maxMessageBytes?: number }) {
    this.opened.set(key, offerer);
    return {
      offererSide: `msrp://198.51.100.5:2855/${key}-a;tcp`,
      answererSide: `msrp://198.51.100.5:2855/${key}-b;tcp`,
    };
  }
  answered(key: string, answerer: { path: string[]; setup?: string }) {
    this.answers.push({ key, ...answerer });
  }
  repaths: Array<{ key: string; side: string; path: string[]; setup?: string }> = [];
  repath(key: string, side: 'offerer' | 'answerer', peer: { path: string[]; setup?: string }) {
    this.repaths.push({ key, side, ...peer });
  }
  close(key: string, reason: string) {
    this.closed.push({ key, reason });
  }
}

function sdp(path: string): string {
  return [
    'v=0',
    'o=a 1 1 IN IP4 192.0.2.1',
    's=-',
    'c=IN IP4 192.0.2.1',
    't=0 0',
    'm=message 7394 TCP/MSRP *',
    'a=accept-types:text/plain',
    `a=path:${path}`,
    '',
  ].join('\r\n');
}

function invite(opts: { body?: string; ctype?: string; headers?: string[] } = {}): SipRequest {
  const body = opts.body ?? sdp(A_PATH);
  return parseSipMessage(
    [
      'INVITE sip:bob@example.com SIP/2.0',
      'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1',
      'From: <sip:alice@example.com>;tag=ftag1',
      'To: <sip:bob@example.com>',
      'Call-ID: call-1',
      'CSeq: 1 INVITE',
      `Content-Type: ${opts.ctype ?? 'application/sdp'}`,
      ...(opts.headers ?? []),
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n'),
  ) as SipRequest;
}

function callOf(sip: SipRequest, req: Partial<IscRequest> = {}): IscCall {
  return {
    req: {
      v: 1,
      service: 'im',
      method: 'INVITE',
      ruri: BOB,
      orig: true,
      term: true,
      registered: true,
      asserted: ALICE,
      srcIp: '192.0.2.1',
      srcPort: 5060,
      proto: 'udp',
      toTag: 't',
      ts: '1700000000.000000',
      ...req,
    },
    sip,
    receivedAt: new Date(1_700_000_000_000),
    log: silentLogger(),
  };
}

describe('IM sessions: the participating function on INVITE', () => {
  let anchor: FakeAnchor;
  let records: ChargeableEvent[];
  let archived: HistoryInput[];
  let terminated: Array<Parameters<DialogTerminator>[0]>;
  /** What the fake Kamailio answers to dlg.terminate_dlg. */
  let terminateAnswer: () => Promise<'terminated' | 'gone'>;
  let metrics: Metrics;
  /** Log lines of warn and above, as written. */
  let loud: Array<{ level: number; msg: string }>;
  let policies: Map<string, ImPolicy>;
  let barred: Set<string>;
  let service: SessionService;
  let activity: Array<[string, string]>;

  beforeEach(() => {
    activity = [];
    anchor = new FakeAnchor();
    records = [];
    archived = [];
    terminated = [];
    terminateAnswer = async () => 'terminated';
    metrics = new Metrics();
    loud = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          loud.push(JSON.parse(line) as { level: number; msg: string });
        done();
      },
    });
    policies = new Map();
    barred = new Set();
    service = makeService(sink);
  });

  function makeService(
    sink: Writable,
    more: Partial<ConstructorParameters<typeof SessionService>[0]> = {},
  ): SessionService {
    return new SessionService({
      users: {
        exists: async (u: string) => [ALICE, BOB].includes(u),
        get: async (u: string) => ({ imBarred: barred.has(u) }),
      } as unknown as UserDirectory,
      domain: new LocalDomain('example.com'),
      policies: { of: async (u: string) => policies.get(u) ?? defaultImPolicy() } as unknown as ImPolicies,
      charging: { record: async (e: ChargeableEvent) => void records.push(e) } as unknown as Charging,
      history: { archive: async (e: HistoryInput) => void archived.push(e) } as unknown as ConversationHistory,
      anchor,
      terminate: async (d) => {
        terminated.push(d);
        return terminateAnswer();
      },
      maxMessageBytes: 1000,
      nodeAddress: '127.0.0.1',
      metrics,
      log: pino({ level: 'warn' }, sink),
      activity: async (user, state) => void activity.push([user, state]),
      ...more,
    });
  }

  async function established(): Promise<{ key: string; decision: ContinueDecision }> {
    const decision = (await service.handle(callOf(invite()))) as ContinueDecision;
    assert.equal(decision.action, 'continue');
    const key = [...anchor.opened.keys()][0]!;
    await service.onOutcome(decision.ctx!.slice('im:session:'.length), 200, new Date(1_700_000_001_000));
    await service.onAnswer({
      type: 'session-answer',
      callId: 'call-1',
      toTag: 'ttag1',
      code: 200,
      sdp: sdp(B_PATH),
      ts: '1700000001.0',
    });
    return { key, decision };
  }

  it('lets the INVITE continue with the offer pointing at the AS, and tells Kamailio what the answer must say', async () => {
    const decision = (await service.handle(callOf(invite()))) as ContinueDecision;
    assert.equal(decision.action, 'continue');
    const [key, offerer] = [...anchor.opened.entries()][0]!;
    assert.deepEqual(offerer, { path: [A_PATH], acceptTypes: ['text/plain'] });
    const offer = msrpMediaOf(decision.body!)!;
    assert.deepEqual(offer.path, [`msrp://198.51.100.5:2855/${key}-b;tcp`]);
    assert.equal(offer.address, '198.51.100.5');
    assert.equal(offer.port, 2855);
    assert.equal(decision.ctype, 'application/sdp');
    assert.equal(decision.sessPath, `msrp://198.51.100.5:2855/${key}-a;tcp`);
    assert.equal(decision.sessHost, '198.51.100.5');
    assert.equal(decision.sessPort, '2855');
    assert.match(decision.hdrs!, /^P-Charging-Vector: icid-value=/);
    assert.match(decision.ctx!, /^im:session:/);
    assert.equal(decision.anonymize, undefined);
    assert.equal(service.size, 1);
  });

  it("hands each side's a=setup (RFC 6135) to the anchor, so it connects or waits as they asked", async () => {
    const passive = sdp(A_PATH).replace('a=accept-types', 'a=setup:passive\r\na=accept-types');
    const decision = (await service.handle(callOf(invite({ body: passive })))) as ContinueDecision;
    assert.equal([...anchor.opened.values()][0]!.setup, 'passive');
    assert.equal(msrpMediaOf(decision.body!)!.setup, 'passive', 'the callee learns that its peer (the AS) waits');
    const active = sdp(B_PATH).replace('a=accept-types', 'a=setup:active\r\na=accept-types');
    await service.onAnswer({ type: 'session-answer', callId: 'call-1', toTag: 't', code: 200, sdp: active, ts: '1' });
    assert.deepEqual(
      anchor.answers.map((a) => a.setup),
      ['active'],
    );
  });

  it('refuses a file transfer (RFC 5547) larger than the switch relays with 488, and lets a smaller one through', async () => {
    const file = (size: number) =>
      sdp(A_PATH).replace(
        'a=accept-types',
        `a=file-selector:name:"report.pdf" type:application/pdf size:${size}\r\na=accept-types`,
      );
    const big = (await service.handle(callOf(invite({ body: file(1001) })))) as ReplyDecision;
    assert.deepEqual([big.action, big.code], ['reply', 488]);
    assert.match(big.hdrs!, /Max-Message-Size: 1000\r\n/);
    assert.match(big.hdrs!, /Warning: 399 example\.com "the file is 1001 bytes; the most accepted is 1000"/);
    assert.deepEqual(
      records.map((r) => r.extra?.reason),
      ['file too large', 'file too large'],
    );
    assert.equal(anchor.opened.size, 0);
    assert.equal((await service.handle(callOf(invite({ body: file(1000) })))).action, 'continue');
  });

  it("refuses a file offer the recipient's policy does not take (off, type, size) with 488 and a Warning; holds a taken one to its declared size", async () => {
    const file = (selector: string) =>
      sdp(A_PATH).replace('a=accept-types', `a=file-selector:${selector}\r\na=accept-types`);
    const policyWith = (fileTransfer: ImPolicy['fileTransfer']) =>
      policies.set(BOB, { ...defaultImPolicy(), fileTransfer });
    const refused = async (selector: string) => {
      const d = (await service.handle(callOf(invite({ body: file(selector) })))) as ReplyDecision;
      assert.deepEqual([d.action, d.code], ['reply', 488], selector);
      return /Warning: 399 example\.com "([^"]*)"/.exec(d.hdrs!)![1];
    };
    policyWith({ enabled: false, acceptTypes: [] });
    assert.equal(await refused('name:"a.png" type:image/png size:10'), 'the recipient takes no files');
    policyWith({ enabled: true, acceptTypes: ['image/*'], maxSize: 500 });
    assert.equal(
      await refused('name:"a.pdf" type:application/pdf size:10'),
      'the recipient takes no files of type application/pdf',
    );
    assert.equal(await refused('name:"a.png" type:image/png size:501'), 'the recipient takes files up to 500 bytes');
    assert.match((await refused('name:"a.png" type:image/png'))!, /names no size/);
    assert.equal(anchor.opened.size, 0);
    assert.equal(
      records.at(-1)!.extra?.reason,
      'file refused by recipient: the recipient takes files up to 500 bytes, and this offer names no size',
    );
    const taken = (await service.handle(
      callOf(invite({ body: file('name:"a.png" type:image/png size:480') })),
    )) as ContinueDecision;
    assert.equal(taken.action, 'continue');
    assert.equal(
      [...anchor.opened.values()][0]!.maxMessageBytes,
      480,
      'the switch holds the file to its declared size',
    );
  });

  it('takes the operator maximum for files (maxFileBytes) when it is below the message maximum', async () => {
    service = makeService(new Writable({ write: (_c, _e, done) => done() }), { maxFileBytes: 300 });
    const body = sdp(A_PATH).replace('a=accept-types', 'a=file-selector:type:image/png size:301\r\na=accept-types');
    const d = (await service.handle(callOf(invite({ body })))) as ReplyDecision;
    assert.deepEqual([d.action, d.code], ['reply', 488]);
    assert.match(d.hdrs!, /Max-Message-Size: 300\r\n/);
  });

  it('takes a session for an offline callee when deferred sessions are on: 200 with the AS as the MSRP end, each message stored, the BYE answered and charged', async () => {
    const stored: Array<[string, ImMessage]> = [];
    let onMessage: ((m: { contentType: string; body: Buffer }) => void) | undefined;
    const endpoint = {
      open: (key: string, cb: typeof onMessage) => ((onMessage = cb), `msrp://127.0.0.1:40000/${key};tcp`),
      close: () => undefined,
    } as unknown as DeferredEndpoint;
    service = makeService(new Writable({ write: (_c, _e, done) => done() }), {
      deferred: {
        endpoint,
        store: async (r, m) => (stored.push([r, m]), { result: 'deferred' as const }),
        contact: 'sip:im-deferred@192.0.2.100:5060',
        send: async () => ({ code: 200 }),
        maxPagerBytes: 1000,
      },
    });
    const d = (await service.handle(callOf(invite(), { registered: undefined }))) as ReplyDecision;
    assert.deepEqual([d.action, d.code], ['reply', 200]);
    assert.match(d.hdrs!, /^Contact: <sip:im-deferred@192\.0\.2\.100:5060>\r\n/);
    const key = [...anchor.opened.keys()][0]!;
    assert.deepEqual(msrpMediaOf(d.body!)!.path, [`msrp://198.51.100.5:2855/${key}-a;tcp`]);
    assert.deepEqual(anchor.answers, [{ key, path: [`msrp://127.0.0.1:40000/${key};tcp`] }]);
    const cpim = 'From: <sip:alice@example.com>\r\n\r\nContent-Type: text/plain\r\n\r\nlater';
    onMessage!({ contentType: 'message/cpim', body: Buffer.from(cpim) });
    onMessage!({ contentType: 'application/im-iscomposing+xml', body: Buffer.from('<isComposing/>') });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      stored.map(([r, m]) => [r, m.sender, m.contentType, m.body]),
      [[BOB, ALICE, 'message/cpim', cpim]],
    );
    const bye = parseSipMessage(
      [
        'BYE sip:im-deferred@192.0.2.100:5060 SIP/2.0',
        'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK3',
        'From: <sip:alice@example.com>;tag=ftag1',
        'To: <sip:bob@example.com>;tag=kam1',
        'Call-ID: call-1',
        'CSeq: 3 BYE',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    ) as SipRequest;
    const ok = (await service.handle(callOf(bye, { method: 'BYE' }))) as ReplyDecision;
    assert.equal(ok.code, 200);
    assert.deepEqual(
      records.map((r) => [r.role, r.outcome, r.extra?.reason]),
      [
        ['originating', 'ended', 'BYE (deferred session)'],
        ['terminating', 'ended', 'BYE (deferred session)'],
      ],
    );
    assert.equal(service.size, 0);
    policies.set(BOB, { ...defaultImPolicy(), deferredDelivery: { enabled: false, networkStorage: false } });
    const off = (await service.handle(callOf(invite(), { registered: undefined }))) as ReplyDecision;
    assert.equal(off.code, 480, "deferral off in the callee's policy");
  });

  it('anonymizes the caller who asks for privacy', async () => {
    const decision = (await service.handle(callOf(invite({ headers: ['Privacy: id'] })))) as ContinueDecision;
    assert.equal(decision.anonymize, true);
  });

  for (const [name, setup, code, reason, why] of [
    ['a barred sender', () => barred.add(ALICE), 403, 'Sender Barred From Messaging', 'sender barred'],
    [
      'a sender the recipient blocks',
      () => policies.set(BOB, { ...defaultImPolicy(), blocked: { uris: [ALICE], domains: [] } }),
      403,
      'Forbidden',
      'blocked by recipient',
    ],
    [
      'a sender the recipient discards',
      () =>
        policies.set(BOB, { ...defaultImPolicy(), blockedAction: 'discard', blocked: { uris: [ALICE], domains: [] } }),
      480,
      'Temporarily Unavailable',
      'blocked by recipient (discard)',
    ],
  ] as const) {
    it(`refuses ${name} with ${code}, opens nothing and charges both roles`, async () => {
      setup();
      const d = (await service.handle(callOf(invite()))) as ReplyDecision;
      assert.deepEqual([d.action, d.code, d.reason], ['reply', code, reason]);
      assert.equal(anchor.opened.size, 0);
      assert.deepEqual(
        records.map((r) => [r.role, r.sipMethod, r.statusCode, r.outcome, r.extra?.reason]),
        [
          ['originating', 'INVITE', code, 'rejected', why],
          ['terminating', 'INVITE', code, 'rejected', why],
        ],
      );
    });
  }

  it('answers 404 for an unknown recipient, 480 for an offline one, 488 for an offer without MSRP media', async () => {
    assert.equal(
      ((await service.handle(callOf(invite(), { ruri: 'sip:nobody@example.com' }))) as ReplyDecision).code,
      404,
    );
    assert.equal(((await service.handle(callOf(invite(), { registered: undefined }))) as ReplyDecision).code, 480);
    const noPath = (await service.handle(
      callOf(invite({ body: 'v=0\r\nm=message 7394 TCP/MSRP *\r\n' })),
    )) as ReplyDecision;
    assert.equal(noPath.code, 488);
    assert.match(noPath.hdrs!, /^Warning: 399 example\.com "/);
    assert.equal(anchor.opened.size, 0);
  });

  it("gives the anchor the callee's path once per answer, and closes the session on the BYE with one record per role and the counts", async () => {
    const { key } = await established();
    await service.onAnswer({
      type: 'session-answer',
      callId: 'call-1',
      toTag: 'ttag1',
      code: 200,
      sdp: sdp(B_PATH),
      ts: '1700000001.1',
    });
    assert.deepEqual(anchor.answers, [{ key, path: [B_PATH] }]);
    for (const [from, bytes] of [
      ['offerer', 10],
      ['offerer', 20],
      ['answerer', 5],
    ] as const) {
      anchor.emit('message', {
        sessionKey: key,
        from,
        messageId: `m${bytes}`,
        contentType: 'text/plain',
        bytes,
      } satisfies AnchorMessage);
    }
    anchor.emit('message', {
      sessionKey: key,
      from: 'answerer',
      messageId: 'c1',
      contentType: 'application/im-iscomposing+xml',
      bytes: 300,
      isComposing: true,
    } satisfies AnchorMessage);
    await new Promise((r) => setTimeout(r, 20));
    await service.onEnd(
      { type: 'session-end', callId: 'call-1', by: 'bye', ts: '1700000060.0' },
      new Date(1_700_000_060_000),
    );
    assert.deepEqual(anchor.closed, [{ key, reason: 'bye' }]);
    assert.equal(service.size, 0);
    assert.equal(records.length, 2);
    for (const r of records) {
      assert.equal(r.outcome, 'ended');
      assert.equal(r.cause, 'serviceDeliveryEndSuccessfully');
      assert.deepEqual(r.extra, {
        reason: 'BYE',
        sessionStart: '2023-11-14T22:13:21.000Z',
        sessionEnd: '2023-11-14T22:14:20.000Z',
        messagesFromCaller: 2,
        bytesFromCaller: 30,
        messagesToCaller: 1,
        bytesToCaller: 5,
      });
    }
    // a second end (Kamailio's dialog:end after the AS itself ended it) changes nothing
    await service.onEnd({ type: 'session-end', callId: 'call-1', by: 'bye', ts: '1700000060.0' }, new Date());
    assert.equal(records.length, 2);
  });

  it('tells the IM presence source when both parties are in a chat and when they no longer are', async () => {
    const { decision } = await established();
    await service.onOutcome(decision.ctx!.slice('im:session:'.length), 200, new Date()); // another 2xx of the same INVITE
    assert.deepEqual(
      activity,
      [
        [ALICE, 'chat'],
        [BOB, 'chat'],
      ],
      'once per user, not per 2xx',
    );
    await service.onEnd(
      { type: 'session-end', callId: 'call-1', by: 'bye', ts: '1700000060.0' },
      new Date(1_700_000_060_000),
    );
    assert.deepEqual(activity.slice(2), [
      [ALICE, 'none'],
      [BOB, 'none'],
    ]);
  });

  it('charges a dialog that ran out of time with timeLimit', async () => {
    await established();
    await service.onEnd({ type: 'session-end', callId: 'call-1', by: 'timeout', ts: '1' }, new Date(1_700_043_201_000));
    assert.deepEqual(
      records.map((r) => r.cause),
      ['timeLimit', 'timeLimit'],
    );
  });

  it('closes the session when the INVITE fails, charging it failed', async () => {
    const decision = (await service.handle(callOf(invite()))) as ContinueDecision;
    await service.onOutcome(decision.ctx!.slice('im:session:'.length), 486, new Date());
    assert.equal(anchor.closed.length, 1);
    assert.deepEqual(
      records.map((r) => [r.statusCode, r.outcome]),
      [
        [486, 'failed'],
        [486, 'failed'],
      ],
    );
    assert.equal(service.size, 0);
  });

  it('ends the dialog both ways when the MSRP side ends, with the counts it saw in the messages', async () => {
    const { key } = await established();
    const message = (
      from: 'offerer' | 'answerer',
      bytes: number,
      extra: Partial<AnchorMessage> = {},
    ): AnchorMessage => ({ sessionKey: key, from, messageId: `m${bytes}`, contentType: 'text/plain', bytes, ...extra });
    anchor.emit('message', message('offerer', 11));
    anchor.emit('message', message('answerer', 4));
    anchor.emit(
      'message',
      message('offerer', 200, { contentType: 'application/im-iscomposing+xml', isComposing: true }),
    );
    anchor.emit('ended', { sessionKey: key, reason: 'msrp connection of the offerer lost' });
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(terminated, [{ callId: 'call-1', fromTag: 'ftag1', toTag: 'ttag1' }]);
    assert.equal(records.length, 2);
    for (const r of records) {
      assert.equal(r.cause, 'unSuccessfulServiceDelivery');
      assert.equal(r.extra?.reason, 'media: msrp connection of the offerer lost');
      assert.deepEqual(
        [r.extra?.messagesFromCaller, r.extra?.bytesFromCaller, r.extra?.messagesToCaller, r.extra?.bytesToCaller],
        [1, 11, 1, 4],
      );
    }
  });

  for (const [name, answer, result] of [
    ['Kamailio no longer holds the dialog (a BYE crossed the request)', async () => 'gone' as const, 'gone'],
    [
      'Kamailio cannot be reached',
      async (): Promise<'gone'> => {
        throw new Error('Kamailio RPC dlg.terminate_dlg unreachable');
      },
      'failed',
    ],
  ] as const) {
    it(`still writes one record per role, once, when the MSRP side ends and ${name}; counted, no error`, async () => {
      const { key } = await established();
      terminateAnswer = answer;
      anchor.emit('ended', { sessionKey: key, reason: 'msrp connection of the answerer lost' });
      // the BYE that crossed it: its session-end event comes right behind
      await service.onEnd({ type: 'session-end', callId: 'call-1', by: 'bye', ts: '1' }, new Date());
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(terminated.length, 1);
      assert.deepEqual(
        records.map((r) => [r.role, r.extra?.reason]),
        [
          ['originating', 'media: msrp connection of the answerer lost'],
          ['terminating', 'media: msrp connection of the answerer lost'],
        ],
      );
      assert.equal(metrics.value('ims_as_im_session_dialog_ends_total', { result }), 1);
      assert.equal(metrics.value('ims_as_reaction_failures_total', { reaction: 'im:anchor-ended' }), 0);
      assert.deepEqual(
        loud.filter((l) => l.level >= 50),
        [],
        'no error logged',
      );
      assert.equal(service.size, 0);
    });
  }

  it('counts a dialog Kamailio ended for the MSRP side as terminated', async () => {
    const { key } = await established();
    anchor.emit('ended', { sessionKey: key, reason: 'idle' });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(metrics.value('ims_as_im_session_dialog_ends_total', { result: 'terminated' }), 1);
    assert.equal(records.length, 2);
  });

  /** A re-INVITE inside call-1 from the caller (From tag ftag1) or the callee (its tag ttag1), offering `path`. */
  function reinvite(by: 'caller' | 'callee', path: string): SipRequest {
    const body = sdp(path);
    const [from, to] =
      by === 'caller'
        ? ['<sip:alice@example.com>;tag=ftag1', '<sip:bob@example.com>;tag=ttag1']
        : ['<sip:bob@example.com>;tag=ttag1', '<sip:alice@example.com>;tag=ftag1'];
    return parseSipMessage(
      [
        'INVITE sip:peer@192.0.2.9 SIP/2.0',
        'Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK2',
        `From: ${from}`,
        `To: ${to}`,
        'Call-ID: call-1',
        'CSeq: 5 INVITE',
        'Content-Type: application/sdp',
        `Content-Length: ${Buffer.byteLength(body)}`,
        '',
        body,
      ].join('\r\n'),
    ) as SipRequest;
  }

  it("anchors a re-offer from the callee: the caller is offered the AS's leg towards it, the answer shows the callee the other leg; a new path re-binds once answered", async () => {
    const { key } = await established();
    const moved = 'msrp://192.0.2.2:9000/moved;tcp';
    const d = (await service.handle(callOf(reinvite('callee', moved)))) as ContinueDecision;
    assert.equal(d.action, 'continue');
    assert.deepEqual(msrpMediaOf(d.body!)!.path, [`msrp://198.51.100.5:2855/${key}-a;tcp`]);
    assert.equal(d.sessPath, `msrp://198.51.100.5:2855/${key}-b;tcp`);
    assert.equal(anchor.repaths.length, 0, 'nothing moves before the answer');
    // the caller answers with its path unchanged
    await service.onAnswer({
      type: 'session-answer',
      callId: 'call-1',
      toTag: 'ttag1',
      code: 200,
      sdp: sdp(A_PATH),
      ts: '2',
    });
    assert.deepEqual(
      anchor.repaths.map((r) => [r.side, r.path]),
      [
        ['answerer', [moved]],
        ['offerer', [A_PATH]],
      ],
    );
    await service.onOutcome(d.ctx!.slice('im:session:'.length), 200, new Date());
    assert.equal(service.size, 1);
    assert.equal(records.length, 0, 'a re-offer is not charged');
  });

  it('keeps the session when a re-offer fails, and answers 481 to one outside any session', async () => {
    await established();
    const d = (await service.handle(callOf(reinvite('caller', A_PATH)))) as ContinueDecision;
    assert.deepEqual(msrpMediaOf(d.body!)!.path, [`msrp://198.51.100.5:2855/${[...anchor.opened.keys()][0]}-b;tcp`]);
    await service.onOutcome(d.ctx!.slice('im:session:'.length), 488, new Date());
    assert.equal(service.size, 1);
    assert.equal(records.length, 0);
    assert.equal(anchor.closed.length, 0);
    await service.onEnd({ type: 'session-end', callId: 'call-1', by: 'bye', ts: '3' }, new Date());
    const stray = (await service.handle(callOf(reinvite('caller', A_PATH)))) as ReplyDecision;
    assert.equal(stray.code, 481);
  });

  it('writes interim records per role every interval of an established session, chained with the final one, each counting its own span', async (t) => {
    mock.timers.enable({ apis: ['setInterval'] });
    t.after(() => mock.timers.reset());
    service = makeService(new Writable({ write: (_c, _e, done) => done() }), { interimRecordMs: 60_000 });
    const { key } = await established();
    const message = (from: 'offerer' | 'answerer', bytes: number): AnchorMessage => ({
      sessionKey: key,
      from,
      messageId: `m${bytes}`,
      contentType: 'text/plain',
      bytes,
    });
    anchor.emit('message', message('offerer', 10));
    await new Promise((r) => setImmediate(r));
    mock.timers.tick(60_000);
    await new Promise((r) => setImmediate(r));
    anchor.emit('message', message('answerer', 7));
    anchor.emit('message', message('offerer', 3));
    await new Promise((r) => setImmediate(r));
    mock.timers.tick(60_000);
    await new Promise((r) => setImmediate(r));
    anchor.emit('message', message('answerer', 5));
    await new Promise((r) => setImmediate(r));
    await service.onEnd({ type: 'session-end', callId: 'call-1', by: 'bye', ts: '9' }, new Date());
    const orig = records.filter((r) => r.role === 'originating');
    assert.deepEqual(
      orig.map((r) => [
        r.recordSequenceNumber,
        r.outcome,
        r.cause,
        r.extra?.messagesFromCaller,
        r.extra?.bytesFromCaller,
        r.extra?.messagesToCaller,
        r.extra?.bytesToCaller,
      ]),
      [
        [1, 'interim', 'timeLimit', 1, 10, 0, 0],
        [2, 'interim', 'timeLimit', 1, 3, 1, 7],
        [3, 'ended', 'serviceDeliveryEndSuccessfully', 0, 0, 1, 5],
      ],
    );
    assert.equal(records.filter((r) => r.role === 'terminating').length, 3);
    assert.equal(new Set(records.map((r) => r.chargingVector)).size, 1, 'one ICID for the chain');
    assert.equal(orig[1]!.extra?.spanStart, orig[0]!.extra?.spanEnd, 'the spans follow each other');
    // no interim record after the end
    mock.timers.tick(120_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(records.length, 6);
  });

  it('writes no interim record once stopped (the AS stops charging after its sessions)', async (t) => {
    mock.timers.enable({ apis: ['setInterval'] });
    t.after(() => mock.timers.reset());
    service = makeService(new Writable({ write: (_c, _e, done) => done() }), { interimRecordMs: 60_000 });
    await established();
    mock.timers.tick(60_000);
    await new Promise((r) => setImmediate(r));
    const before = records.filter((r) => r.outcome === 'interim').length;
    assert.equal(before, 2, 'one interim record per role before the stop');
    service.stop();
    mock.timers.tick(180_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(records.filter((r) => r.outcome === 'interim').length, before);
  });

  it('keeps text messages in the history of each party who keeps one (never is-composing), the caller anonymous when it asked', async () => {
    policies.set(BOB, { ...defaultImPolicy(), history: { enabled: true, maxMessages: 10, conversations: [] } });
    policies.set(ALICE, { ...defaultImPolicy(), history: { enabled: true, maxMessages: 10, conversations: [] } });
    const decision = (await service.handle(callOf(invite({ headers: ['Privacy: id'] })))) as ContinueDecision;
    const key = [...anchor.opened.keys()][0]!;
    assert.ok(decision);
    anchor.emit('message', {
      sessionKey: key,
      from: 'offerer',
      messageId: 'm1',
      contentType: 'text/plain',
      bytes: 2,
      text: 'hi',
    });
    anchor.emit('message', {
      sessionKey: key,
      from: 'answerer',
      messageId: 'm2',
      contentType: 'text/plain',
      bytes: 3,
      text: 'yes',
    });
    anchor.emit('message', {
      sessionKey: key,
      from: 'offerer',
      messageId: 'm3',
      contentType: 'application/im-iscomposing+xml',
      bytes: 9,
      text: '<x/>',
      isComposing: true,
    });
    anchor.emit('message', { sessionKey: key, from: 'offerer', messageId: 'm4', contentType: 'image/png', bytes: 900 });
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(archived.map((e) => [e.owner, e.direction, e.peer, e.body]).sort(), [
      [ALICE, 'received', BOB, 'yes'],
      [ALICE, 'sent', BOB, 'hi'],
      [BOB, 'received', 'sip:anonymous@anonymous.invalid', 'hi'],
      [BOB, 'sent', 'sip:anonymous@anonymous.invalid', 'yes'],
    ]);
    assert.ok(archived.every((e) => e.callId === 'call-1'));
  });
  /** A service with deferred sessions on, the end point and Kamailio's request path faked. */
  function deferredService(more: Partial<ConstructorParameters<typeof SessionService>[0]> = {}) {
    const stored: Array<[string, ImMessage]> = [];
    const sent: Array<Parameters<NonNullable<ConstructorParameters<typeof SessionService>[0]['deferred']>['send']>[0]> =
      [];
    const handlers: {
      onMessage?: (m: { contentType: string; body: Buffer }) => void;
      onRefused?: (r: { contentType: string; code: number; reason: string }) => void;
    } = {};
    const closed: string[] = [];
    const endpoint = {
      open: (key: string, onMessage: typeof handlers.onMessage, onRefused: typeof handlers.onRefused) => (
        Object.assign(handlers, { onMessage, onRefused }),
        `msrp://127.0.0.1:40000/${key};tcp`
      ),
      close: (key: string) => void closed.push(key),
    } as unknown as DeferredEndpoint;
    let byeAnswer = 200;
    service = makeService(new Writable({ write: (_c, _e, done) => done() }), {
      deferred: {
        endpoint,
        store: async (r, m) => (stored.push([r, m]), { result: 'deferred' as const }),
        contact: 'sip:im-deferred@192.0.2.100:5060',
        send: async (req) => (sent.push(req), { code: byeAnswer }),
        maxPagerBytes: 50,
      },
      ...more,
    });
    return { stored, sent, handlers, closed, answerByeWith: (code: number) => (byeAnswer = code) };
  }

  const offline = { registered: undefined, toTag: 'as-tag-9' };
  const withContact = ['Contact: <sip:alice@192.0.2.1:5062;transport=tcp>', 'Record-Route: <sip:192.0.2.50;lr>'];

  it("ends a deferred session's dialog with its own BYE through Kamailio when the caller's MSRP side ends, charged once per role", async () => {
    const { sent, handlers, stored } = deferredService();
    const d = (await service.handle(callOf(invite({ headers: withContact }), offline))) as ReplyDecision;
    assert.equal(d.code, 200);
    const key = [...anchor.opened.keys()][0]!;
    handlers.onMessage!({ contentType: 'text/plain', body: Buffer.from('kept') });
    await new Promise((r) => setImmediate(r));
    anchor.emit('message', { sessionKey: key, from: 'offerer', messageId: 'm1', contentType: 'text/plain', bytes: 4 });
    anchor.emit('ended', { sessionKey: key, reason: 'msrp connection of the offerer lost' });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(stored.length, 1);
    assert.equal(sent.length, 1, 'one BYE');
    const bye = sent[0]!;
    const h = (n: string) => bye.headers.filter(([k]) => k === n).map(([, v]) => v);
    assert.deepEqual(
      [bye.method, bye.ruri, bye.nexthop],
      ['BYE', 'sip:alice@192.0.2.1:5062;transport=tcp', 'sip:192.0.2.50;lr'],
    );
    assert.deepEqual(h('From'), ['<sip:bob@example.com>;tag=as-tag-9'], "the AS's side: the tag of its 200");
    assert.deepEqual(h('To'), ['<sip:alice@example.com>;tag=ftag1']);
    assert.deepEqual(h('Call-ID'), ['call-1']);
    assert.deepEqual(h('CSeq'), ['1 BYE']);
    assert.deepEqual(h('Route'), ['<sip:192.0.2.50;lr>'], 'the route set of the INVITE');
    assert.equal(terminated.length, 0, 'no dlg.terminate_dlg: Kamailio does not track this dialog');
    assert.deepEqual(
      records.map((r) => [r.role, r.outcome, r.cause, r.extra?.reason, r.extra?.messagesFromCaller]),
      [
        ['originating', 'ended', 'unSuccessfulServiceDelivery', 'media: msrp connection of the offerer lost', 1],
        ['terminating', 'ended', 'unSuccessfulServiceDelivery', 'media: msrp connection of the offerer lost', 1],
      ],
    );
    assert.equal(metrics.value('ims_as_im_session_dialog_ends_total', { result: 'terminated' }), 1);
    // the caller's BYE crossing ours finds no session: 481, no second record
    const byeIn = parseSipMessage(
      [
        'BYE sip:im-deferred@192.0.2.100:5060 SIP/2.0',
        'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK3',
        'From: <sip:alice@example.com>;tag=ftag1',
        'To: <sip:bob@example.com>;tag=as-tag-9',
        'Call-ID: call-1',
        'CSeq: 3 BYE',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    ) as SipRequest;
    assert.equal(((await service.handle(callOf(byeIn, { method: 'BYE' }))) as ReplyDecision).code, 481);
    assert.equal(records.length, 2);
  });

  it('counts a deferred BYE the caller answers 481 as gone (its own BYE crossed), still one record per role', async () => {
    const { sent, answerByeWith } = deferredService();
    answerByeWith(481);
    await service.handle(callOf(invite({ headers: withContact }), offline));
    const key = [...anchor.opened.keys()][0]!;
    anchor.emit('ended', { sessionKey: key, reason: 'idle' });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(sent.length, 1);
    assert.equal(records.length, 2);
    assert.equal(metrics.value('ims_as_im_session_dialog_ends_total', { result: 'gone' }), 1);
  });

  it('writes interim records for a deferred session like for a live one', async (t) => {
    mock.timers.enable({ apis: ['setInterval'] });
    t.after(() => mock.timers.reset());
    deferredService({ interimRecordMs: 60_000 });
    await service.handle(callOf(invite({ headers: withContact }), offline));
    const key = [...anchor.opened.keys()][0]!;
    anchor.emit('message', { sessionKey: key, from: 'offerer', messageId: 'm1', contentType: 'text/plain', bytes: 6 });
    await new Promise((r) => setImmediate(r));
    mock.timers.tick(60_000);
    await new Promise((r) => setImmediate(r));
    anchor.emit('ended', { sessionKey: key, reason: 'idle' });
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const orig = records.filter((r) => r.role === 'originating');
    assert.deepEqual(
      orig.map((r) => [r.recordSequenceNumber, r.outcome, r.cause, r.extra?.messagesFromCaller]),
      [
        [1, 'interim', 'timeLimit', 1],
        [2, 'ended', 'unSuccessfulServiceDelivery', 0],
      ],
    );
    mock.timers.tick(120_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(records.length, 4, 'no interim record after the end');
  });

  it('takes a file offer for an offline callee under the live policy: 488 above the limits, held to its size; a text file that fits is stored, others leave a refusal in history', async () => {
    const { stored, handlers } = deferredService();
    const fileSdp = (selector: string) =>
      sdp(A_PATH).replace('a=accept-types', `a=file-selector:${selector}\r\na=accept-types`);
    // the operator's limit (maxMessageBytes 1000 here)
    const big = (await service.handle(
      callOf(invite({ body: fileSdp('name:"big.txt" type:text/plain size:1001') }), offline),
    )) as ReplyDecision;
    assert.deepEqual([big.code, /Max-Message-Size: 1000/.test(big.hdrs!)], [488, true]);
    // the callee's file policy
    policies.set(BOB, {
      ...defaultImPolicy(),
      fileTransfer: { enabled: true, acceptTypes: ['text/*'] },
      history: { enabled: true, maxMessages: 10, conversations: [] },
    });
    const pdf = (await service.handle(
      callOf(invite({ body: fileSdp('name:"a.pdf" type:application/pdf size:10') }), offline),
    )) as ReplyDecision;
    assert.equal(pdf.code, 488);
    assert.match(pdf.hdrs!, /Warning: 399 example\.com "the recipient takes no files of type application\/pdf"/);
    assert.equal(anchor.opened.size, 0);

    const ok = (await service.handle(
      callOf(invite({ body: fileSdp('name:"notes.txt" type:text/plain size:40') }), offline),
    )) as ReplyDecision;
    assert.equal(ok.code, 200);
    const key = [...anchor.opened.keys()][0]!;
    assert.equal(anchor.opened.get(key)!.maxMessageBytes, 40, 'held to the declared size');
    handlers.onMessage!({ contentType: 'text/plain', body: Buffer.from('the notes') });
    // binary bytes cannot travel as a pager body; a file above the pager limit (50 here) neither
    handlers.onMessage!({ contentType: 'text/plain', body: Buffer.from([0xff, 0x00, 0x41]) });
    handlers.onMessage!({ contentType: 'text/plain', body: Buffer.alloc(51, 0x61) });
    // the end point itself refused one on the way (above its bound)
    handlers.onRefused!({ contentType: 'text/plain', code: 413, reason: 'message too large' });
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      stored.map(([r, m]) => [r, m.sender, m.contentType, m.body]),
      [[BOB, ALICE, 'text/plain', 'the notes']],
    );
    assert.deepEqual(
      archived.map((e) => [e.owner, e.direction, e.peer, e.status]),
      [
        [BOB, 'received', ALICE, 415],
        [BOB, 'received', ALICE, 413],
        [BOB, 'received', ALICE, 413],
      ],
      'only the callee keeps a history here',
    );
    assert.match(archived[0]!.body, /^"notes\.txt" \(text\/plain\) for later delivery was not kept: not text/);
    assert.match(archived[1]!.body, /51 bytes, the most a stored message holds is 50/);
  });
  it('does not take a user out of a chat when a deferred session of theirs ends while a live one goes on', async () => {
    deferredService();
    const { key: live } = await established();
    assert.deepEqual(activity, [
      [ALICE, 'chat'],
      [BOB, 'chat'],
    ]);
    const second = invite({ headers: withContact });
    second.headers.set('Call-ID', 'call-2');
    const d = (await service.handle(callOf(second, offline))) as ReplyDecision;
    assert.equal(d.code, 200);
    const deferredKey = [...anchor.opened.keys()].find((k) => k !== live)!;
    anchor.emit('ended', { sessionKey: deferredKey, reason: 'msrp connection of the offerer lost' });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(service.size, 1, 'the live session goes on');
    assert.deepEqual(activity.length, 2, `still in a chat: ${JSON.stringify(activity)}`);
  });
});
