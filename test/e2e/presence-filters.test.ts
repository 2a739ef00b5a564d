/**
 * Event notification filters (RFC 4660/4661) on presence subscriptions through real Kamailio:
 * a filter we implement shapes the NOTIFY; a valid filter asking for more than we implement
 * (an XPath step outside our subset) is left out with a Warning and the watcher still gets
 * presence (the OMA presence reading); a malformed filter document is refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { publisherScenario, subscriberScenario } from './scenario-builder.js';
import { TestStack, portsFrom, type SippResult } from './stack.js';

const PW = (u: string) => `${u}-pw-filters`;
const FILTER_TYPE = 'application/simple-filter+xml';
const filterSet = (include: string) => `<?xml version="1.0" encoding="UTF-8"?>
<filter-set xmlns="urn:ietf:params:xml:ns:simple-filter">
  <ns-bindings><ns-binding prefix="pidf" urn="urn:ietf:params:xml:ns:pidf"/></ns-bindings>
  <filter id="f1" uri="sip:alice@example.com"><what><include type="xpath">${include}</include></what></filter>
</filter-set>`;

function notifies(run: SippResult): string[] {
  return [...run.messages.matchAll(/NOTIFY sip:[^\n]*\n([\s\S]*?)(?=\n-{5,}|$)/g)].map((m) => m[1]!);
}
/** The final response to the authenticated SUBSCRIBE (the one after the 407). */
function finalResponse(run: SippResult): string {
  const answers = [...run.messages.matchAll(/SIP\/2\.0 (?!407|100)\d{3}[^\n]*\n[\s\S]*?(?=\n-{5,}|$)/g)].map(
    (m) => m[0],
  );
  return answers[0] ?? '';
}

describe('Presence subscriptions with event filters', () => {
  let stack: TestStack;
  const auth = (u: string) => ['-au', u, '-ap', PW(u)];

  before(async () => {
    stack = await TestStack.start(portsFrom(7460), { PRESENCE_DEFAULT_SUB_HANDLING: 'allow' });
    for (const u of ['alice', 'bob']) assert.equal((await stack.provision('add', u, '--password', PW(u))).code, 0);
    const pub = await stack.sipp(
      {
        name: 'publish-note',
        xml: publisherScenario([{ kind: 'initial', basic: 'open', note: 'note-to-filter', expect: 200 }]),
      },
      { set: { user: 'alice' }, args: auth('alice') },
    );
    assert.equal(pub.exitCode, 0, pub.stdout);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  const subscribe = (name: string, body: string, expectFinal?: number) =>
    stack.sipp(
      {
        name,
        xml: subscriberScenario({
          event: 'presence',
          body: { type: FILTER_TYPE, text: body },
          ...(expectFinal ? { expectFinal } : {}),
        }),
      },
      { set: { user: 'bob', target: 'alice' }, args: auth('bob') },
    );

  it('applies a filter it implements: the NOTIFY has the status and not the note', async () => {
    const run = await subscribe('sub-filtered', filterSet('/pidf:presence/pidf:tuple/pidf:status'));
    assert.equal(run.exitCode, 0, `${run.stdout}\n${run.messages}`);
    assert.doesNotMatch(finalResponse(run), /^Warning:/m);
    const [first] = notifies(run);
    assert.match(first!, /<basic>open<\/basic>/);
    assert.doesNotMatch(first!, /note-to-filter/);
  });

  it('accepts a subscription whose filter it does not implement, without the filter, and says so in a Warning', async () => {
    const run = await subscribe('sub-unsupported', filterSet('//pidf:tuple/text()'));
    assert.equal(run.exitCode, 0, `${run.stdout}\n${run.messages}`);
    const answer = finalResponse(run);
    assert.match(answer, /^SIP\/2\.0 200/);
    assert.match(
      answer,
      /^Warning: 399 \S+ "filter not applied: unsupported expression in <include>: [^\n]*text\(\)[^\n]*"/m,
    );
    const [first] = notifies(run);
    assert.match(first!, /<basic>open<\/basic>/);
    assert.match(first!, /note-to-filter/, 'unfiltered: the whole document the rules allow');
  });

  it('still refuses a filter document that is not XML (400) or not a filter-set (488)', async () => {
    const notXml = await subscribe('sub-not-xml', '<filter-set', 400);
    assert.equal(notXml.exitCode, 0, `${notXml.stdout}\n${notXml.messages}`);
    const notFilterSet = await subscribe(
      'sub-not-set',
      '<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf"/>',
      488,
    );
    assert.equal(notFilterSet.exitCode, 0, `${notFilterSet.stdout}\n${notFilterSet.messages}`);
  });
});
