import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { notifyTargetProblem, type TargetFacts } from '../../as/src/events/notify-target.js';

const facts = (over: Partial<TargetFacts> = {}): TargetFacts => ({
  watcher: 'sip:frank@example.com',
  srcIp: '198.51.100.7',
  viaLocation: false,
  registered: [],
  ...over,
});

describe('notifyTargetProblem: where NOTIFYs may go', () => {
  it('allows the host the SUBSCRIBE came from, on any port', () => {
    assert.equal(notifyTargetProblem('sip:frank@198.51.100.7:5070;transport=tcp', facts()), undefined);
    assert.equal(notifyTargetProblem('sip:[2001:db8::7]:5060', facts({ srcIp: '2001:DB8::7' })), undefined);
  });

  it("refuses a third party's address", () => {
    assert.match(
      notifyTargetProblem('sip:victim@192.0.2.1:5060', facts()) ?? '',
      /neither the source address nor a registered contact/,
    );
    assert.match(notifyTargetProblem('sip:victim.example.net', facts()) ?? '', /neither/);
  });

  it('allows a contact the watcher registered (a client behind NAT), matching host and port', () => {
    const registered = ['sip:frank@10.0.0.5:5062;ob', 'sip:frank@10.0.0.6'];
    assert.equal(notifyTargetProblem('sip:frank@10.0.0.5:5062', facts({ registered })), undefined);
    assert.equal(notifyTargetProblem('sip:frank@10.0.0.6:5060', facts({ registered })), undefined);
    assert.match(notifyTargetProblem('sip:frank@10.0.0.5:5099', facts({ registered })) ?? '', /neither/);
  });

  it("allows the watcher's own address of record and a GRUU through the location service, never another user", () => {
    assert.equal(notifyTargetProblem('sip:frank@example.com', facts({ viaLocation: true })), undefined);
    assert.equal(notifyTargetProblem('sip:tgruu.7hs@example.com;gr', facts({ viaLocation: true })), undefined);
    assert.match(notifyTargetProblem('sip:bob@example.com', facts({ viaLocation: true })) ?? '', /another user/);
  });

  it("leaves the target of a remote watcher to the watcher's own core when that core record-routed the SUBSCRIBE", () => {
    const remote = { watcher: 'sip:alice@example.org', srcIp: '203.0.113.9' };
    assert.equal(
      notifyTargetProblem('sip:alice@10.1.1.1:5060', facts({ ...remote, routedByWatcherCore: true })),
      undefined,
    );
    assert.match(notifyTargetProblem('sip:alice@10.1.1.1:5060', facts(remote)) ?? '', /neither/);
  });

  it('calls an unparsable target malformed', () => {
    assert.equal(notifyTargetProblem('sip:', facts()), 'malformed Contact');
  });
});
