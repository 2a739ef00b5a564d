/**
 * Two conference focuses (two AS instances) on one store, inside one process: each with its
 * own store-backed change feed and roster, wired as as/src/reactions.ts wires them, and a fake
 * MSRP switch that records what each delivers. A message taken by one reaches the legs the
 * other holds once; a private message only its target; is-composing is relayed but never
 * counted; the conference ends, and its record is written, once, by the instance whose last
 * participant leaves last.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Charging } from '../../as/src/charging/charging.js';
import type { ChargeableEvent } from '../../as/src/charging/record.js';
import { StoreChangeFeed } from '../../as/src/cluster/store-change-feed.js';
import { ChatRooms } from '../../as/src/conference/chat-rooms.js';
import { ConferenceFocus, type ConferenceTarget, type FocusMedia } from '../../as/src/conference/focus.js';
import { ConferenceRoster } from '../../as/src/conference/roster.js';
import { parseCpim } from '../../as/src/im/formats/cpim.js';
import type { IscCall } from '../../as/src/isc/dispatcher.js';
import type { UacOutcome } from '../../as/src/isc/uac.js';
import { silentLogger } from '../../as/src/log/logger.js';
import type { EndpointMessageEvent } from '../../as/src/msrp/switch.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { parseSipMessage, type SipRequest } from '../../as/src/sip/message.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import { LocalDomain } from '../../as/src/users/local-domain.js';
import { sleep, until } from '../helpers/until.js';

const GROUP: ConferenceTarget = {
  uri: 'sip:team@example.com',
  name: 'team',
  kind: 'group',
  owner: 'sip:alice@example.com',
  private: false,
};

/** The MSRP switch as the focus sees it: endpoints opened, messages delivered, the vetter. */
class FakeMedia implements FocusMedia {
  readonly delivered: Array<{ key: string; body: string }> = [];
  private readonly listeners = new Map<string, Array<(e: never) => void>>();
  vetter?: (m: EndpointMessageEvent) => { code: number; comment: string } | undefined;

  constructor(private readonly port: number) {}

  openEndpoint(key: string): string {
    return `msrp://127.0.0.1:${this.port}/${key};tcp`;
  }
  endpointAnswered(): void {}
  repathEndpoint(): boolean {
    return true;
  }
  async deliver(key: string, msg: { contentType: string; body: Buffer }): Promise<void> {
    this.delivered.push({ key, body: msg.body.toString() });
  }
  closeEndpoint(): void {}
  setEndpointVetter(vet: (m: EndpointMessageEvent) => { code: number; comment: string } | undefined): void {
    this.vetter = vet;
  }
  on(event: string, listener: (e: never) => void): unknown {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return this;
  }
  /** A participant's SEND, whole, as the switch hands it to the focus. */
  send(key: string, contentType: string, text: string): void {
    for (const l of this.listeners.get('endpoint-message') ?? [])
      (l as (m: EndpointMessageEvent) => void)({ key, contentType, body: Buffer.from(text) });
  }
}

interface Instance {
  id: string;
  focus: ConferenceFocus;
  media: FakeMedia;
  feed: StoreChangeFeed;
  records: ChargeableEvent[];
}

