import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NamespaceScope, attr, childElements, parseXml, serializeXml, type XmlElement } from '../../as/src/xml/xml-tree.js';
import {
  CIPID_NS,
  DM_NS,
  PIDF_NS,
  makeDevice,
  makePerson,
  makeTuple,
  parsePidf,
  presenceElement,
  rpidElement,
  serializePidf,
  type Device,
  type Note,
  type Person,
  type PresenceDoc,
  type Tuple,
} from '../../as/src/presence/pidf/index.js';
import {
  PIDF_DIFF_CONTENT_TYPE,
  PIDF_DIFF_NS,
  PidfDiffError,
  applyPidfPatch,
  pidfDiff,
  pidfFull,
} from '../../as/src/presence/pidf/pidf-diff.js';

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const ENTITY = 'sip:bob@example.org';

function doc(parts: Partial<Omit<PresenceDoc, 'entity'>>): string {
  return serializePidf({ entity: ENTITY, tuples: [], persons: [], devices: [], notes: [], extensions: [], ...parts });
}

/** Same comparison the brief asks for: both through parsePidf + serializePidf. */
function canon(pidf: string): string {
  return serializePidf(parsePidf(pidf));
}

function tuple(id: string, basic: 'open' | 'closed', uri = `sip:${id.replace(/[^a-z0-9]/gi, '')}@host.example.org`, priority?: string): Tuple {
  return makeTuple({ id, basic, contact: priority === undefined ? { uri } : { uri, priority } });
}

function person(id: string, activities: string[]): Person {
  return makePerson({ id, elements: [rpidElement('activities', activities)] });
}

interface Op {
  op: string;
  sel: string;
  pos?: string;
  content: string[];
}

/** The operations of a pidf-diff, with the root checked. */
function opsOf(diff: string): { root: XmlElement; ops: Op[] } {
  const root = parseXml(diff).root;
  const scope = NamespaceScope.root().child(root);
  assert.deepEqual(scope.expand(root.name), { ns: PIDF_DIFF_NS, local: 'pidf-diff' });
  const ops = childElements(root).map((el) => {
    const n = scope.child(el).expand(el.name);
    assert.equal(n.ns, PIDF_DIFF_NS);
    const o: Op = { op: n.local, sel: attr(el, 'sel') ?? '', content: childElements(el).map((c) => serializeXml(c)) };
    const pos = attr(el, 'pos');
    if (pos !== undefined) o.pos = pos;
    return o;
  });
  return { root, ops };
}

function expectError(fn: () => unknown, condition: string, reason?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PidfDiffError, `expected PidfDiffError, got ${String(e)}`);
    assert.equal(e.condition, condition, e.reason);
    if (reason) assert.match(e.reason, reason);
    return true;
  });
}

/** A base with a few tuples and enough content that small changes are worth a diff. */
function baseParts(): Omit<PresenceDoc, 'entity'> {
  return {
    tuples: [
      tuple('t1', 'open', 'sip:bob@phone.example.org', '0.8'),
      tuple('t2', 'closed', 'sip:bob@desk.example.org', '0.5'),
      tuple('t3', 'open', 'im:bob@example.org'),
      tuple('t4', 'open', 'mailto:bob@example.org', '0.1'),
    ],
    notes: [{ text: 'Back after lunch', lang: 'en' }],
    persons: [person('p1', ['on-the-phone'])],
    devices: [makeDevice({ id: 'd1', deviceId: 'urn:uuid:6f1c0d2e-8a45-4c53-9d2f-1a2b3c4d5e6f' })],
    extensions: [],
  };
}

// ---------------------------------------------------------------------------
// Constants and pidf-full
// ---------------------------------------------------------------------------

