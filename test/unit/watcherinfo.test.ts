import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { watcherinfoDocument } from '../../as/src/presence/watcherinfo.js';
import { parseXml, serializeXml } from '../../as/src/xml/xml-tree.js';

describe('watcherinfo (RFC 3858)', () => {
  it('lists watchers with status and event, escaped, and parses back', () => {
    const doc = watcherinfoDocument({
      resource: 'sip:alice@example.com',
      package: 'presence',
      version: 3,
      state: 'partial',
      watchers: [
        { id: 'w1', uri: 'sip:bob@example.com', status: 'pending', event: 'subscribe' },
        { id: 'w<2>', uri: 'sip:c&d@example.com', status: 'terminated', event: 'rejected', durationSubscribed: 12 },
      ],
    });
    const parsed = parseXml(doc);
    assert.equal(parsed.root.name, 'watcherinfo');
    assert.equal(parsed.root.attributes?.xmlns, 'urn:ietf:params:xml:ns:watcherinfo');
    assert.equal(parsed.root.attributes?.version, '3');
    assert.equal(parsed.root.attributes?.state, 'partial');
    const text = serializeXml(parsed.root);
    assert.match(text, /<watcher id="w1" status="pending" event="subscribe">sip:bob@example.com<\/watcher>/);
    assert.match(
      text,
      /id="w&lt;2&gt;" status="terminated" event="rejected" duration-subscribed="12">sip:c&amp;d@example.com</,
    );
  });

  it('writes an empty watcher-list for a resource nobody watches', () => {
    const doc = watcherinfoDocument({
      resource: 'sip:a@x',
      package: 'presence',
      version: 0,
      state: 'full',
      watchers: [],
    });
    assert.match(doc, /<watcher-list resource="sip:a@x" package="presence">\n  <\/watcher-list>/);
  });
});
