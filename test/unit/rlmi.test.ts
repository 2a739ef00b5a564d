import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  RLMI_CONTENT_TYPE,
  RLMI_NS,
  RlmiError,
  type RlmiList,
  parseRlmi,
  rlmiInstanceId,
  serializeRlmi,
} from '../../as/src/presence/rls/rlmi.js';

function rlmiError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof RlmiError) return e.reason;
    throw e;
  }
  return 'none';
}

const sample: RlmiList = {
  uri: 'sip:friends@example.com',
  version: 4,
  fullState: true,
  names: [
    { text: 'Friends', lang: 'en' },
    { text: 'Freunde', lang: 'de' },
  ],
  resources: [
    {
      uri: 'sip:bob@example.com',
      names: [{ text: 'Bob' }],
      instances: [{ id: rlmiInstanceId('sip:bob@example.com'), state: 'active', cid: 'bob.1@as.example.com' }],
    },
    { uri: 'sip:carol@example.com', instances: [{ id: rlmiInstanceId('sip:carol@example.com'), state: 'pending' }] },
    {
      uri: 'sip:dave@example.com',
      instances: [{ id: rlmiInstanceId('sip:dave@example.com'), state: 'terminated', reason: 'rejected' }],
    },
    { uri: 'sip:erin@example.com', instances: [] },
  ],
};

