/**
 * Presence between two operators end to end (issue 17): alice and carol of example.com watch
 * bob of example.net through both cores (DNS, mutual TLS, see interdomain-stack.ts). bob's
 * pres-rules name the remote watchers (allow alice, block carol); alice's buddy list at her own
 * list server holds a member of each domain. alice's UA sits on an address of its own, not
 * her core's, as a real one would.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseRlmi } from '../../as/src/presence/rls/rlmi.js';
import { XcapClient } from '../helpers/xcap-client.js';
import { Interdomain } from './interdomain-stack.js';
import { publisherScenario, subscriberScenario } from './scenario-builder.js';
import { openStore } from '../../as/src/store/open-store.js';
import { eventually, type SippResult, type TestStack } from './stack.js';

/** What the list server keeps of a back-end subscription (as/src/presence/rls/backend.ts). */
interface BackendRow {
  _id: string;
  [key: string]: unknown;
  callId: string;
  dialog?: { remoteTarget: string; remoteTag: string; cseq: number };
}

const PW = (u: string) => `${u}-pw-17p`;
const auth = (u: string) => ['-au', u, '-ap', PW(u)];
const ALICE_UA = '127.0.0.5';
const LIST_ACCEPT = 'multipart/related, application/rlmi+xml, application/pidf+xml';

const rules = (entries: Array<[string, 'allow' | 'block']>) => `<?xml version="1.0" encoding="UTF-8"?>
<cp:ruleset xmlns:cp="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules">${entries
  .map(
    ([who, handling], i) => `
  <cp:rule id="r${i}">
    <cp:conditions><cp:identity><cp:one id="${who}"/></cp:identity></cp:conditions>
    <cp:actions><pr:sub-handling>${handling}</pr:sub-handling></cp:actions>
    <cp:transformations>
      <pr:provide-services><pr:all-services/></pr:provide-services>
      <pr:provide-persons><pr:all-persons/></pr:provide-persons>
      <pr:provide-note>true</pr:provide-note>
    </cp:transformations>
  </cp:rule>`,
  )
  .join('')}
</cp:ruleset>`;

/** NOTIFYs a sipp run received, in order, retransmissions left out (start line excluded). */
function notifies(run: SippResult): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const m of run.messages.matchAll(/NOTIFY sip:[^\n]*\n([\s\S]*?)(?=\n-{5,}|$)/g)) {
    const cseq = /^CSeq:\s*(.*)$/im.exec(m[1]!)?.[1] ?? '';
    if (seen.has(cseq)) continue;
    seen.add(cseq);
    out.push(m[1]!);
  }
  return out;
}

function xcap(stack: TestStack, user: string): XcapClient {
  return new XcapClient(
    `https://127.0.0.1:${stack.ports.xdm}`,
    user,
    PW(user),
    stack.domain,
    readFileSync(stack.tls!.ca, 'utf8'),
  );
}

async function publish(stack: TestStack, user: string, basic: 'open' | 'closed', note: string): Promise<void> {
  const run = await stack.sipp(
    { name: `publish-${user}`, xml: publisherScenario([{ kind: 'initial', basic, note, expires: 600, expect: 200 }]) },
    { set: { user }, args: auth(user) },
  );
  assert.equal(run.exitCode, 0, run.stdout);
}