describe('pidf-diff: constants and pidf-full', () => {
  it('uses the RFC 5262 namespace and content type', () => {
    assert.equal(PIDF_DIFF_NS, 'urn:ietf:params:xml:ns:pidf-diff');
    assert.equal(PIDF_DIFF_CONTENT_TYPE, 'application/pidf-diff+xml');
  });

  it('wraps the PIDF children in <pidf-full> with entity and version', () => {
    const pidf = doc(baseParts());
    const full = pidfFull(pidf, 1);
    assert.ok(full.startsWith('<?xml version="1.0" encoding="UTF-8"?><p:pidf-full xmlns="urn:ietf:params:xml:ns:pidf" xmlns:p="urn:ietf:params:xml:ns:pidf-diff"'));
    const root = parseXml(full).root;
    const scope = NamespaceScope.root().child(root);
    assert.deepEqual(scope.expand(root.name), { ns: PIDF_DIFF_NS, local: 'pidf-full' });
    assert.equal(attr(root, 'version'), '1');
    assert.equal(attr(root, 'entity'), ENTITY);
    // Children exactly as in the PIDF document (RFC 5262 section 3).
    const presence = parseXml(pidf).root;
    assert.deepEqual(childElements(root).map((c) => serializeXml(c)), childElements(presence).map((c) => serializeXml(c)));
  });

  it('applies a pidf-full without a base and returns the same document and version', () => {
    const pidf = doc(baseParts());
    const r = applyPidfPatch(undefined, pidfFull(pidf, 1));
    assert.equal(r.version, 1);
    assert.equal(r.pidf, pidf);
    assert.equal(canon(r.pidf), canon(pidf));
  });

  it('picks another prefix when p is taken by the document', () => {
    const ext: XmlElement = { type: 'element', name: 'p:flag', attributes: { 'xmlns:p': 'urn:example:p' }, elements: [{ type: 'text', text: 'x' }] };
    const pidf = doc({ tuples: [tuple('t1', 'open')], extensions: [ext] });
    assert.match(pidf, /xmlns:p="urn:example:p"/);
    const full = pidfFull(pidf, 4);
    assert.match(full, /<p1:pidf-full /);
    assert.equal(applyPidfPatch(undefined, full).pidf, pidf);
  });

  it('refuses a bad version number', () => {
    const pidf = doc(baseParts());
    assert.throws(() => pidfFull(pidf, -1), RangeError);
    assert.throws(() => pidfFull(pidf, 1.5), RangeError);
    assert.throws(() => pidfDiff(pidf, pidf, 2 ** 32), RangeError);
  });
});

// ---------------------------------------------------------------------------
// Writing diffs
// ---------------------------------------------------------------------------