describe('RLMI (RFC 4662 section 5)', () => {
  it('writes a compact, deterministic document with the RFC element and attribute names', () => {
    assert.equal(RLMI_CONTENT_TYPE, 'application/rlmi+xml');
    const xml = serializeRlmi(sample);
    assert.equal(xml, serializeRlmi(structuredClone(sample)));
    const bob = rlmiInstanceId('sip:bob@example.com');
    const dave = rlmiInstanceId('sip:dave@example.com');
    assert.ok(
      xml.startsWith(
        `<?xml version="1.0" encoding="UTF-8"?><list xmlns="${RLMI_NS}" uri="sip:friends@example.com" version="4" fullState="true">`,
      ),
    );
    assert.ok(
      xml.includes(
        '<name xml:lang="en">Friends</name><name xml:lang="de">Freunde</name><resource uri="sip:bob@example.com">',
      ),
    );
    assert.ok(
      xml.includes(`<name>Bob</name><instance id="${bob}" state="active" cid="bob.1@as.example.com"/></resource>`),
    );
    assert.ok(xml.includes(`<instance id="${dave}" state="terminated" reason="rejected"/>`));
    assert.ok(xml.endsWith('<resource uri="sip:erin@example.com"/></list>'));
    assert.doesNotMatch(xml, />\s+</);
  });

  it('reads back what it writes', () => {
    assert.deepEqual(parseRlmi(serializeRlmi(sample)), sample);
    const partial: RlmiList = { uri: 'sip:l@example.com', version: 0, fullState: false, cid: 'inner@x', resources: [] };
    const xml = serializeRlmi(partial);
    assert.match(xml, /fullState="false" cid="inner@x"\/?>/);
    assert.deepEqual(parseRlmi(xml), partial);
  });

  it('escapes every attribute value and text', () => {
    const list: RlmiList = {
      uri: 'sip:a&b@example.com;x="1"',
      version: 1,
      fullState: true,
      names: [{ text: 'Tom & Jerry <"friends">\r\n', lang: 'en"x' }],
      resources: [
        {
          uri: 'sip:x@h;p=<1>',
          names: [{ text: "O'Brien & co" }],
          instances: [{ id: 'a"b', state: 'terminated', reason: 'no<resource>', cid: 'c&d' }],
        },
      ],
    };
    const xml = serializeRlmi(list);
    assert.ok(xml.includes('uri="sip:a&amp;b@example.com;x=&quot;1&quot;"'));
    assert.ok(xml.includes('<name xml:lang="en&quot;x">Tom &amp; Jerry &lt;"friends"&gt;&#13;\n</name>'));
    assert.ok(xml.includes('uri="sip:x@h;p=&lt;1&gt;"'));
    assert.ok(xml.includes('<instance id="a&quot;b" state="terminated" reason="no&lt;resource&gt;" cid="c&amp;d"/>'));
    assert.deepEqual(parseRlmi(xml), list);
  });

  it('refuses to write what RFC 4662 does not allow', () => {
    assert.equal(
      rlmiError(() => serializeRlmi({ ...sample, version: -1 })),
      'invalid-input',
    );
    assert.equal(
      rlmiError(() => serializeRlmi({ ...sample, version: 1.5 })),
      'invalid-input',
    );
    assert.equal(
      rlmiError(() => serializeRlmi({ ...sample, version: 2 ** 32 })),
      'invalid-input',
    );
    const reasonOnActive: RlmiList = {
      ...sample,
      resources: [{ uri: 'sip:b@x', instances: [{ id: '1', state: 'active', reason: 'timeout' }] }],
    };
    assert.equal(
      rlmiError(() => serializeRlmi(reasonOnActive)),
      'invalid-input',
    );
    const badState = {
      ...sample,
      resources: [{ uri: 'sip:b@x', instances: [{ id: '1', state: 'gone' }] }],
    } as unknown as RlmiList;
    assert.equal(
      rlmiError(() => serializeRlmi(badState)),
      'invalid-input',
    );
  });

  it('gives each resource a short, stable, opaque instance id', () => {
    const id = rlmiInstanceId('sip:bob@example.com');
    assert.match(id, /^[0-9a-f]{10}$/);
    assert.equal(rlmiInstanceId('sip:bob@example.com'), id);
    assert.notEqual(rlmiInstanceId('sip:bob@example.org'), id);
  });

  it('reads documents written by others: prefixes, whitespace, extensions, xs:boolean 1/0', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<r:list xmlns:r="${RLMI_NS}" xmlns:x="urn:example:ext" uri=" sip:adam-friends@example.com " version="07" fullState="1" x:extra="y">
  <r:name xml:lang="en">Buddy List at COM</r:name>
  <x:note>ignored</x:note>
  <r:resource uri="sip:bob@example.com">
    <r:name>Bob Smith</r:name>
    <r:instance id="juwigmtboe" state="active" cid="bUZBsM@pres.example.com"><x:anything/></r:instance>
    <r:instance id="hqzsuxtfyq" state="terminated" reason="rejected"/>
  </r:resource>
</r:list>`;
    assert.deepEqual(parseRlmi(xml), {
      uri: 'sip:adam-friends@example.com',
      version: 7,
      fullState: true,
      names: [{ text: 'Buddy List at COM', lang: 'en' }],
      resources: [
        {
          uri: 'sip:bob@example.com',
          names: [{ text: 'Bob Smith' }],
          instances: [
            { id: 'juwigmtboe', state: 'active', cid: 'bUZBsM@pres.example.com' },
            { id: 'hqzsuxtfyq', state: 'terminated', reason: 'rejected' },
          ],
        },
      ],
    });
    assert.equal(parseRlmi(`<list xmlns="${RLMI_NS}" uri="sip:l@x" version="0" fullState="0"/>`).fullState, false);
  });

  it('refuses documents that are not RLMI', () => {
    const ok = `xmlns="${RLMI_NS}" uri="sip:l@x" version="1" fullState="true"`;
    assert.equal(
      rlmiError(() => parseRlmi('<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>')),
      'wrong-root',
    );
    assert.equal(
      rlmiError(() => parseRlmi('<list uri="sip:l@x" version="1" fullState="true"/>')),
      'wrong-root',
    );
    assert.equal(
      rlmiError(() =>
        parseRlmi('<list xmlns="urn:ietf:params:xml:ns:rlmi2" uri="sip:l@x" version="1" fullState="true"/>'),
      ),
      'wrong-root',
    );
    assert.equal(
      rlmiError(() => parseRlmi(`<list xmlns="${RLMI_NS}" uri="sip:l@x" fullState="true"/>`)),
      'missing-attribute',
    );
    assert.equal(
      rlmiError(() => parseRlmi(`<list xmlns="${RLMI_NS}" version="1" fullState="true"/>`)),
      'missing-attribute',
    );
    assert.equal(
      rlmiError(() => parseRlmi(`<list xmlns="${RLMI_NS}" uri="sip:l@x" version="1"/>`)),
      'missing-attribute',
    );
    assert.equal(
      rlmiError(() => parseRlmi(`<list xmlns="${RLMI_NS}" uri="sip:l@x" version="-1" fullState="true"/>`)),
      'bad-attribute',
    );
    assert.equal(
      rlmiError(() => parseRlmi(`<list xmlns="${RLMI_NS}" uri="sip:l@x" version="4294967296" fullState="true"/>`)),
      'bad-attribute',
    );
    assert.equal(
      rlmiError(() => parseRlmi(`<list xmlns="${RLMI_NS}" uri="sip:l@x" version="1" fullState="yes"/>`)),
      'bad-attribute',
    );
    assert.equal(
      rlmiError(() => parseRlmi(`<list ${ok}><resource/></list>`)),
      'missing-attribute',
    );
    assert.equal(
      rlmiError(() => parseRlmi(`<list ${ok}><resource uri="sip:b@x"><instance state="active"/></resource></list>`)),
      'missing-attribute',
    );
    assert.equal(
      rlmiError(() =>
        parseRlmi(`<list ${ok}><resource uri="sip:b@x"><instance id="1" state="gone"/></resource></list>`),
      ),
      'bad-attribute',
    );
    assert.equal(
      rlmiError(() => parseRlmi(`<list ${ok}><instance id="1" state="active"/></list>`)),
      'unexpected-element',
    );
    assert.equal(
      rlmiError(() => parseRlmi(`<list ${ok}><resource uri="sip:b@x"><resource uri="sip:c@x"/></resource></list>`)),
      'unexpected-element',
    );
    assert.equal(
      rlmiError(() => parseRlmi(`<list ${ok}>`)),
      'not-xml',
    );
    assert.equal(
      rlmiError(() => parseRlmi(`<!DOCTYPE list [<!ENTITY e "x">]><list ${ok}><name>&e;</name></list>`)),
      'doctype-forbidden',
    );
  });
});