describe('other domains: presence between example.com and example.net', () => {
  let two: Interdomain;

  before(async () => {
    two = await Interdomain.start(8260);
    await two.com.provisionUsers(['alice', 'carol'], PW);
    await two.net.provisionUsers(['bob'], PW);
    // bob's rules name watchers of another domain, and the list server of alice's domain
    const put = await xcap(two.net, 'bob').put(
      '/xcap-root/pres-rules/users/sip:bob@example.net/index',
      rules([
        ['sip:alice@example.com', 'allow'],
        ['sip:rls@example.com', 'allow'],
        ['sip:carol@example.com', 'block'],
      ]),
      'application/auth-policy+xml',
    );
    assert.equal(put.status, 201, put.body);
    await publish(two.net, 'bob', 'open', 'at the beach');
  });

  after(async () => {
    if (process.exitCode) console.log(two?.dumpLogs());
    await two?.stop();
  });

  it('lets alice@example.com watch bob@example.net and see his change, then leave, all in one dialog across both cores', async () => {
    const sub = two.com.sipp(
      {
        name: 'watch-bob',
        xml: subscriberScenario({
          event: 'presence',
          accept: 'application/pidf+xml',
          more: 1,
          targetDomain: 'example.net',
        }),
      },
      { localIp: ALICE_UA, set: { user: 'alice', target: 'bob' }, args: auth('alice'), timeoutMs: 30000 },
    );
    await two.com.sippLogged(sub.dir, /SUBSCRIBED/, 15000);
    await publish(two.net, 'bob', 'closed', 'gone home');
    const run = await sub;
    assert.equal(run.exitCode, 0, run.stdout);
    const [first, second, last] = notifies(run);
    assert.match(first!, /Subscription-State: active/);
    assert.match(first!, /at the beach/);
    assert.match(second!, /gone home/, "bob's change reached alice");
    assert.match(last!, /Subscription-State: terminated/, 'her un-SUBSCRIBE reached example.net');
  });

  it("refuses carol@example.com, whom bob's rules block (403 from example.net)", async () => {
    const run = await two.com.sipp(
      {
        name: 'carol-bob',
        xml: subscriberScenario({ event: 'presence', expectFinal: 403, targetDomain: 'example.net' }),
      },
      { set: { user: 'carol', target: 'bob' }, args: auth('carol') },
    );
    assert.equal(run.exitCode, 0, run.stdout);
  });

  it("keeps a PUBLISH for another domain's user at home (403)", async () => {
    const run = await two.com.sipp(
      {
        name: 'publish-remote',
        xml: publisherScenario([{ kind: 'initial', basic: 'open', expires: 600, expect: 403 }]).replace(
          /PUBLISH sip:\[\$user\]@\[\$domain\]/g,
          'PUBLISH sip:bob@example.net',
        ),
      },
      { set: { user: 'alice' }, args: auth('alice') },
    );
    assert.equal(run.exitCode, 0, run.stdout);
  });

  it("serves alice's buddy list with a member of each domain; the remote one through a back-end subscription", async () => {
    assert.equal(
      (
        await xcap(two.com, 'carol').put(
          '/xcap-root/pres-rules/users/sip:carol@example.com/index',
          rules([['sip:alice@example.com', 'allow']]),
          'application/auth-policy+xml',
        )
      ).status,
      201,
    );
    await publish(two.com, 'carol', 'open', 'carol is in');
    const list = `<?xml version="1.0" encoding="UTF-8"?>
<rls-services xmlns="urn:ietf:params:xml:ns:rls-services" xmlns:rl="urn:ietf:params:xml:ns:resource-lists">
  <service uri="sip:alice-buddies@example.com">
    <list name="buddies"><rl:entry uri="sip:bob@example.net"/><rl:entry uri="sip:carol@example.com"/></list>
    <packages><package>presence</package></packages>
  </service>
</rls-services>`;
    const put = await xcap(two.com, 'alice').put(
      '/xcap-root/rls-services/users/sip:alice@example.com/index',
      list,
      'application/rls-services+xml',
    );
    assert.equal(put.status, 201, put.body);
    // the first NOTIFY may show bob pending (his back-end subscription just started); the
    // next one brings his document
    const run = await two.com.sipp(
      {
        name: 'list-sub',
        xml: subscriberScenario({ event: 'presence', accept: LIST_ACCEPT, headers: ['Supported: eventlist'], more: 1 }),
      },
      { localIp: ALICE_UA, set: { user: 'alice', target: 'alice-buddies' }, args: auth('alice'), timeoutMs: 30000 },
    );
    assert.equal(run.exitCode, 0, run.stdout);
    const states = new Map<string, string>();
    let sawBobDocument = false;
    for (const n of notifies(run)) {
      const rlmi = /<list [\s\S]*?<\/list>/.exec(n)?.[0];
      if (!rlmi) continue;
      for (const r of parseRlmi(rlmi).resources) states.set(r.uri, r.instances[0]?.state ?? 'none');
      if (/entity="sip:bob@example\.net"[\s\S]*?gone home|gone home/.test(n)) sawBobDocument = true;
    }
    assert.equal(states.get('sip:carol@example.com'), 'active');
    assert.equal(states.get('sip:bob@example.net'), 'active');
    assert.ok(sawBobDocument, "bob's document from example.net is in the list's NOTIFYs");
    assert.match(run.messages, /carol is in/);
  });

  it("refreshes the list server's back-end subscription inside its dialog while a list holds bob, ends it in the dialog after", async () => {
    // both stores opened beside the running AS processes (the embedded store takes several)
    const comStore = await openStore({ dataDir: join(two.com.dir, 'data') });
    const netStore = await openStore({ dataDir: join(two.net.dir, 'data') });
    const backend = comStore.collection<BackendRow>('rls_backend');
    const atNet = () =>
      netStore
        .collection<{ _id: string; [key: string]: unknown; callId: string; state: string; expiresAt: Date }>(
          'subscriptions',
        )
        .find({ watcher: 'sip:rls@example.com' });
    const bobRow = () => backend.findOne({ _id: 'sip:bob@example.net' });
    let last: BackendRow | null = null;
    const until = (what: string, ok: (r: BackendRow | null) => boolean) =>
      eventually(
        async () => {
          last = await bobRow();
          return ok(last) ? (last ?? false) : undefined;
        },
        45000,
        what,
      ).catch((e: Error) => {
        throw new Error(`${e.message}; the record now: ${JSON.stringify(last)}`);
      });
    try {
      // alice holds her list open (until the one more NOTIFY bob's next change brings)
      const sub = two.com.sipp(
        {
          name: 'list-held',
          xml: subscriberScenario({
            event: 'presence',
            accept: LIST_ACCEPT,
            headers: ['Supported: eventlist'],
            more: 1,
            notifyTimeoutMs: 90000,
          }),
        },
        { localIp: ALICE_UA, set: { user: 'alice', target: 'alice-buddies' }, args: auth('alice'), timeoutMs: 120000 },
      );
      await two.com.sippLogged(sub.dir, /SUBSCRIBED/, 15000);
      const before = (await until("the back-end subscription's dialog", (r) => !!r?.dialog)) as BackendRow;
      assert.match(before.dialog!.remoteTarget, /@127\.0\.0\.2(:|;|$)/, "example.net's notifier is the target");
      const cseq = before.dialog!.cseq;

      // due now: the next sweep (every 30 s) renews it, in its dialog
      await backend.updateOne({ _id: 'sip:bob@example.net' }, { $set: { expiresAt: new Date() } });
      const after = (await until('the refresh', (r) => (r?.dialog?.cseq ?? 0) > cseq)) as BackendRow;
      assert.equal(after.callId, before.callId, 'the same dialog, not a new one');
      // example.net took it as a refresh of the subscription it holds: one dialog, renewed
      const held = await atNet();
      assert.deepEqual(
        held.map((x) => [x.callId, x.state]),
        [[before.callId, 'active']],
      );
      assert.ok(held[0]!.expiresAt.getTime() > Date.now() + 500_000, 'renewed for 600 s');

      // the refreshed subscription still brings bob's changes to alice's list
      await publish(two.net, 'bob', 'open', 'back from the beach');
      const run = await sub;
      assert.equal(run.exitCode, 0, run.stdout);
      assert.match(run.messages, /back from the beach/);

      // no list holds bob now: the next sweep ends the subscription inside its dialog
      await backend.updateOne({ _id: 'sip:bob@example.net' }, { $set: { expiresAt: new Date() } });
      await until('the back-end subscription to end', (r) => r === null);
      await eventually(
        async () => ((await atNet()).every((x) => x.state === 'terminated') ? true : undefined),
        10000,
        'example.net to end its side',
      );
    } finally {
      await comStore.close();
      await netStore.close();
    }
  });
});