describe('pidf-diff: pidfDiff', () => {
  it('a tuple status change is one replace of that tuple', () => {
    const a = baseParts();
    const b = baseParts();
    b.tuples[1] = tuple('t2', 'open', 'sip:bob@desk.example.org', '0.5');
    const prev = doc(a);
    const cur = doc(b);
    const diff = pidfDiff(prev, cur, 2);
    assert.ok(diff);
    const { ops } = opsOf(diff);
    assert.equal(ops.length, 1);
    assert.equal(ops[0]?.op, 'replace');
    assert.equal(ops[0]?.sel, "pidf:presence/pidf:tuple[@id='t2']");
    assert.match(ops[0]?.content[0] ?? '', /^<tuple id="t2"><status><basic>open<\/basic><\/status>/);
    assert.equal(canon(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf), canon(cur));
  });

  it('declares the selector prefixes on the root and writes entity and version', () => {
    const a = baseParts();
    const b = baseParts();
    b.tuples[0] = tuple('t1', 'closed', 'sip:bob@phone.example.org', '0.8');
    const diff = pidfDiff(doc(a), doc(b), 42);
    assert.ok(diff);
    const { root } = opsOf(diff);
    assert.equal(attr(root, 'version'), '42');
    assert.equal(attr(root, 'entity'), ENTITY);
    assert.equal(attr(root, 'xmlns'), PIDF_NS);
    assert.equal(attr(root, 'xmlns:p'), PIDF_DIFF_NS);
    assert.equal(attr(root, 'xmlns:pidf'), PIDF_NS);
    assert.equal(attr(root, 'xmlns:dm'), DM_NS);
    assert.equal(root.name, 'p:pidf-diff');
  });

  it('an added tuple is added at its place (prepend, after a sibling, or appended)', () => {
    const prev = doc(baseParts());
    // In the middle: after t2.
    const mid = baseParts();
    mid.tuples.splice(2, 0, tuple('t2b', 'open', 'sip:bob@tablet.example.org'));
    let diff = pidfDiff(prev, doc(mid), 2);
    assert.ok(diff);
    let ops = opsOf(diff).ops;
    assert.deepEqual(
      ops.map((o) => [o.op, o.sel, o.pos]),
      [['add', "pidf:presence/pidf:tuple[@id='t2']", 'after']],
    );
    assert.equal(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf, doc(mid));
    // First: prepend.
    const first = baseParts();
    first.tuples.unshift(tuple('t0', 'closed'));
    diff = pidfDiff(prev, doc(first), 2);
    assert.ok(diff);
    ops = opsOf(diff).ops;
    assert.deepEqual(
      ops.map((o) => [o.op, o.sel, o.pos]),
      [['add', 'pidf:presence', 'prepend']],
    );
    assert.equal(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf, doc(first));
    // Last tuple: after t4, so it stays before the notes (PIDF order).
    const last = baseParts();
    last.tuples.push(tuple('t5', 'open'));
    diff = pidfDiff(prev, doc(last), 2);
    assert.ok(diff);
    ops = opsOf(diff).ops;
    assert.deepEqual(
      ops.map((o) => [o.op, o.sel, o.pos]),
      [['add', "pidf:presence/pidf:tuple[@id='t4']", 'after']],
    );
    assert.equal(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf, doc(last));
    // At the very end of the document: a plain append.
    const dev = baseParts();
    dev.devices.push(makeDevice({ id: 'd2', deviceId: 'urn:uuid:00000000-0000-4000-8000-000000000002' }));
    diff = pidfDiff(prev, doc(dev), 2);
    assert.ok(diff);
    ops = opsOf(diff).ops;
    assert.deepEqual(
      ops.map((o) => [o.op, o.sel, o.pos]),
      [['add', 'pidf:presence', undefined]],
    );
    assert.equal(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf, doc(dev));
  });

  it('a removed tuple is one remove', () => {
    const prev = doc(baseParts());
    const b = baseParts();
    b.tuples.splice(2, 1);
    const diff = pidfDiff(prev, doc(b), 2);
    assert.ok(diff);
    const { ops } = opsOf(diff);
    assert.deepEqual(ops, [{ op: 'remove', sel: "pidf:presence/pidf:tuple[@id='t3']", content: [] }]);
    assert.equal(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf, doc(b));
  });

  it('a person activity change is one replace of dm:person', () => {
    const prev = doc(baseParts());
    const b = baseParts();
    b.persons = [person('p1', ['meeting', 'busy'])];
    const diff = pidfDiff(prev, doc(b), 2);
    assert.ok(diff);
    const { ops } = opsOf(diff);
    assert.equal(ops.length, 1);
    assert.equal(ops[0]?.op, 'replace');
    assert.equal(ops[0]?.sel, "pidf:presence/dm:person[@id='p1']");
    assert.match(ops[0]?.content[0] ?? '', /<rpid:meeting\/><rpid:busy\/>/);
    const r = applyPidfPatch({ pidf: prev, version: 1 }, diff);
    assert.deepEqual(parsePidf(r.pidf).persons[0]?.activities, ['meeting', 'busy']);
    assert.equal(canon(r.pidf), canon(doc(b)));
  });

  it('presence notes are matched by position: change, add, remove', () => {
    const prev = doc(baseParts());
    const changed = baseParts();
    changed.notes = [{ text: 'In a meeting until 3', lang: 'en' }];
    let diff = pidfDiff(prev, doc(changed), 2);
    assert.ok(diff);
    assert.deepEqual(
      opsOf(diff).ops.map((o) => [o.op, o.sel]),
      [['replace', 'pidf:presence/pidf:note[1]']],
    );
    assert.equal(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf, doc(changed));

    const added = baseParts();
    added.notes.push({ text: 'Zurück nach dem Mittagessen', lang: 'de' });
    diff = pidfDiff(prev, doc(added), 2);
    assert.ok(diff);
    assert.deepEqual(
      opsOf(diff).ops.map((o) => [o.op, o.sel, o.pos]),
      [['add', 'pidf:presence/pidf:note[1]', 'after']],
    );
    assert.equal(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf, doc(added));

    const removed = baseParts();
    removed.notes = [];
    diff = pidfDiff(prev, doc(removed), 2);
    assert.ok(diff);
    assert.deepEqual(
      opsOf(diff).ops.map((o) => [o.op, o.sel]),
      [['remove', 'pidf:presence/pidf:note[1]']],
    );
    assert.equal(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf, doc(removed));
  });

  it('unchanged documents give undefined', () => {
    const a = doc(baseParts());
    assert.equal(pidfDiff(a, a, 2), undefined);
    assert.equal(pidfDiff(a, doc(baseParts()), 2), undefined);
    // Same state written differently (white space between elements): no operation either.
    const pretty = a.replace(/></g, '>\n  <');
    assert.notEqual(pretty, a);
    assert.equal(pidfDiff(a, pretty, 2), undefined);
  });

  it('returns undefined when the diff would be bigger than the full document', () => {
    const prev = doc({ tuples: [tuple('a1', 'open'), tuple('a2', 'closed')], notes: [{ text: 'one' }] });
    const cur = doc({ tuples: [tuple('b1', 'closed'), tuple('b2', 'open')], notes: [{ text: 'two' }] });
    assert.notEqual(prev, cur);
    assert.equal(pidfDiff(prev, cur, 2), undefined);
    // The caller then sends full state, which applies on top of the old version.
    const r = applyPidfPatch({ pidf: prev, version: 1 }, pidfFull(cur, 2));
    assert.deepEqual(r, { pidf: cur, version: 2 });
  });

  it('returns undefined for a change of entity (full state needed)', () => {
    const prev = doc(baseParts());
    const cur = serializePidf({ entity: 'sip:carol@example.org', ...baseParts() });
    assert.equal(pidfDiff(prev, cur, 2), undefined);
  });

  it('moved tuples are removed and added again at their new place', () => {
    const a = baseParts();
    const b = baseParts();
    const moved = b.tuples.pop() as Tuple;
    b.tuples.unshift(moved);
    const prev = doc(a);
    const diff = pidfDiff(prev, doc(b), 2);
    assert.ok(diff);
    assert.deepEqual(
      opsOf(diff).ops.map((o) => [o.op, o.sel, o.pos]),
      [
        ['remove', "pidf:presence/pidf:tuple[@id='t4']", undefined],
        ['add', 'pidf:presence', 'prepend'],
      ],
    );
    assert.equal(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf, doc(b));
  });

  it('escapes quotes of ids in selectors (the other quote, or a position when both occur)', () => {
    const a = baseParts();
    a.tuples.push(tuple("it's", 'open', 'sip:its@example.org'), tuple('say "hi"', 'open', 'sip:hi@example.org'), tuple(`both'"q`, 'open', 'sip:both@example.org'));
    const b = baseParts();
    b.tuples.push(tuple("it's", 'closed', 'sip:its@example.org'), tuple('say "hi"', 'closed', 'sip:hi@example.org'), tuple(`both'"q`, 'closed', 'sip:both@example.org'));
    const prev = doc(a);
    const cur = doc(b);
    const diff = pidfDiff(prev, cur, 2);
    assert.ok(diff);
    assert.deepEqual(
      opsOf(diff).ops.map((o) => [o.op, o.sel]),
      [
        ['replace', `pidf:presence/pidf:tuple[@id="it's"]`],
        ['replace', `pidf:presence/pidf:tuple[@id='say "hi"']`],
        ['replace', 'pidf:presence/pidf:tuple[7]'],
      ],
    );
    // In the XML attribute the double quotes are references.
    assert.ok(diff.includes(`sel="pidf:presence/pidf:tuple[@id=&quot;it's&quot;]"`));
    assert.ok(diff.includes(`sel="pidf:presence/pidf:tuple[@id='say &quot;hi&quot;']"`));
    assert.equal(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf, cur);

    // A positional selector is computed against the document as the earlier operations left it.
    const c = baseParts();
    c.tuples.splice(0, 2);
    c.tuples.push(tuple("it's", 'open', 'sip:its@example.org'), tuple('say "hi"', 'open', 'sip:hi@example.org'));
    const diff2 = pidfDiff(prev, doc(c), 3);
    assert.ok(diff2);
    assert.deepEqual(
      opsOf(diff2).ops.map((o) => [o.op, o.sel]),
      [
        ['remove', "pidf:presence/pidf:tuple[@id='t1']"],
        ['remove', "pidf:presence/pidf:tuple[@id='t2']"],
        ['remove', 'pidf:presence/pidf:tuple[5]'],
      ],
    );
    assert.equal(applyPidfPatch({ pidf: prev, version: 2 }, diff2).pidf, doc(c));
  });

  it('declares namespaces of added extensions and of selectors for elements gone from the current document', () => {
    const ext: XmlElement = { type: 'element', name: 'x:ring', attributes: { 'xmlns:x': 'urn:example:mood-ring' }, elements: [{ type: 'text', text: 'teal' }] };
    const a = baseParts();
    const b = baseParts();
    b.extensions = [ext];
    b.persons = [];
    b.devices = [];
    const prev = doc(a);
    const cur = doc(b);
    assert.ok(!cur.includes('xmlns:dm='));
    const diff = pidfDiff(prev, cur, 2);
    assert.ok(diff);
    const { root, ops } = opsOf(diff);
    assert.equal(attr(root, 'xmlns:x'), 'urn:example:mood-ring');
    assert.equal(attr(root, 'xmlns:dm'), DM_NS);
    assert.deepEqual(
      ops.map((o) => [o.op, o.sel]),
      [
        ['remove', "pidf:presence/dm:person[@id='p1']"],
        ['remove', "pidf:presence/dm:device[@id='d1']"],
        ['add', 'pidf:presence'],
      ],
    );
    assert.equal(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf, cur);
    // And back: the extension is selected by position with its own prefix.
    const back = pidfDiff(cur, prev, 3);
    assert.ok(back);
    assert.ok(opsOf(back).ops.some((o) => o.op === 'remove' && o.sel === 'pidf:presence/x:ring[1]'));
    assert.equal(applyPidfPatch({ pidf: cur, version: 2 }, back).pidf, prev);
  });

  it('refuses input that is not PIDF', () => {
    expectError(() => pidfDiff('<?xml version="1.0"?><foo/>', doc(baseParts()), 2), 'invalid-pidf');
    expectError(() => pidfDiff(doc(baseParts()), '<presence', 2), 'invalid-diff-format', /malformed/);
  });
});

