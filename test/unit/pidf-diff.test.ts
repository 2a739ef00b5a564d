import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  NamespaceScope,
  attr,
  childElements,
  parseXml,
  serializeXml,
  type XmlElement,
} from '../../as/src/xml/xml-tree.js';
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
  tupleInit,
  personInit,
  deviceInit,
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
  pidfDiff,
  pidfFull,
} from '../../as/src/presence/pidf/pidf-diff.js';
import { applyPidfPatch } from '../helpers/pidf-patch.js';

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

function tuple(
  id: string,
  basic: 'open' | 'closed',
  uri = `sip:${id.replace(/[^a-z0-9]/gi, '')}@host.example.org`,
  priority?: string,
): Tuple {
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
  /** Text content of the operation (a text() replace), when there is any. */
  text?: string;
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
    const text = (el.elements ?? [])
      .filter((n) => n.type === 'text')
      .map((n) => (n.type === 'text' ? n.text : ''))
      .join('');
    if (text !== '') o.text = text;
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
    assert.ok(
      full.startsWith(
        '<?xml version="1.0" encoding="UTF-8"?><p:pidf-full xmlns="urn:ietf:params:xml:ns:pidf" xmlns:p="urn:ietf:params:xml:ns:pidf-diff"',
      ),
    );
    const root = parseXml(full).root;
    const scope = NamespaceScope.root().child(root);
    assert.deepEqual(scope.expand(root.name), { ns: PIDF_DIFF_NS, local: 'pidf-full' });
    assert.equal(attr(root, 'version'), '1');
    assert.equal(attr(root, 'entity'), ENTITY);
    // Children exactly as in the PIDF document (RFC 5262 section 3).
    const presence = parseXml(pidf).root;
    assert.deepEqual(
      childElements(root).map((c) => serializeXml(c)),
      childElements(presence).map((c) => serializeXml(c)),
    );
  });

  it('applies a pidf-full without a base and returns the same document and version', () => {
    const pidf = doc(baseParts());
    const r = applyPidfPatch(undefined, pidfFull(pidf, 1));
    assert.equal(r.version, 1);
    assert.equal(r.pidf, pidf);
    assert.equal(canon(r.pidf), canon(pidf));
  });

  it('picks another prefix when p is taken by the document', () => {
    const ext: XmlElement = {
      type: 'element',
      name: 'p:flag',
      attributes: { 'xmlns:p': 'urn:example:p' },
      elements: [{ type: 'text', text: 'x' }],
    };
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
  it('a tuple status change is one replace of the text of its basic', () => {
    const a = baseParts();
    const b = baseParts();
    b.tuples[1] = tuple('t2', 'open', 'sip:bob@desk.example.org', '0.5');
    const prev = doc(a);
    const cur = doc(b);
    const diff = pidfDiff(prev, cur, 2);
    assert.ok(diff);
    const { ops } = opsOf(diff);
    assert.deepEqual(ops, [
      {
        op: 'replace',
        sel: "pidf:presence/pidf:tuple[@id='t2']/pidf:status/pidf:basic/text()",
        content: [],
        text: 'open',
      },
    ]);
    assert.equal(canon(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf), canon(cur));
    assert.equal(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf, cur);
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
    assert.equal(attr(root, 'xmlns:p'), PIDF_DIFF_NS);
    assert.equal(attr(root, 'xmlns:pidf'), PIDF_NS);
    assert.equal(root.name, 'p:pidf-diff');
    // Only what the operations use: a text replace needs neither the default namespace nor dm.
    assert.equal(attr(root, 'xmlns'), undefined);
    assert.equal(attr(root, 'xmlns:dm'), undefined);
    assert.equal(attr(root, 'xmlns:rpid'), undefined);
    // No XML declaration (optional; a fixed cost on every diff).
    assert.ok(
      diff.startsWith(
        '<p:pidf-diff xmlns:p="urn:ietf:params:xml:ns:pidf-diff" xmlns:pidf="urn:ietf:params:xml:ns:pidf" ',
      ),
      diff,
    );
  });

  it('declares the namespaces the added content uses, as the current document does', () => {
    const prev = doc(baseParts());
    const b = baseParts();
    b.tuples.push(makeTuple({ id: 't5', basic: 'open', elements: [rpidElement('class', 'work')] }));
    b.persons = [person('p1', ['meeting'])];
    const cur = doc(b);
    const diff = pidfDiff(prev, cur, 2);
    assert.ok(diff);
    const { root, ops } = opsOf(diff);
    // Default namespace first, as in the RFC 5262 examples and in <pidf-full>.
    assert.ok(diff.startsWith(`<p:pidf-diff xmlns="${PIDF_NS}" xmlns:p="${PIDF_DIFF_NS}" `), diff);
    assert.equal(attr(root, 'xmlns:rpid'), 'urn:ietf:params:xml:ns:pidf:rpid');
    assert.equal(attr(root, 'xmlns:dm'), DM_NS);
    assert.deepEqual(
      ops.map((o) => [o.op, o.sel, o.pos]),
      [
        ['replace', "pidf:presence/dm:person[@id='p1']/rpid:activities[1]", undefined],
        ['add', "pidf:presence/pidf:tuple[@id='t4']", 'after'],
      ],
    );
    assert.equal(
      ops[1]?.content[0],
      '<tuple id="t5"><status><basic>open</basic></status><rpid:class>work</rpid:class></tuple>',
    );
    assert.equal(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf, cur);
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

  it('a person activity change is one replace of its rpid:activities', () => {
    const prev = doc(baseParts());
    const b = baseParts();
    b.persons = [person('p1', ['meeting', 'busy'])];
    const diff = pidfDiff(prev, doc(b), 2);
    assert.ok(diff);
    const { ops } = opsOf(diff);
    assert.deepEqual(ops, [
      {
        op: 'replace',
        sel: "pidf:presence/dm:person[@id='p1']/rpid:activities[1]",
        content: ['<rpid:activities><rpid:meeting/><rpid:busy/></rpid:activities>'],
      },
    ]);
    const r = applyPidfPatch({ pidf: prev, version: 1 }, diff);
    assert.deepEqual(parsePidf(r.pidf).persons[0]?.activities, ['meeting', 'busy']);
    assert.equal(canon(r.pidf), canon(doc(b)));
    assert.equal(r.pidf, doc(b));
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
    a.tuples.push(
      tuple("it's", 'open', 'sip:its@example.org'),
      tuple('say "hi"', 'open', 'sip:hi@example.org'),
      tuple(`both'"q`, 'open', 'sip:both@example.org'),
    );
    const b = baseParts();
    b.tuples.push(
      tuple("it's", 'closed', 'sip:its@example.org'),
      tuple('say "hi"', 'closed', 'sip:hi@example.org'),
      tuple(`both'"q`, 'closed', 'sip:both@example.org'),
    );
    const prev = doc(a);
    const cur = doc(b);
    const diff = pidfDiff(prev, cur, 2);
    assert.ok(diff);
    // The ids are written in the selectors of the child-level operations too.
    const basic = '/pidf:status/pidf:basic/text()';
    assert.deepEqual(
      opsOf(diff).ops.map((o) => [o.op, o.sel]),
      [
        ['replace', `pidf:presence/pidf:tuple[@id="it's"]${basic}`],
        ['replace', `pidf:presence/pidf:tuple[@id='say "hi"']${basic}`],
        ['replace', `pidf:presence/pidf:tuple[7]${basic}`],
      ],
    );
    // In the XML attribute the double quotes are references.
    assert.ok(diff.includes(`sel="pidf:presence/pidf:tuple[@id=&quot;it's&quot;]${basic}"`));
    assert.ok(diff.includes(`sel="pidf:presence/pidf:tuple[@id='say &quot;hi&quot;']${basic}"`));
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
    const ext: XmlElement = {
      type: 'element',
      name: 'x:ring',
      attributes: { 'xmlns:x': 'urn:example:mood-ring' },
      elements: [{ type: 'text', text: 'teal' }],
    };
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
// Child-level changes
// ---------------------------------------------------------------------------

const FRANK = 'sip:frank@example.com';

function frank(basic: 'open' | 'closed', note: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${FRANK}"><tuple id="cal"><status><basic>${basic}</basic></status><note>${note}</note></tuple></presence>`;
}

function bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** pidfDiff, checked: applies to `prev` giving `cur` byte for byte, and smaller than full state. */
function diffOf(prev: string, cur: string): { diff: string; ops: Op[] } {
  const diff = pidfDiff(prev, cur, 2);
  assert.ok(diff, 'expected a diff');
  assert.ok(bytes(diff) < bytes(pidfFull(cur, 2)));
  assert.equal(applyPidfPatch({ pidf: prev, version: 1 }, diff).pidf, cur, diff);
  return { diff, ops: opsOf(diff).ops };
}

describe('pidf-diff: child-level changes', () => {
  it('a note change in the only tuple is one text replace, well below full state', () => {
    const prev = frank('open', 'first note');
    const cur = frank('open', 'second note');
    assert.equal(canon(prev), prev);
    const { diff, ops } = diffOf(prev, cur);
    assert.deepEqual(ops, [
      {
        op: 'replace',
        sel: "pidf:presence/pidf:tuple[@id='cal']/pidf:note[1]/text()",
        content: [],
        text: 'second note',
      },
    ]);
    const full = pidfFull(cur, 2);
    // 250 against 271 bytes: the wrapper (root, pidf-diff and pidf declarations, entity,
    // version) is most of the diff, the full state is little more than the tuple.
    assert.ok(bytes(diff) <= bytes(full) - 20, `diff ${bytes(diff)} bytes, full ${bytes(full)} bytes`);
    assert.doesNotMatch(diff, /first note|<tuple/);
  });

  it('a basic flip is one replace of the text of pidf:status/pidf:basic', () => {
    const prev = frank('open', 'first note');
    const cur = frank('closed', 'first note');
    const { ops } = diffOf(prev, cur);
    assert.deepEqual(ops, [
      {
        op: 'replace',
        sel: "pidf:presence/pidf:tuple[@id='cal']/pidf:status/pidf:basic/text()",
        content: [],
        text: 'closed',
      },
    ]);
    // And back.
    assert.deepEqual(diffOf(cur, prev).ops, [
      {
        op: 'replace',
        sel: "pidf:presence/pidf:tuple[@id='cal']/pidf:status/pidf:basic/text()",
        content: [],
        text: 'open',
      },
    ]);
  });

  it('notes of a tuple: changed, added at their place, removed', () => {
    const t = (notes: Note[], timestamp?: string): string =>
      doc({
        ...baseParts(),
        tuples: [
          makeTuple({
            id: 't1',
            basic: 'open',
            contact: { uri: 'sip:bob@phone.example.org' },
            notes,
            ...(timestamp ? { timestamp } : {}),
          }),
        ],
      });
    const one = [{ text: 'Back soon', lang: 'en' }];
    const two = [...one, { text: 'Bientôt', lang: 'fr' }];
    const sel = "pidf:presence/pidf:tuple[@id='t1']";
    // Text of a note with xml:lang: the attribute stays, only the text node goes.
    let r = diffOf(t(one), t([{ text: 'Out today', lang: 'en' }]));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.text]),
      [['replace', `${sel}/pidf:note[1]/text()`, 'Out today']],
    );
    // Another language: the note is replaced whole.
    r = diffOf(t(one), t([{ text: 'Back soon', lang: 'de' }]));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.content]),
      [['replace', `${sel}/pidf:note[1]`, ['<note xml:lang="de">Back soon</note>']]],
    );
    // Added as the last child of the tuple: appended to it.
    r = diffOf(t(one), t(two));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.pos, o.content]),
      [['add', sel, undefined, ['<note xml:lang="fr">Bientôt</note>']]],
    );
    // Added before the timestamp (PIDF order: notes, then timestamp): after the previous note.
    const ts = '2024-05-01T10:00:00Z';
    r = diffOf(t(one, ts), t(two, ts));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.pos]),
      [['add', `${sel}/pidf:note[1]`, 'after']],
    );
    // The first note of a tuple without notes, before its timestamp: after the contact.
    r = diffOf(t([], ts), t(one, ts));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.pos]),
      [['add', `${sel}/pidf:contact`, 'after']],
    );
    // Removed.
    r = diffOf(t(two, ts), t(one, ts));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel]),
      [['remove', `${sel}/pidf:note[2]`]],
    );
    // Timestamp changed: no position for an element that occurs once.
    r = diffOf(t(one, ts), t(one, '2024-05-01T11:30:00Z'));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.text]),
      [['replace', `${sel}/pidf:timestamp/text()`, '2024-05-01T11:30:00Z']],
    );
  });

  it('an attribute change of a child replaces that child', () => {
    const prev = doc(baseParts());
    const b = baseParts();
    b.tuples[0] = tuple('t1', 'open', 'sip:bob@phone.example.org', '0.3');
    const { ops } = diffOf(prev, doc(b));
    assert.deepEqual(
      ops.map((o) => [o.op, o.sel, o.content]),
      [
        [
          'replace',
          "pidf:presence/pidf:tuple[@id='t1']/pidf:contact",
          ['<contact priority="0.3">sip:bob@phone.example.org</contact>'],
        ],
      ],
    );
  });

  it('changes inside dm:person and dm:device', () => {
    const prev = doc(baseParts());
    // One more activity: added into rpid:activities (smaller than replacing it).
    let b = baseParts();
    b.persons = [person('p1', ['on-the-phone', 'meeting'])];
    let r = diffOf(prev, doc(b));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.content]),
      [['add', "pidf:presence/dm:person[@id='p1']/rpid:activities[1]", ['<rpid:meeting/>']]],
    );
    // Another activity instead: the list is replaced.
    b = baseParts();
    b.persons = [person('p1', ['away'])];
    r = diffOf(prev, doc(b));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.content]),
      [
        [
          'replace',
          "pidf:presence/dm:person[@id='p1']/rpid:activities[1]",
          ['<rpid:activities><rpid:away/></rpid:activities>'],
        ],
      ],
    );
    // A dm:note added to the person.
    b = baseParts();
    b.persons = [makePerson({ ...personInit(person('p1', ['on-the-phone'])), notes: [{ text: 'Call me later' }] })];
    r = diffOf(prev, doc(b));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.content]),
      [['add', "pidf:presence/dm:person[@id='p1']", ['<dm:note>Call me later</dm:note>']]],
    );
    // The device's deviceID.
    b = baseParts();
    b.devices = [makeDevice({ id: 'd1', deviceId: 'urn:uuid:6f1c0d2e-8a45-4c53-9d2f-1a2b3c4d5e70' })];
    r = diffOf(prev, doc(b));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.text]),
      [
        [
          'replace',
          "pidf:presence/dm:device[@id='d1']/dm:deviceID/text()",
          'urn:uuid:6f1c0d2e-8a45-4c53-9d2f-1a2b3c4d5e70',
        ],
      ],
    );
    // rpid:user-input added to the device: before its deviceID (data-model order).
    const d1 = baseParts().devices[0] as Device;
    const withInput = (v: string): string =>
      doc({ ...baseParts(), devices: [makeDevice({ ...deviceInit(d1), elements: [rpidElement('user-input', v)] })] });
    r = diffOf(prev, withInput('idle'));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.pos]),
      [['add', "pidf:presence/dm:device[@id='d1']", 'prepend']],
    );
    r = diffOf(withInput('idle'), withInput('active'));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.text]),
      [['replace', "pidf:presence/dm:device[@id='d1']/rpid:user-input[1]/text()", 'active']],
    );
  });

  it('descends into <status>: an extension element of the status', () => {
    const im = (v: string): XmlElement => ({
      type: 'element',
      name: 'im:im',
      attributes: { 'xmlns:im': 'urn:ietf:params:xml:ns:pidf:im' },
      elements: [{ type: 'text', text: v }],
    });
    const withIm = (basic: 'open' | 'closed', v: string | undefined): string =>
      doc({
        ...baseParts(),
        tuples: [
          makeTuple({
            id: 't1',
            basic,
            contact: { uri: 'im:bob@example.org' },
            ...(v ? { statusElements: [im(v)] } : {}),
          }),
        ],
      });
    let r = diffOf(withIm('open', 'away'), withIm('open', 'busy'));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.text]),
      [['replace', "pidf:presence/pidf:tuple[@id='t1']/pidf:status/im:im[1]/text()", 'busy']],
    );
    assert.equal(attr(opsOf(r.diff).root, 'xmlns:im'), 'urn:ietf:params:xml:ns:pidf:im');
    r = diffOf(withIm('open', undefined), withIm('open', 'busy'));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.content]),
      [['add', "pidf:presence/pidf:tuple[@id='t1']/pidf:status", ['<im:im>busy</im:im>']]],
    );
    r = diffOf(withIm('open', 'busy'), withIm('open', undefined));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel]),
      [['remove', "pidf:presence/pidf:tuple[@id='t1']/pidf:status/im:im[1]"]],
    );
    // Both children changed: one replace of the small <status> beats two operations in it.
    r = diffOf(withIm('closed', 'busy'), withIm('open', undefined));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.content]),
      [['replace', "pidf:presence/pidf:tuple[@id='t1']/pidf:status", ['<status><basic>open</basic></status>']]],
    );
  });

  it('keeps the whole replace when it is smaller (many changes in one tuple)', () => {
    const prev = doc(baseParts());
    const b = baseParts();
    b.tuples[0] = makeTuple({
      id: 't1',
      basic: 'closed',
      contact: { uri: 'sip:bob@car.example.org', priority: '0.1' },
      notes: [{ text: 'Driving' }],
    });
    const { ops } = diffOf(prev, doc(b));
    assert.deepEqual(
      ops.map((o) => [o.op, o.sel]),
      [['replace', "pidf:presence/pidf:tuple[@id='t1']"]],
    );
  });

  it('an element emptied of its text is replaced whole (a text node cannot be set to nothing)', () => {
    const withClass = (v: string): string =>
      doc({
        ...baseParts(),
        tuples: [makeTuple({ ...tupleInit(baseParts().tuples[0] as Tuple), elements: [rpidElement('class', v)] })],
      });
    const { ops } = diffOf(withClass('work'), withClass(''));
    assert.deepEqual(
      ops.map((o) => [o.op, o.sel, o.content]),
      [['replace', "pidf:presence/pidf:tuple[@id='t1']/rpid:class[1]", ['<rpid:class/>']]],
    );
    // And back: no text node to replace either.
    assert.deepEqual(
      diffOf(withClass(''), withClass('work')).ops.map((o) => [o.op, o.sel]),
      [['replace', "pidf:presence/pidf:tuple[@id='t1']/rpid:class[1]"]],
    );
  });

  it('replaces an element whole when its new text is CDATA (kept as written in extensions)', () => {
    const withF = (x: string): string =>
      canon(
        `<presence xmlns="${PIDF_NS}" xmlns:e="urn:example:e" entity="${ENTITY}"><tuple id="t1"><status><basic>open</basic></status><e:f>${x}</e:f><note>A note long enough for a diff</note></tuple></presence>`,
      );
    const cdata = withF('<![CDATA[a<b]]>');
    assert.match(cdata, /<e:f><!\[CDATA\[a<b\]\]><\/e:f>/);
    let r = diffOf(withF('plain'), cdata);
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel]),
      [['replace', "pidf:presence/pidf:tuple[@id='t1']/e:f[1]"]],
    );
    // From CDATA to plain text, the text() replace is fine.
    r = diffOf(cdata, withF('plain'));
    assert.deepEqual(
      r.ops.map((o) => [o.op, o.sel, o.text]),
      [['replace', "pidf:presence/pidf:tuple[@id='t1']/e:f[1]/text()", 'plain']],
    );
  });

  it('names a child of no namespace by position among all children', () => {
    const flag = (v: string): XmlElement => ({
      type: 'element',
      name: 'flag',
      attributes: { xmlns: '' },
      elements: [{ type: 'text', text: v }],
    });
    const withFlag = (v: string): string =>
      doc({
        ...baseParts(),
        tuples: [makeTuple({ id: 't1', basic: 'open', elements: [rpidElement('class', 'work'), flag(v)] })],
      });
    const prev = withFlag('green');
    assert.match(prev, /<flag xmlns="">green<\/flag>/);
    const { ops } = diffOf(prev, withFlag('red'));
    assert.deepEqual(
      ops.map((o) => [o.op, o.sel, o.text]),
      [['replace', "pidf:presence/pidf:tuple[@id='t1']/*[3]/text()", 'red']],
    );
  });

  it('child selectors of a tuple named by position follow the earlier operations', () => {
    const both = `both'"q`;
    const a = baseParts();
    a.tuples.push(tuple(both, 'open', 'sip:both@example.org'));
    const b = baseParts();
    b.tuples.splice(0, 1);
    b.tuples.push(tuple(both, 'closed', 'sip:both@example.org'));
    const { ops } = diffOf(doc(a), doc(b));
    assert.deepEqual(
      ops.map((o) => [o.op, o.sel]),
      [
        ['remove', "pidf:presence/pidf:tuple[@id='t1']"],
        ['replace', 'pidf:presence/pidf:tuple[4]/pidf:status/pidf:basic/text()'],
      ],
    );
  });

  it('still gives undefined when even child-level operations are not smaller than full state', () => {
    // Basic and note of the only tuple at once: two operations or the tuple, either way more
    // than the <pidf-full> around that one tuple.
    const prev = frank('open', 'second note');
    const cur = frank('closed', 'third note');
    assert.equal(pidfDiff(prev, cur, 3), undefined);
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
    expectError(
      () => applyPidfPatch(undefined, full.replace(' version="5"', '')),
      'invalid-attribute-value',
      /version/,
    );
    expectError(
      () => applyPidfPatch(undefined, full.replace('version="5"', 'version="-1"')),
      'invalid-attribute-value',
    );
    expectError(
      () => applyPidfPatch(undefined, full.replace('version="5"', 'version="4294967296"')),
      'invalid-attribute-value',
    );
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
    expectError(
      () => applyPidfPatch({ pidf: evilPidf, version: 1 }, pidfDiff(prev, cur, 2) as string),
      'invalid-diff-format',
      /DOCTYPE/,
    );
  });

  it('refuses other roots, an entity mismatch and results that are not PIDF', () => {
    expectError(() => applyPidfPatch(undefined, prev), 'invalid-diff-format', /pidf-full or pidf-diff/);
    const diff = pidfDiff(prev, cur, 2);
    assert.ok(diff);
    expectError(
      () =>
        applyPidfPatch({ pidf: prev, version: 1 }, diff.replace(`entity="${ENTITY}"`, 'entity="sip:eve@example.org"')),
      'invalid-attribute-value',
      /entity/,
    );
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
      tuples: [
        tuple('svc1', 'closed', 'sip:bob@phone.example.org', '0.5'),
        tuple('svc2', 'open', 'im:bob@example.org', '0.2'),
      ],
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
      tuples: [
        tuple('svc1', 'closed', 'sip:bob@phone.example.org', '0.5'),
        tuple('svc2', 'open', 'im:bob@example.org'),
      ],
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
    assert.equal(
      applyPidfPatch({ pidf: base, version: 1 }, patch).pidf,
      doc({ tuples: [makeTuple({ id: 'svc2', basic: 'open' })] }),
    );
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
  return {
    type: 'element',
    name: `${p}:flag`,
    attributes: { [`xmlns:${p}`]: EXT_NS[k] as string, level: String(Math.floor(rnd() * 5)) },
    elements: [{ type: 'text', text: `v${Math.floor(rnd() * 3)}` }],
  };
}

function pick<T>(rnd: () => number, list: readonly T[]): T {
  return list[Math.floor(rnd() * list.length)] as T;
}

function mutate(rnd: () => number, m: Model): Model {
  const out: Model = {
    tuples: [...m.tuples],
    notes: [...m.notes],
    persons: [...m.persons],
    devices: [...m.devices],
    extensions: [...m.extensions],
  };
  const edits = 1 + Math.floor(rnd() * 3);
  for (let e = 0; e < edits; e++) {
    const r = rnd();
    const usedIds = new Set([
      ...out.tuples.map((t) => t.id),
      ...out.persons.map((p) => p.id),
      ...out.devices.map((d) => d.id),
    ]);
    const freeIds = ID_POOL.filter((id) => !usedIds.has(id));
    if (r < 0.15 && freeIds.length > 0) {
      out.tuples.splice(Math.floor(rnd() * (out.tuples.length + 1)), 0, randomTuple(rnd, pick(rnd, freeIds)));
    } else if (r < 0.25 && out.tuples.length > 0) {
      out.tuples.splice(Math.floor(rnd() * out.tuples.length), 1);
    } else if (r < 0.45 && out.tuples.length > 0) {
      const i = Math.floor(rnd() * out.tuples.length);
      const t = out.tuples[i] as Tuple;
      out.tuples[i] = makeTuple({
        id: t.id,
        basic: t.basic === 'open' ? 'closed' : 'open',
        notes: t.notes,
        elements: t.elements,
        ...(t.contact ? { contact: t.contact } : {}),
      });
    } else if (r < 0.52 && out.tuples.length > 1) {
      const [moved] = out.tuples.splice(Math.floor(rnd() * out.tuples.length), 1);
      out.tuples.splice(Math.floor(rnd() * (out.tuples.length + 1)), 0, moved as Tuple);
    } else if (r < 0.65) {
      if (out.persons.length === 0 || rnd() < 0.8) {
        const id = out.persons[0]?.id ?? pick(rnd, freeIds.length > 0 ? freeIds : ['person-x']);
        if (usedIds.has(id) && !out.persons.some((p) => p.id === id)) continue;
        out.persons = [
          person(
            id,
            [pick(rnd, ACTIVITIES), ...(rnd() < 0.3 ? [pick(rnd, ACTIVITIES)] : [])].filter(
              (v, k, a) => a.indexOf(v) === k,
            ),
          ),
        ];
      } else out.persons = [];
    } else if (r < 0.75) {
      const k = Math.floor(rnd() * 3);
      if (rnd() < 0.5 && out.notes.length > 0) out.notes.splice(Math.floor(rnd() * out.notes.length), 1);
      else
        out.notes.splice(Math.min(k, out.notes.length), 0, {
          text: pick(rnd, NOTE_TEXTS),
          ...(rnd() < 0.5 ? { lang: pick(rnd, ['en', 'fr', 'de']) } : {}),
        });
    } else if (r < 0.85) {
      if (out.devices.length > 0 && rnd() < 0.4) out.devices.splice(Math.floor(rnd() * out.devices.length), 1);
      else if (freeIds.length > 0) {
        const d: Device = makeDevice({
          id: pick(rnd, freeIds),
          deviceId: `urn:uuid:00000000-0000-4000-8000-${String(Math.floor(rnd() * 1e12)).padStart(12, '0')}`,
        });
        out.devices.push(d);
      }
    } else {
      if (out.extensions.length > 0 && rnd() < 0.4) out.extensions.splice(Math.floor(rnd() * out.extensions.length), 1);
      else if (out.extensions.length > 0 && rnd() < 0.5)
        out.extensions[Math.floor(rnd() * out.extensions.length)] = randomExtension(rnd);
      else out.extensions.push(randomExtension(rnd));
    }
  }
  return out;
}

describe('pidf-diff: round trips', () => {
  for (const seed of [1, 7, 42, 2024, 99991]) {
    it(`a watcher following 150 changes stays in sync (seed ${seed})`, () => {
      const rnd = prng(seed);
      let model: Model = {
        tuples: [randomTuple(rnd, 't1'), randomTuple(rnd, 't2'), randomTuple(rnd, 'pc')],
        notes: [],
        persons: [],
        devices: [],
        extensions: [],
      };
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

// Child-level edits: what typically changes between two publications of one presentity.

const LANGS = ['en', 'fr', 'de'];
const TIMESTAMPS = ['2024-05-01T10:00:00Z', '2024-05-01T10:05:00Z', '2024-05-01T11:30:00.5+02:00'];
const IM_NS = 'urn:ietf:params:xml:ns:pidf:im';

function randomNote(rnd: () => number): Note {
  return { text: pick(rnd, NOTE_TEXTS), ...(rnd() < 0.5 ? { lang: pick(rnd, LANGS) } : {}) };
}

/** Notes with one random edit: a text change, a language change, an addition or a removal. */
function editNotes(rnd: () => number, notes: readonly Note[]): Note[] {
  const out = [...notes];
  const r = rnd();
  const i = Math.floor(rnd() * out.length);
  const n = out[i];
  if (n && r < 0.4) out[i] = { ...n, text: `${pick(rnd, NOTE_TEXTS)} ${Math.floor(rnd() * 100)}` };
  else if (n && r < 0.5) out[i] = { text: n.text, ...(n.lang === undefined ? { lang: pick(rnd, LANGS) } : {}) };
  else if (n && r < 0.7) out.splice(i, 1);
  else out.splice(Math.floor(rnd() * (out.length + 1)), 0, randomNote(rnd));
  return out;
}

/** `list` without elements named {ns}local, plus `el` when given (first, or in place of the old one). */
function setElement(
  list: readonly XmlElement[],
  local: string,
  el: XmlElement | undefined,
  ns = 'urn:ietf:params:xml:ns:pidf:rpid',
): XmlElement[] {
  const name = (e: XmlElement): string => {
    const n = NamespaceScope.root().child(e).expand(e.name);
    return `{${n.ns ?? ''}}${n.local}`;
  };
  const key = `{${ns}}${local}`;
  const i = list.findIndex((e) => name(e) === key);
  const out = list.filter((e) => name(e) !== key);
  if (el) out.splice(i === -1 ? 0 : i, 0, el);
  return out;
}

function editTuple(rnd: () => number, t: Tuple): Tuple {
  const init = tupleInit(t);
  const r = rnd();
  if (r < 0.25) init.basic = t.basic === 'open' ? 'closed' : 'open';
  else if (r < 0.5) init.notes = editNotes(rnd, t.notes);
  else if (r < 0.58) {
    const uri = t.contact?.uri ?? `sip:${Math.floor(rnd() * 100)}@example.org`;
    init.contact =
      rnd() < 0.5
        ? { uri, priority: String(Math.floor(rnd() * 10) / 10) }
        : { uri: `sip:user${Math.floor(rnd() * 100)}@host.example.org` };
  } else if (r < 0.66) {
    if (rnd() < 0.3) delete init.timestamp;
    else init.timestamp = pick(rnd, TIMESTAMPS);
  } else if (r < 0.76) {
    init.elements = setElement(
      t.elements,
      'class',
      rnd() < 0.2 ? undefined : rpidElement('class', pick(rnd, ['work', 'home', 'other', ''])),
    );
  } else if (r < 0.86) {
    const im: XmlElement = {
      type: 'element',
      name: 'im:im',
      attributes: { 'xmlns:im': IM_NS },
      elements: [{ type: 'text', text: pick(rnd, ['away', 'busy', 'idle']) }],
    };
    init.statusElements = rnd() < 0.3 ? [] : [im];
  } else if (r < 0.93) {
    // An element of no namespace among the tuple's extensions.
    const flag: XmlElement = {
      type: 'element',
      name: 'flag',
      attributes: { xmlns: '' },
      elements: [{ type: 'text', text: pick(rnd, ['green', 'red', 'blue']) }],
    };
    init.elements = [...t.elements.filter((e) => e.name !== 'flag'), ...(rnd() < 0.2 ? [] : [flag])];
  } else
    init.deviceId = rnd() < 0.3 ? undefined : `urn:uuid:00000000-0000-4000-8000-00000000000${Math.floor(rnd() * 10)}`;
  if (init.deviceId === undefined) delete init.deviceId;
  return makeTuple(init);
}

function editPerson(rnd: () => number, p: Person): Person {
  const init = personInit(p);
  const r = rnd();
  if (r < 0.5) {
    // One activity added, removed or swapped.
    const acts = [...(p.activities ?? [])];
    const i = Math.floor(rnd() * acts.length);
    const q = rnd();
    const fresh = ACTIVITIES.filter((a) => !acts.includes(a));
    if (q < 0.4 && fresh.length > 0) acts.splice(Math.floor(rnd() * (acts.length + 1)), 0, pick(rnd, fresh));
    else if (q < 0.7 && acts.length > 0) acts.splice(i, 1);
    else if (acts.length > 0 && fresh.length > 0) acts[i] = pick(rnd, fresh);
    init.elements = setElement(p.elements, 'activities', rpidElement('activities', acts));
  } else if (r < 0.65)
    init.elements = setElement(
      p.elements,
      'mood',
      rnd() < 0.2 ? undefined : rpidElement('mood', [pick(rnd, ['happy', 'sad', 'bored'])]),
    );
  else if (r < 0.75) init.elements = setElement(p.elements, 'class', rpidElement('class', pick(rnd, ['work', 'home'])));
  else if (r < 0.9) init.notes = editNotes(rnd, p.notes);
  else if (rnd() < 0.3) delete init.timestamp;
  else init.timestamp = pick(rnd, TIMESTAMPS);
  return makePerson(init);
}

function editDevice(rnd: () => number, d: Device): Device {
  const init = deviceInit(d);
  const r = rnd();
  if (r < 0.3) init.deviceId = `urn:uuid:00000000-0000-4000-8000-${String(Math.floor(rnd() * 1e12)).padStart(12, '0')}`;
  else if (r < 0.6)
    init.elements = setElement(
      d.elements,
      'user-input',
      rnd() < 0.2 ? undefined : rpidElement('user-input', pick(rnd, ['active', 'idle'])),
    );
  else if (r < 0.85) init.notes = editNotes(rnd, d.notes);
  else if (rnd() < 0.3) delete init.timestamp;
  else init.timestamp = pick(rnd, TIMESTAMPS);
  return makeDevice(init);
}

/** Mostly edits inside tuples, persons and devices; sometimes a structural change (mutate). */
function mutateInside(rnd: () => number, m: Model): Model {
  if (rnd() < 0.2) return mutate(rnd, m);
  const out: Model = {
    tuples: [...m.tuples],
    notes: [...m.notes],
    persons: [...m.persons],
    devices: [...m.devices],
    extensions: [...m.extensions],
  };
  const edits = 1 + Math.floor(rnd() * 2);
  for (let e = 0; e < edits; e++) {
    const r = rnd();
    if (r < 0.55 && out.tuples.length > 0) {
      const i = Math.floor(rnd() * out.tuples.length);
      out.tuples[i] = editTuple(rnd, out.tuples[i] as Tuple);
    } else if (r < 0.8) {
      const p = out.persons[0];
      if (p) out.persons[0] = editPerson(rnd, p);
      else {
        const used = new Set([...out.tuples.map((t) => t.id), ...out.devices.map((d) => d.id)]);
        const id = ID_POOL.find((x) => !used.has(x));
        if (id !== undefined) out.persons = [person(id, [pick(rnd, ACTIVITIES)])];
      }
    } else {
      const i = Math.floor(rnd() * out.devices.length);
      const d = out.devices[i];
      if (d) out.devices[i] = editDevice(rnd, d);
      else {
        const used = new Set([...out.tuples.map((t) => t.id), ...out.persons.map((p) => p.id)]);
        const id = ID_POOL.find((x) => !used.has(x));
        if (id !== undefined)
          out.devices.push(makeDevice({ id, deviceId: 'urn:uuid:00000000-0000-4000-8000-000000000001' }));
      }
    }
  }
  return out;
}

/** Number of steps of a selector (a step is a `/`-separated part outside quotes and brackets). */
function depthOf(sel: string): number {
  let depth = 1;
  let quote: string | undefined;
  let brackets = 0;
  for (const c of sel) {
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '[') brackets++;
    else if (c === ']') brackets--;
    else if (c === '/' && brackets === 0) depth++;
  }
  return depth;
}

describe('pidf-diff: round trips with changes inside tuples, persons and devices', () => {
  for (const seed of [3, 11, 314, 8080, 65537, 271828]) {
    it(`a watcher following 200 changes stays in sync (seed ${seed})`, () => {
      const rnd = prng(seed);
      let model: Model = {
        tuples: [randomTuple(rnd, 't1'), randomTuple(rnd, 'pc'), randomTuple(rnd, `mix'"ed`)],
        notes: [],
        persons: [person('p1', ['busy'])],
        devices: [
          makeDevice({
            id: 'd1',
            deviceId: 'urn:uuid:00000000-0000-4000-8000-000000000001',
            notes: [{ text: 'Desk phone' }],
          }),
        ],
        extensions: [],
      };
      let sent = doc(model);
      let version = 1;
      let watcher = applyPidfPatch(undefined, pidfFull(sent, version));
      let diffs = 0;
      let fulls = 0;
      let inner = 0;
      let texts = 0;
      let saved = 0;
      for (let step = 0; step < 200; step++) {
        model = mutateInside(rnd, model);
        const cur = doc(model);
        if (cur === sent) continue;
        version++;
        const diff = pidfDiff(sent, cur, version);
        const full = pidfFull(cur, version);
        let body: string;
        if (diff === undefined) {
          fulls++;
          body = full;
        } else {
          diffs++;
          assert.ok(bytes(diff) < bytes(full));
          saved += bytes(full) - bytes(diff);
          const ops = opsOf(diff).ops;
          if (ops.some((o) => depthOf(o.sel) > 2)) inner++;
          if (ops.some((o) => o.sel.endsWith('/text()'))) texts++;
          body = diff;
        }
        watcher = applyPidfPatch(watcher, body);
        assert.equal(watcher.version, version);
        assert.equal(watcher.pidf, cur, `step ${step}: ${body}`);
        sent = cur;
      }
      assert.ok(diffs > 4 * fulls, `diffs ${diffs}, fulls ${fulls}`);
      // Most diffs work below the top level, many on a text node alone.
      assert.ok(inner > diffs / 2, `child-level diffs ${inner} of ${diffs}`);
      assert.ok(texts > diffs / 5, `text() diffs ${texts} of ${diffs}`);
      assert.ok(saved > 0);
    });
  }
});
