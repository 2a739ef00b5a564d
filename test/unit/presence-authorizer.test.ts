import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PresenceAuthorizer } from '../../as/src/presence/authorization.js';
import type { XdmDocuments } from '../../as/src/xdm/document-store.js';

const ALICE = 'sip:alice@example.com';
const rules = (handling: string) => `<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns="urn:ietf:params:xml:ns:pres-rules" xmlns:cr="urn:ietf:params:xml:ns:common-policy">
  <cr:rule id="friends"><cr:conditions><cr:identity><cr:one id="sip:bob@example.com"/></cr:identity></cr:conditions>
    <cr:actions><sub-handling>${handling}</sub-handling></cr:actions></cr:rule>
</cr:ruleset>`;

function documents(body: () => string | undefined) {
  let reads = 0;
  const docs = {
    get: async (ref: { path: string }) => {
      reads++;
      const b = ref.path === 'index' ? body() : undefined;
      return b === undefined ? null : { body: b };
    },
  } as unknown as XdmDocuments;
  return { docs, reads: () => reads };
}

test('the rules are read and parsed once for every watcher, until they change', async () => {
  let handling = 'allow';
  const src = documents(() => rules(handling));
  const authorizer = new PresenceAuthorizer(src.docs);
  const grants = await Promise.all(Array.from({ length: 50 }, () => authorizer.decide(ALICE, 'sip:bob@example.com')));
  assert.ok(grants.every((g) => g.handling === 'allow'));
  assert.equal((await authorizer.decide(ALICE, 'sip:carol@example.com')).handling, 'confirm', 'no rule for carol');
  assert.equal(src.reads(), 1);
  handling = 'block';
  assert.equal((await authorizer.decide(ALICE, 'sip:bob@example.com')).handling, 'allow', 'kept until told');
  authorizer.forget(ALICE);
  assert.equal((await authorizer.decide(ALICE, 'sip:bob@example.com')).handling, 'block');
  assert.equal(src.reads(), 2);
});

test('a presentity without rules is remembered as such, and a failed read is not kept', async () => {
  let fail = true;
  let reads = 0;
  const docs = {
    get: async () => {
      reads++;
      if (fail) throw new Error('store down');
      return null;
    },
  } as unknown as XdmDocuments;
  const authorizer = new PresenceAuthorizer(docs);
  await assert.rejects(authorizer.decide(ALICE, 'sip:bob@example.com'), /store down/);
  fail = false;
  assert.equal((await authorizer.decide(ALICE, 'sip:bob@example.com')).handling, 'confirm');
  const before = reads;
  assert.equal((await authorizer.decide(ALICE, 'sip:bob@example.com')).handling, 'confirm');
  assert.equal(reads, before, 'no document: not read again');
});