// ---------------------------------------------------------------------------
// Applying
// ---------------------------------------------------------------------------

describe('pidf-diff: applyPidfPatch', () => {
  const prev = doc(baseParts());
  const changed = baseParts();
  changed.tuples[0] = tuple('t1', 'closed', 'sip:bob@phone.example.org', '0.8');
  const cur = doc(changed);

  it('checks the version: one above the base for a diff, above the base for full state', () => {
    const diff = pidfDiff(prev, cur, 5);
    assert.ok(diff);
    assert.deepEqual(applyPidfPatch({ pidf: prev, version: 4 }, diff), { pidf: cur, version: 5 });
    expectError(() => applyPidfPatch({ pidf: prev, version: 3 }, diff), 'version-gap', /1 notification/);
    expectError(() => applyPidfPatch({ pidf: prev, version: 5 }, diff), 'stale-version');
    expectError(() => applyPidfPatch({ pidf: prev, version: 9 }, diff), 'stale-version');
    expectError(() => applyPidfPatch(undefined, diff), 'no-base-document');
    const full = pidfFull(cur, 5);
    expectError(() => applyPidfPatch({ pidf: prev, version: 5 }, full), 'stale-version');
    assert.deepEqual(applyPidfPatch({ pidf: prev, version: 2 }, full), { pidf: cur, version: 5 });
  });

  it('refuses a missing or malformed version', () => {
    const full = pidfFull(cur, 5);
    expectError(() => applyPidfPatch(undefined, full.replace(' version="5"', '')), 'invalid-attribute-value', /version/);
    expectError(() => applyPidfPatch(undefined, full.replace('version="5"', 'version="-1"')), 'invalid-attribute-value');
    expectError(() => applyPidfPatch(undefined, full.replace('version="5"', 'version="4294967296"')), 'invalid-attribute-value');
  });

  it('throws when a selector matches nothing', () => {
    const diff = pidfDiff(prev, cur, 2);
    assert.ok(diff);
    const other = doc({ ...baseParts(), tuples: [tuple('zz', 'open')] });
    expectError(() => applyPidfPatch({ pidf: other, version: 1 }, diff), 'unlocated-node', /matches nothing/);
  });

  it('refuses a DOCTYPE (no entity can be declared)', () => {
    const evil =
      '<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE p:pidf-full [<!ENTITY boom "x">]>' +
      `<p:pidf-full xmlns="${PIDF_NS}" xmlns:p="${PIDF_DIFF_NS}" entity="${ENTITY}" version="1"><note>&boom;</note></p:pidf-full>`;
    expectError(() => applyPidfPatch(undefined, evil), 'invalid-diff-format', /DOCTYPE/);
    const evilPidf = `<?xml version="1.0"?><!DOCTYPE presence SYSTEM "file:///etc/passwd"><presence xmlns="${PIDF_NS}" entity="${ENTITY}"/>`;
    expectError(() => pidfDiff(evilPidf, cur, 2), 'invalid-diff-format', /DOCTYPE/);
    expectError(() => pidfFull(evilPidf, 1), 'invalid-diff-format', /DOCTYPE/);
    expectError(() => applyPidfPatch({ pidf: evilPidf, version: 1 }, pidfDiff(prev, cur, 2) as string), 'invalid-diff-format', /DOCTYPE/);
  });

  it('refuses other roots, an entity mismatch and results that are not PIDF', () => {
    expectError(() => applyPidfPatch(undefined, prev), 'invalid-diff-format', /pidf-full or pidf-diff/);
    const diff = pidfDiff(prev, cur, 2);
    assert.ok(diff);
    expectError(() => applyPidfPatch({ pidf: prev, version: 1 }, diff.replace(`entity="${ENTITY}"`, 'entity="sip:eve@example.org"')), 'invalid-attribute-value', /entity/);
    const breaking =
      `<p:pidf-diff xmlns="${PIDF_NS}" xmlns:p="${PIDF_DIFF_NS}" version="2">` +
      `<p:remove sel="presence/tuple[@id='t1']/status"/></p:pidf-diff>`;
    expectError(() => applyPidfPatch({ pidf: prev, version: 1 }, breaking), 'invalid-pidf', /no status/);
    const rootRemoval = `<p:pidf-diff xmlns:p="${PIDF_DIFF_NS}" version="2"><p:remove sel="*"/></p:pidf-diff>`;
    expectError(() => applyPidfPatch({ pidf: prev, version: 1 }, rootRemoval), 'invalid-root-element-operation');
    const badSel = `<p:pidf-diff xmlns:p="${PIDF_DIFF_NS}" version="2"><p:remove sel="*/x:tuple"/></p:pidf-diff>`;
    expectError(() => applyPidfPatch({ pidf: prev, version: 1 }, badSel), 'invalid-namespace-prefix');
    const twoNodes = `<p:pidf-diff xmlns="${PIDF_NS}" xmlns:p="${PIDF_DIFF_NS}" version="2"><p:remove sel="*/tuple"/></p:pidf-diff>`;
    expectError(() => applyPidfPatch({ pidf: prev, version: 1 }, twoNodes), 'unlocated-node', /4 nodes/);
  });

  it('applies a hand-written patch in the style of the RFC 5262 examples', () => {
    // Unprefixed selector names take the diff's default namespace (RFC 5261 section 4.2.1),
    // text() and @attribute targets, pos="before", ws on a remove.
    const base = doc({
      tuples: [tuple('svc1', 'closed', 'sip:bob@phone.example.org', '0.5'), tuple('svc2', 'open', 'im:bob@example.org', '0.2')],
      notes: [{ text: 'Full state' }],
      persons: [person('pp', ['busy', 'on-the-phone'])],
    });
    const patch = `<?xml version="1.0" encoding="UTF-8"?>
<p:pidf-diff xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:p="urn:ietf:params:xml:ns:pidf-diff"
    xmlns:r="urn:ietf:params:xml:ns:pidf:rpid"
    xmlns:d="urn:ietf:params:xml:ns:pidf:data-model"
    entity="${ENTITY}" version="8">
  <p:add sel="presence/note" pos="before">
    <tuple id="svc3">
      <status><basic>open</basic></status>
      <contact>sip:bob@laptop.example.org</contact>
    </tuple>
  </p:add>
  <p:replace sel="*/tuple[@id='svc1']/status/basic/text()">open</p:replace>
  <p:remove sel="*/d:person/r:activities/r:busy" ws="after"/>
  <p:replace sel="*/tuple[@id='svc2']/contact/@priority">0.9</p:replace>
</p:pidf-diff>`;
    const r = applyPidfPatch({ pidf: base, version: 7 }, patch);
    assert.equal(r.version, 8);
    const expected = doc({
      tuples: [
        tuple('svc1', 'open', 'sip:bob@phone.example.org', '0.5'),
        tuple('svc2', 'open', 'im:bob@example.org', '0.9'),
        tuple('svc3', 'open', 'sip:bob@laptop.example.org'),
      ],
      notes: [{ text: 'Full state' }],
      persons: [person('pp', ['on-the-phone'])],
    });
    assert.equal(canon(r.pidf), canon(expected));
    assert.equal(r.pidf, expected);
  });

  it('supports the rest of the RFC 5261 selector subset', () => {
    const base = doc({
      tuples: [tuple('svc1', 'closed', 'sip:bob@phone.example.org', '0.5'), tuple('svc2', 'open', 'im:bob@example.org')],
      notes: [{ text: 'first' }, { text: 'second' }],
      persons: [person('pp', ['busy'])],
    });
    const patch =
      `<p:pidf-diff xmlns:p="${PIDF_DIFF_NS}" xmlns:x="${PIDF_NS}" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" version="3">` +
      // id() function, attribute added with type
      `<p:add sel="id('svc2')/x:contact" type="@priority">0.3</p:add>` +
      // child value predicate, attribute removal
      `<p:remove sel="/x:presence/x:tuple[x:contact='sip:bob@phone.example.org']/x:contact/@priority"/>` +
      // self value predicate, whole element replaced
      `<p:replace sel="x:presence/x:note[.='second']"><x:note xml:lang="en">third</x:note></p:replace>` +
      // positional predicate and text() removal then re-add
      `<p:remove sel="*/x:note[1]/text()"/>` +
      `<p:add sel="*/x:note[1]">premier</p:add>` +
      // prepend into an element
      `<p:add sel="*/*[@id='pp']/r:activities" pos="prepend"><r:meeting/></p:add>` +
      // namespace declaration added on the root, then used
      `<p:add sel="*" type="namespace::ci">urn:ietf:params:xml:ns:pidf:cipid</p:add>` +
      `<p:add sel="*/x:tuple[@id='svc1']/x:status" pos="after"><c:homepage xmlns:c="urn:ietf:params:xml:ns:pidf:cipid">http://bob.example.org/</c:homepage></p:add>` +
      `</p:pidf-diff>`;
    const r = applyPidfPatch({ pidf: base, version: 2 }, patch);
    const expected = doc({
      tuples: [
        makeTuple({
          id: 'svc1',
          basic: 'closed',
          contact: { uri: 'sip:bob@phone.example.org' },
          elements: [presenceElement(CIPID_NS, 'homepage', 'http://bob.example.org/')],
        }),
        tuple('svc2', 'open', 'im:bob@example.org', '0.3'),
      ],
      notes: [{ text: 'premier' }, { text: 'third', lang: 'en' }],
      persons: [person('pp', ['meeting', 'busy'])],
    });
    assert.equal(r.pidf, expected);
  });

  it('locates an element by id() alone', () => {
    const base = doc({ tuples: [tuple('svc1', 'open'), tuple('svc2', 'closed')] });
    const patch =
      `<p:pidf-diff xmlns="${PIDF_NS}" xmlns:p="${PIDF_DIFF_NS}" version="2">` +
      `<p:replace sel="id('svc2')"><tuple id="svc2"><status><basic>open</basic></status></tuple></p:replace>` +
      `<p:remove sel="id(&quot;svc1&quot;)"/></p:pidf-diff>`;
    assert.equal(applyPidfPatch({ pidf: base, version: 1 }, patch).pidf, doc({ tuples: [makeTuple({ id: 'svc2', basic: 'open' })] }));
    const missing = `<p:pidf-diff xmlns:p="${PIDF_DIFF_NS}" version="2"><p:remove sel="id('nope')"/></p:pidf-diff>`;
    expectError(() => applyPidfPatch({ pidf: base, version: 1 }, missing), 'unlocated-node');
  });
});