let calls = 0;
function request(method: 'INVITE' | 'BYE', user: string, callId: string): IscCall {
  const sdp = [
    'v=0',
    `o=${user} 1 1 IN IP4 127.0.0.1`,
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    'm=message 9000 TCP/MSRP *',
    'a=accept-types:message/cpim text/plain',
    `a=path:msrp://127.0.0.1:9000/${user};tcp`,
    '',
  ].join('\r\n');
  const body = method === 'INVITE' ? sdp : '';
  const text = [
    `${method} ${GROUP.uri} SIP/2.0`,
    'Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK' + ++calls,
    `From: <sip:${user}@example.com>;tag=${user}-tag`,
    `To: <${GROUP.uri}>${method === 'BYE' ? ';tag=focus-tag' : ''}`,
    `Call-ID: ${callId}`,
    `CSeq: ${method === 'INVITE' ? 1 : 2} ${method}`,
    `Contact: <sip:${user}@127.0.0.1:5070>`,
    'Max-Forwards: 70',
    ...(body ? ['Content-Type: application/sdp'] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
  return {
    req: {
      v: 1,
      service: 'im',
      method,
      ruri: GROUP.uri,
      srcIp: '127.0.0.1',
      srcPort: 5070,
      proto: 'udp',
      toTag: 'focus-tag',
      ts: '0',
      msg: text,
      asserted: `sip:${user}@example.com`,
    },
    sip: parseSipMessage(text) as SipRequest,
    receivedAt: new Date(),
    log: silentLogger(),
  };
}

describe('conference focus on two instances sharing a store', () => {
  let dir = '';
  let store: SqliteStore;
  const instances: Instance[] = [];
  const keyOf = new Map<string, { at: Instance; key: string }>();

  async function instance(id: string, port: number): Promise<Instance> {
    const metrics = new Metrics();
    const feed = new StoreChangeFeed({ store, instance: id, pollMs: 20, log: silentLogger(), metrics });
    const roster = new ConferenceRoster(store, feed);
    const media = new FakeMedia(port);
    const records: ChargeableEvent[] = [];
    const focus = new ConferenceFocus({
      rooms: new ChatRooms(store, 'example.com', async () => false),
      groups: { resolve: async () => undefined },
      domain: new LocalDomain('example.com'),
      media,
      charging: { record: async (e: ChargeableEvent) => void records.push(e) } as unknown as Charging,
      policy: { mayJoin: async () => ({ allow: true }) },
      roster,
      uac: { send: async () => ({ code: 200, reason: 'OK', at: new Date() }) as UacOutcome },
      contactHost: '127.0.0.1:5060',
      msrpHost: '127.0.0.1',
      msrpPort: () => port,
      factoryUser: () => 'conference-factory',
      maxInvitees: () => 10,
      replayMessages: () => 0,
      instance: id,
      nodeAddress: '127.0.0.1',
      metrics,
      log: silentLogger(),
      relay: { publish: (c) => feed.publish(c), maxMessageBytes: () => 1024 },
    });
    // as as/src/reactions.ts declares them: conference-seats, conference-relay
    feed.listen({
      change: async (c) => {
        if (c.kind === 'conference') await focus.rosterChanged(c.uri);
        if (c.kind === 'conference-message') await focus.messageRelayed(c);
      },
      resync: () => {},
    });
    await feed.start();
    const inst = { id, focus, media, feed, records };
    instances.push(inst);
    return inst;
  }

  async function join(at: Instance, user: string): Promise<void> {
    const d = await at.focus.join(request('INVITE', user, `${user}-call`), GROUP);
    assert.equal((d as { code: number }).code, 200, JSON.stringify(d));
    const path = /a=path:msrp:\/\/[^/]+\/([^;]+);tcp/.exec((d as { body: string }).body)?.[1];
    assert.ok(path);
    keyOf.set(user, { at, key: path });
  }
  const say = (user: string, type: string, text: string) => {
    const { at, key } = keyOf.get(user)!;
    at.media.send(key, type, text);
  };
  /** The contents delivered to a user, in order. */
  const got = (user: string) => {
    const { at, key } = keyOf.get(user)!;
    return at.media.delivered.filter((d) => d.key === key).map((d) => parseCpim(d.body).content);
  };

  before(async () => {
    dir = await mkdtemp(path.join(process.env.TMPDIR ?? tmpdir(), 'conf-focus-instances-'));
    store = await SqliteStore.open(dir);
  });
  after(async () => {
    for (const i of instances) await i.feed.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('messages cross instances once, private ones reach only their target, is-composing is never counted; the conference ends and is recorded once', async () => {
    const a = await instance('as-1', 9101);
    const b = await instance('as-2', 9102);
    await join(a, 'alice');
    await join(a, 'dave');
    await join(b, 'bob');
    await join(b, 'carol');
    // a knows whom b holds once it read the roster's changes (the private message needs it)
    await until(
      "as-1 sees as-2's participants",
      () =>
        a.media.vetter!({
          key: keyOf.get('alice')!.key,
          contentType: 'message/cpim',
          body: Buffer.from(
            'From: <sip:alice@example.com>\r\nTo: <sip:carol@example.com>\r\n\r\nContent-Type: text/plain\r\n\r\nx',
          ),
        }) === undefined,
    );

    say('alice', 'text/plain', 'one');
    say('alice', 'text/plain', 'two');
    say(
      'bob',
      'application/im-iscomposing+xml',
      '<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isComposing>',
    );
    say('bob', 'text/plain', 'three');
    say(
      'alice',
      'message/cpim',
      'From: <sip:alice@example.com>\r\nTo: <sip:carol@example.com>\r\n\r\nContent-Type: text/plain\r\n\r\nfor carol',
    );
    await until(
      'everything delivered',
      () => got('carol').includes('for carol') && got('alice').includes('three') && got('dave').includes('three'),
    );
    await sleep(200); // any duplicate would be on its way
    // each sender's messages in its order (two senders on two instances may interleave)
    const COMPOSING = '<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isComposing>';
    const fromAlice = (user: string) => got(user).filter((c) => ['one', 'two', 'for carol'].includes(c));
    const fromBob = (user: string) => got(user).filter((c) => [COMPOSING, 'three'].includes(c));
    assert.deepEqual(fromAlice('dave'), ['one', 'two']);
    assert.deepEqual(fromBob('dave'), [COMPOSING, 'three']);
    assert.deepEqual(fromAlice('bob'), ['one', 'two']);
    assert.deepEqual(fromAlice('carol'), ['one', 'two', 'for carol']);
    assert.deepEqual(fromBob('carol'), [COMPOSING, 'three']);
    assert.deepEqual(fromBob('alice'), [COMPOSING, 'three']);
    assert.equal(
      got('dave').length + got('bob').length + got('carol').length + got('alice').length,
      4 + 2 + 5 + 2,
      'no copies',
    );
    assert.equal(got('alice').filter((c) => c === 'three').length, 1);
    assert.ok(!got('alice').includes('one') && !got('bob').includes('three'), 'nobody gets their own');
    const bodyTo = (user: string, content: string) => {
      const { at, key } = keyOf.get(user)!;
      return parseCpim(at.media.delivered.find((d) => d.key === key && parseCpim(d.body).content === content)!.body);
    };
    assert.equal(bodyTo('carol', 'one').from.uri, 'sip:alice@example.com', 'the sender as the conference shows it');
    // a CPIM To naming nobody anywhere is still refused
    assert.equal(
      a.media.vetter!({
        key: keyOf.get('alice')!.key,
        contentType: 'message/cpim',
        body: Buffer.from(
          'From: <sip:alice@example.com>\r\nTo: <sip:zed@example.com>\r\n\r\nContent-Type: text/plain\r\n\r\nx',
        ),
      })?.code,
      403,
    );

    // as-1's participants leave first: the conference goes on for as-2's
    for (const u of ['alice', 'dave']) await a.focus.bye(request('BYE', u, `${u}-call`));
    assert.equal(
      a.records.filter((r) => (r.extra as Record<string, unknown>).conferenceRole === 'controlling').length,
      0,
    );
    for (const u of ['bob', 'carol']) await b.focus.bye(request('BYE', u, `${u}-call`));
    const controlling = [...a.records, ...b.records].filter(
      (r) => (r.extra as Record<string, unknown>).conferenceRole === 'controlling',
    );
    assert.equal(controlling.length, 1, 'one conference record, by the instance that ended it');
    assert.ok(b.records.includes(controlling[0]!));
    const rec = (user: string) =>
      [...a.records, ...b.records].find((r) => r.callingParty === `sip:${user}@example.com`)!.extra as Record<
        string,
        unknown
      >;
    assert.equal(rec('carol').messagesReceived, 4, 'one, two, three, for carol: is-composing not counted');
    assert.equal(rec('bob').messagesSent, 1);
    assert.equal(rec('alice').messagesSent, 3);
    const ended = await new ConferenceRoster(store, { publish: async () => {} }).get(GROUP.uri);
    assert.ok(ended?.endedAt instanceof Date);
  });
});