// ---------------------------------------------------------------------------
// Round trips over random sequences
// ---------------------------------------------------------------------------

/** mulberry32: a small deterministic PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ID_POOL = ['t1', 't2', 't3', 'pc', 'mobile', 'desk-7', "o'brien", 'quote"d', `mix'"ed`, 'a&b<c', 'x y'];
const ACTIVITIES = ['away', 'busy', 'meeting', 'on-the-phone', 'lunch', 'travel', 'vacation'];
const NOTE_TEXTS = ['Back soon', 'In a meeting', 'On holiday until Monday', 'Ask me about <xml> & "quotes"', 'Ça va ?'];
const EXT_NS = ['urn:example:one', 'urn:example:two'];

type Model = Omit<PresenceDoc, 'entity'>;

function randomTuple(rnd: () => number, id: string): Tuple {
  const n = Math.floor(rnd() * 1000);
  const notes: Note[] = rnd() < 0.3 ? [{ text: NOTE_TEXTS[n % NOTE_TEXTS.length] as string }] : [];
  const elements = rnd() < 0.4 ? [rpidElement('class', rnd() < 0.5 ? 'work' : 'home')] : [];
  return makeTuple({
    id,
    basic: rnd() < 0.5 ? 'open' : 'closed',
    contact: { uri: `sip:user${n}@host${n % 7}.example.org`, ...(rnd() < 0.5 ? { priority: (n % 10) / 10 + '' } : {}) },
    notes,
    elements,
  });
}

function randomExtension(rnd: () => number): XmlElement {
  const k = Math.floor(rnd() * EXT_NS.length);
  const p = k === 0 ? 'one' : 'two';
  return { type: 'element', name: `${p}:flag`, attributes: { [`xmlns:${p}`]: EXT_NS[k] as string, level: String(Math.floor(rnd() * 5)) }, elements: [{ type: 'text', text: `v${Math.floor(rnd() * 3)}` }] };
}

function pick<T>(rnd: () => number, list: readonly T[]): T {
  return list[Math.floor(rnd() * list.length)] as T;
}

function mutate(rnd: () => number, m: Model): Model {
  const out: Model = { tuples: [...m.tuples], notes: [...m.notes], persons: [...m.persons], devices: [...m.devices], extensions: [...m.extensions] };
  const edits = 1 + Math.floor(rnd() * 3);
  for (let e = 0; e < edits; e++) {
    const r = rnd();
    const usedIds = new Set([...out.tuples.map((t) => t.id), ...out.persons.map((p) => p.id), ...out.devices.map((d) => d.id)]);
    const freeIds = ID_POOL.filter((id) => !usedIds.has(id));
    if (r < 0.15 && freeIds.length > 0) {
      out.tuples.splice(Math.floor(rnd() * (out.tuples.length + 1)), 0, randomTuple(rnd, pick(rnd, freeIds)));
    } else if (r < 0.25 && out.tuples.length > 0) {
      out.tuples.splice(Math.floor(rnd() * out.tuples.length), 1);
    } else if (r < 0.45 && out.tuples.length > 0) {
      const i = Math.floor(rnd() * out.tuples.length);
      const t = out.tuples[i] as Tuple;
      out.tuples[i] = makeTuple({ id: t.id, basic: t.basic === 'open' ? 'closed' : 'open', notes: t.notes, elements: t.elements, ...(t.contact ? { contact: t.contact } : {}) });
    } else if (r < 0.52 && out.tuples.length > 1) {
      const [moved] = out.tuples.splice(Math.floor(rnd() * out.tuples.length), 1);
      out.tuples.splice(Math.floor(rnd() * (out.tuples.length + 1)), 0, moved as Tuple);
    } else if (r < 0.65) {
      if (out.persons.length === 0 || rnd() < 0.8) {
        const id = out.persons[0]?.id ?? pick(rnd, freeIds.length > 0 ? freeIds : ['person-x']);
        if (usedIds.has(id) && !out.persons.some((p) => p.id === id)) continue;
        out.persons = [person(id, [pick(rnd, ACTIVITIES), ...(rnd() < 0.3 ? [pick(rnd, ACTIVITIES)] : [])].filter((v, k, a) => a.indexOf(v) === k))];
      } else out.persons = [];
    } else if (r < 0.75) {
      const k = Math.floor(rnd() * 3);
      if (rnd() < 0.5 && out.notes.length > 0) out.notes.splice(Math.floor(rnd() * out.notes.length), 1);
      else out.notes.splice(Math.min(k, out.notes.length), 0, { text: pick(rnd, NOTE_TEXTS), ...(rnd() < 0.5 ? { lang: pick(rnd, ['en', 'fr', 'de']) } : {}) });
    } else if (r < 0.85) {
      if (out.devices.length > 0 && rnd() < 0.4) out.devices.splice(Math.floor(rnd() * out.devices.length), 1);
      else if (freeIds.length > 0) {
        const d: Device = makeDevice({ id: pick(rnd, freeIds), deviceId: `urn:uuid:00000000-0000-4000-8000-${String(Math.floor(rnd() * 1e12)).padStart(12, '0')}` });
        out.devices.push(d);
      }
    } else {
      if (out.extensions.length > 0 && rnd() < 0.4) out.extensions.splice(Math.floor(rnd() * out.extensions.length), 1);
      else if (out.extensions.length > 0 && rnd() < 0.5) out.extensions[Math.floor(rnd() * out.extensions.length)] = randomExtension(rnd);
      else out.extensions.push(randomExtension(rnd));
    }
  }
  return out;
}

describe('pidf-diff: round trips', () => {
  for (const seed of [1, 7, 42, 2024, 99991]) {
    it(`a watcher following 150 changes stays in sync (seed ${seed})`, () => {
      const rnd = prng(seed);
      let model: Model = { tuples: [randomTuple(rnd, 't1'), randomTuple(rnd, 't2'), randomTuple(rnd, 'pc')], notes: [], persons: [], devices: [], extensions: [] };
      let sent = doc(model);
      let version = 1; // RFC 5263 section 4.4: the first notification has version 1 and full state
      let watcher = applyPidfPatch(undefined, pidfFull(sent, version));
      assert.equal(watcher.pidf, sent);
      let diffs = 0;
      let fulls = 0;
      for (let step = 0; step < 150; step++) {
        model = mutate(rnd, model);
        const cur = doc(model);
        if (cur === sent) continue; // nothing changed: no NOTIFY, no new version
        version++;
        const diff = pidfDiff(sent, cur, version);
        let body: string;
        if (diff === undefined) {
          fulls++;
          body = pidfFull(cur, version);
        } else {
          diffs++;
          assert.ok(Buffer.byteLength(diff) < Buffer.byteLength(pidfFull(cur, version)));
          body = diff;
        }
        watcher = applyPidfPatch(watcher, body);
        assert.equal(watcher.version, version);
        assert.equal(canon(watcher.pidf), canon(cur), `step ${step}: ${body}`);
        assert.equal(watcher.pidf, cur);
        sent = cur;
      }
      assert.ok(diffs > fulls, `diffs ${diffs}, fulls ${fulls}`);
    });
  }
});
