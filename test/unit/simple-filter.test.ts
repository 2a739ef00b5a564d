import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePidf, serializePidf, type PresenceDoc } from '../../as/src/presence/pidf/index.js';
import {
  BADFILTER_REASON,
  FILTER_LIMITS,
  FilterError,
  SIMPLE_FILTER_CONTENT_TYPE,
  SIMPLE_FILTER_NS,
  applyContentFilters,
  applyContentFiltersDetailed,
  filtersFor,
  mergeFilterSets,
  parseFilterSet,
  triggersFire,
  type Filter,
  type FilterSet,
} from '../../as/src/presence/filters/simple-filter.js';

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const PIDF_NS = 'urn:ietf:params:xml:ns:pidf';
const DM_NS = 'urn:ietf:params:xml:ns:pidf:data-model';
const RPID_NS = 'urn:ietf:params:xml:ns:pidf:rpid';
const WI_NS = 'urn:ietf:params:xml:ns:watcherinfo';

const BINDINGS = `<ns-bindings>
    <ns-binding prefix="pidf" urn="${PIDF_NS}"/>
    <ns-binding prefix="dm" urn="${DM_NS}"/>
    <ns-binding prefix="rpid" urn="${RPID_NS}"/>
  </ns-bindings>`;

/** A filter-set with the usual bindings around `filters`. */
function fs(filters: string, opts: { bindings?: string; attrs?: string } = {}): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<filter-set xmlns="${SIMPLE_FILTER_NS}"${opts.attrs ?? ''}>
  ${opts.bindings ?? BINDINGS}
  ${filters}
</filter-set>`;
}

/** Parses a one-filter set and returns its filters (already merged as for an initial SUBSCRIBE). */
function filters(body: string): Filter[] {
  return mergeFilterSets(undefined, parseFilterSet(body, SIMPLE_FILTER_CONTENT_TYPE))!.filters;
}

function what(inner: string, attrs = ''): Filter[] {
  return filters(fs(`<filter id="f"${attrs}><what>${inner}</what></filter>`));
}

function trigger(inner: string, attrs = ''): Filter[] {
  return filters(fs(`<filter id="f"${attrs}><trigger>${inner}</trigger></filter>`));
}

function refused(body: string, contentType?: string): FilterError {
  try {
    parseFilterSet(body, contentType);
  } catch (e) {
    assert.ok(e instanceof FilterError, `expected FilterError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a FilterError');
}

interface State {
  t1?: 'open' | 'closed';
  t2?: 'open' | 'closed';
  t1Note?: string;
  activity?: string;
  personNote?: string;
  extraTuple?: boolean;
  dropT2?: boolean;
  swapTuples?: boolean;
}

/** A canonical presence document (what our presence server hands to the filters). */
function presence(s: State = {}): string {
  const t1 =
    `<tuple id="t1"><status><basic>${s.t1 ?? 'open'}</basic></status><rpid:class>IM</rpid:class><dm:deviceID>mac:11</dm:deviceID>` +
    `<contact priority="0.8">sip:alice@pc.example.com</contact><note xml:lang="en">${s.t1Note ?? 'at my desk'}</note>` +
    `<timestamp>2024-01-01T10:00:00Z</timestamp></tuple>`;
  const t2 = s.dropT2
    ? ''
    : `<tuple id="t2"><status><basic>${s.t2 ?? 'closed'}</basic></status><rpid:class>voice</rpid:class><contact>tel:+15551234</contact></tuple>`;
  const t3 = s.extraTuple
    ? `<tuple id="t3"><status><basic>open</basic></status><contact>sip:alice@phone.example.com</contact></tuple>`
    : '';
  const src =
    `<presence xmlns="${PIDF_NS}" xmlns:dm="${DM_NS}" xmlns:rpid="${RPID_NS}" entity="sip:alice@example.com">` +
    (s.swapTuples ? t2 + t1 : t1 + t2) +
    t3 +
    `<note>presence note</note>` +
    `<dm:person id="p1"><rpid:activities><rpid:${s.activity ?? 'busy'}/></rpid:activities><rpid:mood><rpid:happy/></rpid:mood>` +
    `<dm:note>${s.personNote ?? 'in a meeting'}</dm:note></dm:person>` +
    `<dm:device id="d1"><rpid:user-input>active</rpid:user-input><dm:deviceID>mac:11</dm:deviceID></dm:device>` +
    `</presence>`;
  return serializePidf(parsePidf(src));
}

/** The filtered document, checked to be valid PIDF. */
function filtered(doc: string, fl: Filter[]): PresenceDoc {
  const out = applyContentFilters(doc, fl);
  const parsed = parsePidf(out);
  assert.equal(serializePidf(parsed), out, 'output is canonical');
  assert.equal(parsed.entity, 'sip:alice@example.com');
  return parsed;
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

describe('parseFilterSet: accepted documents', () => {
  it('reads bindings, filter attributes and an xpath include (RFC 4661 6.1)', () => {
    const set = parseFilterSet(
      fs(`<filter id="123" uri="sip:presentity@example.com">
    <what>
      <include type="xpath">
        /pidf:presence/pidf:tuple[rpid:class="IM" or rpid:class="SMS"
        or rpid:class="MMS"]/pidf:status/pidf:basic
      </include>
    </what>
  </filter>`),
    );
    assert.equal(set.bindings.get('pidf'), PIDF_NS);
    assert.equal(set.bindings.get('rpid'), RPID_NS);
    assert.equal(set.filters.length, 1);
    const f = set.filters[0]!;
    assert.equal(f.id, '123');
    assert.equal(f.uri, 'sip:presentity@example.com');
    assert.equal(f.remove, false);
    assert.equal(f.enabled, true);
    assert.deepEqual(f.triggers, []);
    const inc = f.what?.include[0];
    assert.equal(inc?.type, 'xpath');
    assert.ok(inc?.type === 'xpath' && inc.expression.startsWith('/pidf:presence/pidf:tuple['));
    assert.deepEqual(f.what?.exclude, []);
  });

  it('reads a type="namespace" include without bindings (RFC 4661 6.4)', () => {
    const set = parseFilterSet(`<?xml version="1.0" encoding="UTF-8"?>
<filter-set xmlns="${SIMPLE_FILTER_NS}">
  <filter id="123" uri="sip:buddylist@example.com">
    <what>
      <include type="namespace">
        urn:ietf:params:xml:ns:pidf
      </include>
    </what>
  </filter>
</filter-set>`);
    assert.deepEqual(set.filters[0]?.what?.include, [{ type: 'namespace', namespace: PIDF_NS }]);
    assert.equal(set.bindings.size, 0);
  });

  it('reads triggers: changed with from / to / by, added, removed', () => {
    const set = parseFilterSet(
      fs(`<filter id="1">
    <trigger><changed from="closed" to="open">/pidf:presence/pidf:tuple/pidf:status/pidf:basic</changed></trigger>
    <trigger>
      <changed by="2.5">//pidf:contact/@priority</changed>
      <added>/pidf:presence/pidf:tuple</added>
      <removed>/pidf:presence/pidf:tuple</removed>
    </trigger>
  </filter>`),
    );
    const [t1, t2] = set.filters[0]!.triggers;
    assert.equal(t1?.changed[0]?.from, 'closed');
    assert.equal(t1?.changed[0]?.to, 'open');
    assert.equal(t1?.changed[0]?.expression, '/pidf:presence/pidf:tuple/pidf:status/pidf:basic');
    assert.equal(t2?.changed[0]?.by, 2.5);
    assert.equal(t2?.added.length, 1);
    assert.equal(t2?.removed.length, 1);
  });

  it('reads remove, enabled (xs:boolean), domain and the package attribute', () => {
    const set = parseFilterSet(
      fs(
        `<filter id="a" remove="1"/>
  <filter id="b" enabled="false" domain="Example.COM"/>
  <filter id="c" enabled=" 0 " uri="sip:c@example.com"/>`,
        { attrs: ' package="presence"' },
      ),
    );
    assert.equal(set.package, 'presence');
    assert.deepEqual(
      set.filters.map((f) => [f.id, f.remove, f.enabled, f.domain ?? f.uri]),
      [
        ['a', true, true, undefined],
        ['b', false, false, 'example.com'],
        ['c', false, false, 'sip:c@example.com'],
      ],
    );
  });

  it('treats an empty <what> or <trigger> as absent (RFC 4660 5.4)', () => {
    const set = parseFilterSet(
      fs(`<filter id="x"><what/><trigger/><trigger><changed>//pidf:basic</changed></trigger></filter>`),
    );
    assert.equal(set.filters[0]?.what, undefined);
    assert.equal(set.filters[0]?.triggers.length, 1);
  });

  it('ignores extension elements and attributes of other namespaces where the schema allows them', () => {
    const set = parseFilterSet(
      fs(`<filter id="x" xmlns:e="urn:example:ext" e:flag="1">
    <what><include e:hint="y">//pidf:basic</include><e:rate>5</e:rate></what>
    <e:extra/>
  </filter>`),
    );
    assert.equal(set.filters[0]?.what?.include.length, 1);
  });

  it('accepts the content type with a UTF-8 charset, case-insensitively', () => {
    assert.equal(
      parseFilterSet(
        fs('<filter id="x"><what><include>//pidf:basic</include></what></filter>'),
        'Application/Simple-Filter+XML; charset="UTF-8"',
      ).filters.length,
      1,
    );
  });

  it('accepts a Buffer body', () => {
    assert.equal(
      parseFilterSet(Buffer.from(fs('<filter id="x"><what><include>//pidf:basic</include></what></filter>'))).filters
        .length,
      1,
    );
  });

  it('lets a refresh remove a filter and place another for the same uri', () => {
    const set = parseFilterSet(
      fs(
        `<filter id="old" uri="sip:a@example.com" remove="true"/><filter id="new" uri="sip:a@example.com"><what><include>//pidf:basic</include></what></filter>`,
      ),
    );
    assert.equal(set.filters.length, 2);
  });
});

describe('parseFilterSet: refused documents', () => {
  it('400 for XML that is not well-formed', () => {
    const e = refused('<filter-set xmlns="urn:ietf:params:xml:ns:simple-filter"><filter id="1"></filter-set>');
    assert.equal(e.status, 400);
    assert.equal(e.reason, 'Bad Request');
    assert.match(e.warning ?? '', /not well-formed/);
  });

  it('400 for a DOCTYPE (no entity is ever expanded)', () => {
    const e = refused(
      `<?xml version="1.0"?><!DOCTYPE filter-set [<!ENTITY x "boom">]><filter-set xmlns="${SIMPLE_FILTER_NS}"><filter id="&x;"/></filter-set>`,
    );
    assert.equal(e.status, 400);
    assert.match(e.warning ?? '', /DOCTYPE/);
  });

  it('400 for a body over the size limit', () => {
    const e = refused(
      fs(
        `<filter id="x"><what><include>//pidf:basic</include></what></filter><!--${'x'.repeat(FILTER_LIMITS.maxBytes)}-->`,
      ),
    );
    assert.equal(e.status, 400);
  });

  it('488 for a well-formed document whose root is not filter-set (RFC 4660 5.4: not aligned with the schema)', () => {
    const e = refused(`<presence xmlns="${PIDF_NS}" entity="sip:a@example.com"/>`);
    assert.equal(e.status, 488);
    assert.equal(e.reason, 'Not Acceptable Here');
    assert.match(e.warning ?? '', /filter-set/);
    assert.equal(refused('<filter-set><filter id="1"/></filter-set>').status, 488, 'filter-set in no namespace');
  });

  it('415 with Accept for another content type or charset (RFC 4660 5.2)', () => {
    const body = fs('<filter id="x"><what><include>//pidf:basic</include></what></filter>');
    for (const ct of ['application/xml', 'text/plain', 'application/simple-filter+xml;charset=ISO-8859-1']) {
      const e = refused(body, ct);
      assert.equal(e.status, 415, ct);
      assert.equal(e.reason, 'Unsupported Media Type');
      assert.equal(e.accept, SIMPLE_FILTER_CONTENT_TYPE);
    }
  });

  it('488 with a Warning for an expression outside the XPath subset (RFC 4660 3.3.4, 5.4)', () => {
    const e = refused(
      fs('<filter id="x"><what><include>//pidf:tuple[contains(pidf:note, "x")]</include></what></filter>'),
    );
    assert.equal(e.status, 488);
    assert.match(e.warning ?? '', /unsupported expression in <include>/);
    assert.match(e.warningHeader() ?? '', /^399 - ".*contains\(\) is not supported here.*"$/);
    assert.equal(
      refused(fs('<filter id="x"><trigger><changed>//pidf:basic/text()</changed></trigger></filter>')).status,
      488,
    );
    assert.equal(
      refused(fs('<filter id="x"><trigger><added>pidf:tuple</added></trigger></filter>')).status,
      488,
      'relative path',
    );
  });

  it('488 for a prefix without <ns-binding> (RFC 4661 6.5 uses one: we do not guess it)', () => {
    const e = refused(
      fs(
        '<filter id="x"><what><include>/pidf:presence/pidf:tuple/pidf:status[game-ext:label="game-X"]</include></what></filter>',
        {
          bindings: `<ns-bindings><ns-binding prefix="game-ext" urn="urn:ietf:params:xml:ns:game-ext"/></ns-bindings>`,
        },
      ),
    );
    assert.equal(e.status, 488);
    assert.match(e.warning ?? '', /prefix "pidf" is not bound/);
  });

  const schemaCases: Array<[string, string]> = [
    ['filter without id', '<filter><what><include>//pidf:basic</include></what></filter>'],
    [
      'uri together with domain',
      '<filter id="x" uri="sip:a@example.com" domain="example.com"><what><include>//pidf:basic</include></what></filter>',
    ],
    [
      'duplicate ids',
      '<filter id="x" uri="sip:a@example.com"><what><include>//pidf:basic</include></what></filter><filter id="x" uri="sip:b@example.com"><what><include>//pidf:basic</include></what></filter>',
    ],
    ['non-boolean enabled', '<filter id="x" enabled="yes"><what><include>//pidf:basic</include></what></filter>'],
    ['unknown include type', '<filter id="x"><what><include type="regex">.*</include></what></filter>'],
    ['empty include', '<filter id="x"><what><include>  </include></what></filter>'],
    [
      'namespace include with two URIs',
      '<filter id="x"><what><include type="namespace">urn:a urn:b</include></what></filter>',
    ],
    ['unknown element of the filter namespace', '<filter id="x"><bogus/></filter>'],
    ['unqualified element', '<filter id="x"><what xmlns=""><include>//a</include></what></filter>'],
    [
      'unknown unqualified attribute',
      '<filter id="x" priority="1"><what><include>//pidf:basic</include></what></filter>',
    ],
    [
      'what after trigger',
      '<filter id="x"><trigger><changed>//pidf:basic</changed></trigger><what><include>//pidf:basic</include></what></filter>',
    ],
    [
      'two what elements',
      '<filter id="x"><what><include>//pidf:basic</include></what><what><include>//pidf:note</include></what></filter>',
    ],
    [
      'include after exclude',
      '<filter id="x"><what><exclude>//pidf:note</exclude><include>//pidf:basic</include></what></filter>',
    ],
    [
      'removed before changed',
      '<filter id="x"><trigger><removed>//pidf:tuple</removed><changed>//pidf:basic</changed></trigger></filter>',
    ],
    ['text in a filter', '<filter id="x">oops<what><include>//pidf:basic</include></what></filter>'],
    ['an element inside include', '<filter id="x"><what><include>//pidf:basic<b/></include></what></filter>'],
    [
      'by that is not a decimal',
      '<filter id="x"><trigger><changed by="two">//pidf:contact/@priority</changed></trigger></filter>',
    ],
    [
      'by with a non-decimal from (RFC 4661 3.6.1.4)',
      '<filter id="x"><trigger><changed by="1" from="open">//pidf:basic</changed></trigger></filter>',
    ],
    [
      'two filters without uri (same resource, RFC 4660 5.2)',
      '<filter id="a"><what><include>//pidf:basic</include></what></filter><filter id="b"><what><include>//pidf:note</include></what></filter>',
    ],
    [
      'two filters for one uri',
      '<filter id="a" uri="sip:bob@example.com"><what><include>//pidf:basic</include></what></filter><filter id="b" uri="sip:bob@example.com;transport=tcp"><what><include>//pidf:note</include></what></filter>',
    ],
    [
      'two filters for one domain',
      '<filter id="a" domain="example.com"><what><include>//pidf:basic</include></what></filter><filter id="b" domain="EXAMPLE.com"><what><include>//pidf:note</include></what></filter>',
    ],
    ['a bad domain', '<filter id="x" domain="not a domain"><what><include>//pidf:basic</include></what></filter>'],
  ];
  for (const [name, body] of schemaCases) {
    it(`488 for ${name}`, () => {
      assert.equal(refused(fs(body)).status, 488);
    });
  }

  it('488 for filter-set without filter, empty ns-bindings, ns-binding without urn, a rebound prefix', () => {
    assert.equal(refused(fs('')).status, 488);
    assert.equal(
      refused(fs('<filter id="x"><what><include>//a</include></what></filter>', { bindings: '<ns-bindings/>' })).status,
      488,
    );
    assert.equal(
      refused(
        fs('<filter id="x"><what><include>//a</include></what></filter>', {
          bindings: '<ns-bindings><ns-binding prefix="p"/></ns-bindings>',
        }),
      ).status,
      488,
    );
    assert.equal(
      refused(
        fs('<filter id="x"><what><include>//p:a</include></what></filter>', {
          bindings:
            '<ns-bindings><ns-binding prefix="p" urn="urn:a"/><ns-binding prefix="p" urn="urn:b"/></ns-bindings>',
        }),
      ).status,
      488,
    );
    assert.equal(
      refused(
        fs('<filter id="x"><what><include>//a</include></what></filter>', {
          bindings: '<ns-bindings><ns-binding prefix="1p" urn="urn:a"/></ns-bindings>',
        }),
      ).status,
      488,
    );
  });

  it('488 past the RFC 4660 section 8 limit of 40 <what>/<changed>/<added>/<removed>', () => {
    const many = Array.from({ length: FILTER_LIMITS.maxItems + 1 }, () => '<changed>//pidf:basic</changed>').join('');
    const e = refused(fs(`<filter id="x"><trigger>${many}</trigger></filter>`));
    assert.equal(e.status, 488);
    assert.match(e.warning ?? '', /more than 40/);
    const fine = Array.from({ length: FILTER_LIMITS.maxItems }, () => '<changed>//pidf:basic</changed>').join('');
    assert.equal(parseFilterSet(fs(`<filter id="x"><trigger>${fine}</trigger></filter>`)).filters.length, 1);
  });

  it('warningHeader quotes and sanitizes, and is absent without a warning', () => {
    const e = new FilterError(488, 'bad "x" \u00e9');
    assert.equal(e.warningHeader('as.example.com'), '399 as.example.com "bad \\"x\\" ?"');
    assert.equal(new FilterError(400).warningHeader(), undefined);
    assert.equal(BADFILTER_REASON, 'badfilter');
  });
});

// ---------------------------------------------------------------------------
// Refreshes and targets
// ---------------------------------------------------------------------------

describe('mergeFilterSets (RFC 4660 3.3.3, 5.2.2)', () => {
  const initial = (): FilterSet =>
    mergeFilterSets(
      undefined,
      parseFilterSet(
        fs(`<filter id="a" uri="sip:alice@example.com"><what><include>//pidf:basic</include></what></filter>
  <filter id="b" uri="sip:bob@example.com"><trigger><changed>//pidf:basic</changed></trigger></filter>`),
      ),
    )!;

  it('keeps an initial set as it is', () => {
    const set = initial();
    assert.deepEqual(
      set.filters.map((f) => f.id),
      ['a', 'b'],
    );
    assert.equal(set.bindings.get('pidf'), PIDF_NS);
  });

  it('replaces a filter given again under its id', () => {
    const next = mergeFilterSets(
      initial(),
      parseFilterSet(
        fs(`<filter id="a" uri="sip:alice@example.com"><trigger><added>//pidf:tuple</added></trigger></filter>`),
      ),
    )!;
    const a = next.filters.find((f) => f.id === 'a')!;
    assert.equal(a.what, undefined, 'the whole content is replaced');
    assert.equal(a.triggers.length, 1);
    assert.deepEqual(
      next.filters.map((f) => f.id),
      ['a', 'b'],
    );
  });

  it('removes with remove="true", and gives undefined when nothing remains', () => {
    const cur = initial();
    const one = mergeFilterSets(
      cur,
      parseFilterSet(fs('<filter id="a" remove="true"/><filter id="zzz" remove="true"/>')),
    )!;
    assert.deepEqual(
      one.filters.map((f) => f.id),
      ['b'],
    );
    assert.equal(mergeFilterSets(one, parseFilterSet(fs('<filter id="b" remove="true"/>'))), undefined);
    assert.equal(cur.filters.length, 2, 'the current set is not modified');
  });

  it('disables and re-enables without repeating the content (RFC 4661 3.4)', () => {
    const off = mergeFilterSets(initial(), parseFilterSet(fs('<filter id="a" enabled="false"/>')))!;
    const a = off.filters.find((f) => f.id === 'a')!;
    assert.equal(a.enabled, false);
    assert.equal(a.what?.include.length, 1, 'content kept');
    assert.equal(a.uri, 'sip:alice@example.com', 'target kept');
    const on = mergeFilterSets(off, parseFilterSet(fs('<filter id="a" enabled="true"/>')))!;
    assert.equal(on.filters.find((f) => f.id === 'a')!.enabled, true);
  });

  it('adds a filter with a new id', () => {
    const next = mergeFilterSets(
      initial(),
      parseFilterSet(
        fs(`<filter id="c" uri="sip:carol@example.com"><what><include>//pidf:note</include></what></filter>`),
      ),
    )!;
    assert.deepEqual(
      next.filters.map((f) => f.id),
      ['a', 'b', 'c'],
    );
  });

  it('488 for a new enabled filter without <what> or <trigger>; a new disabled one is ignored', () => {
    assert.throws(
      () => mergeFilterSets(initial(), parseFilterSet(fs('<filter id="c" uri="sip:carol@example.com"/>'))),
      (e: unknown) => e instanceof FilterError && e.status === 488,
    );
    assert.throws(() => mergeFilterSets(undefined, parseFilterSet(fs('<filter id="c"/>'))), FilterError);
    const next = mergeFilterSets(initial(), parseFilterSet(fs('<filter id="c" enabled="false"/>')))!;
    assert.equal(next.filters.length, 2);
  });

  it('488 for a new id that keeps the uri of an existing filter (RFC 4660 5.2.2)', () => {
    assert.throws(
      () =>
        mergeFilterSets(
          initial(),
          parseFilterSet(
            fs(`<filter id="a2" uri="sip:alice@example.com"><what><include>//pidf:note</include></what></filter>`),
          ),
        ),
      (e: unknown) => e instanceof FilterError && e.status === 488,
    );
    // removing the old one in the same refresh is fine
    const next = mergeFilterSets(
      initial(),
      parseFilterSet(
        fs(
          `<filter id="a" remove="true"/><filter id="a2" uri="sip:alice@example.com"><what><include>//pidf:note</include></what></filter>`,
        ),
      ),
    )!;
    assert.deepEqual(
      next.filters.map((f) => f.id),
      ['b', 'a2'],
    );
  });

  it('accepts several bare toggles without targets in one refresh', () => {
    const next = mergeFilterSets(
      initial(),
      parseFilterSet(fs('<filter id="a" enabled="false"/><filter id="b" enabled="false"/>')),
    )!;
    assert.deepEqual(
      next.filters.map((f) => [f.id, f.enabled, f.uri]),
      [
        ['a', false, 'sip:alice@example.com'],
        ['b', false, 'sip:bob@example.com'],
      ],
    );
  });

  it('merges bindings and keeps expressions compiled with their own', () => {
    const next = mergeFilterSets(
      initial(),
      parseFilterSet(
        fs(`<filter id="c" uri="sip:carol@example.com"><what><include>//pidf:note</include></what></filter>`, {
          bindings: `<ns-bindings><ns-binding prefix="pidf" urn="urn:example:other"/></ns-bindings>`,
        }),
      ),
    )!;
    assert.equal(next.bindings.get('pidf'), 'urn:example:other');
    // filter a still selects PIDF basic elements
    const doc = filtered(presence(), filtersFor(next, 'sip:alice@example.com'));
    assert.equal(doc.tuples.length, 2);
  });
});

describe('filtersFor', () => {
  const set = parseFilterSet(
    fs(`<filter id="all"><what><include>//pidf:basic</include></what></filter>
  <filter id="bob" uri="sip:bob@example.com"><what><include>//pidf:note</include></what></filter>
  <filter id="dom" domain="example.com"><what><include>//pidf:contact</include></what></filter>
  <filter id="other" domain="example.org"><what><include>//pidf:contact</include></what></filter>
  <filter id="off" uri="sip:carol@example.com" enabled="false"><what><include>//pidf:contact</include></what></filter>`),
  );
  const ids = (uri: string): string[] => filtersFor(set, uri).map((f) => f.id);

  it('a filter without uri or domain applies to every resource', () => {
    assert.deepEqual(ids('sip:dave@example.net'), ['all']);
  });

  it('a uri filter matches its resource (SIP URIs compared as addresses of record) and overrides the domain filter', () => {
    assert.deepEqual(ids('sip:bob@example.com'), ['all', 'bob']);
    assert.deepEqual(ids('sip:bob@EXAMPLE.com;transport=tcp'), ['all', 'bob']);
  });

  it('a domain filter matches the host, whatever the user part and case', () => {
    assert.deepEqual(ids('sip:alice@Example.COM'), ['all', 'dom']);
    assert.deepEqual(ids('pres:alice@example.com'), ['all', 'dom']);
    assert.deepEqual(ids('sip:alice@sub.example.com'), ['all']);
  });

  it('disabled filters are as if absent (RFC 4660 5.3)', () => {
    assert.deepEqual(ids('sip:carol@example.com'), ['all', 'dom']);
  });
});

// ---------------------------------------------------------------------------
// Content
// ---------------------------------------------------------------------------

describe('applyContentFilters', () => {
  const doc = presence();

  it('returns the input itself when no filter has a <what>', () => {
    const fl = trigger('<changed>//pidf:basic</changed>');
    assert.equal(applyContentFilters(doc, fl), doc);
    assert.equal(applyContentFilters(doc, []), doc);
    assert.deepEqual(applyContentFiltersDetailed(doc, fl), { body: doc, filtered: false, empty: false });
  });

  it('a basic include keeps tuples with id, status and basic only (RFC 4661 3.5.1)', () => {
    const out = filtered(doc, what('<include type="xpath">/pidf:presence/pidf:tuple/pidf:status/pidf:basic</include>'));
    assert.deepEqual(
      out.tuples.map((t) => [t.id, t.basic, t.contact, t.notes.length, t.elements.length, t.deviceId]),
      [
        ['t1', 'open', undefined, 0, 0, undefined],
        ['t2', 'closed', undefined, 0, 0, undefined],
      ],
    );
    assert.equal(out.persons.length, 0);
    assert.equal(out.devices.length, 0);
    assert.equal(out.notes.length, 0);
  });

  it('messaging tuples only (RFC 4660 7.1.1)', () => {
    const sel = '//pidf:tuple[rpid:class="IM" or rpid:class="SMS" or rpid:class="MMS"]';
    const out = filtered(
      doc,
      what(
        `<include>${sel}/pidf:status/pidf:basic</include><include>${sel}/rpid:class</include><include>${sel}/pidf:contact</include>`,
      ),
    );
    assert.equal(out.tuples.length, 1);
    const t = out.tuples[0]!;
    assert.equal(t.id, 't1');
    assert.equal(t.basic, 'open');
    assert.equal(t.classValue, 'IM');
    assert.equal(t.contact?.uri, 'sip:alice@pc.example.com');
    assert.equal(t.contact?.priority, '0.8', 'a selected element keeps its attributes');
    assert.equal(t.notes.length, 0);
  });

  it('open tuples only (RFC 4660 7.1.2)', () => {
    const out = filtered(doc, what('<include>//pidf:tuple[pidf:status/pidf:basic="open"]</include>'));
    assert.deepEqual(
      out.tuples.map((t) => t.id),
      ['t1'],
    );
    assert.equal(out.tuples[0]?.notes[0]?.text, 'at my desk', 'a selected tuple comes whole');
  });

  it('type="namespace" keeps the elements of that namespace (RFC 4661 6.4)', () => {
    const out = filtered(doc, what(`<include type="namespace">${PIDF_NS}</include>`));
    assert.equal(out.tuples.length, 2);
    assert.equal(out.tuples[0]?.contact?.uri, 'sip:alice@pc.example.com');
    assert.equal(out.tuples[0]?.notes[0]?.lang, 'en');
    assert.equal(out.tuples[0]?.deviceId, undefined, 'dm:deviceID is not PIDF');
    assert.equal(out.tuples[0]?.elements.length, 0, 'no RPID');
    assert.equal(out.notes[0]?.text, 'presence note');
    assert.equal(out.persons.length, 0);
    assert.equal(out.devices.length, 0);
  });

  it('namespace include with an exclude (RFC 4661 6.6)', () => {
    const out = filtered(
      doc,
      what(`<include type="namespace">${PIDF_NS}</include><exclude>/pidf:presence/pidf:tuple/pidf:note</exclude>`),
    );
    assert.equal(out.tuples[0]?.notes.length, 0);
    assert.equal(out.notes.length, 1, 'the presence-level note is not a tuple note');
  });

  it('only the activities: the person keeps its id, nothing else comes', () => {
    const out = filtered(doc, what('<include>/pidf:presence/dm:person/rpid:activities</include>'));
    assert.equal(out.tuples.length, 0);
    assert.equal(out.persons.length, 1);
    assert.equal(out.persons[0]?.id, 'p1');
    assert.deepEqual(out.persons[0]?.activities, ['busy']);
    assert.equal(out.persons[0]?.mood, undefined);
    assert.equal(out.persons[0]?.notes.length, 0);
  });

  it('selecting inside an extension element keeps that element whole', () => {
    const out = filtered(doc, what('<include>//rpid:busy</include>'));
    assert.deepEqual(out.persons[0]?.activities, ['busy']);
    const attrOnly = filtered(doc, what('<include>//pidf:contact/@priority</include>'));
    assert.equal(attrOnly.tuples[0]?.contact?.uri, 'sip:alice@pc.example.com');
    assert.equal(attrOnly.tuples.length, 1, 'only the tuple whose contact has a priority');
  });

  it('an attribute of a tuple keeps the tuple with an empty status', () => {
    const out = filtered(doc, what('<include>//pidf:tuple/@id</include>'));
    assert.deepEqual(
      out.tuples.map((t) => [t.id, t.basic]),
      [
        ['t1', undefined],
        ['t2', undefined],
      ],
    );
    assert.match(
      applyContentFilters(doc, what('<include>//pidf:tuple/@id</include>')),
      /<tuple id="t1"><status\/><\/tuple>/,
    );
  });

  it('a device keeps its mandatory dm:deviceID', () => {
    const out = filtered(doc, what('<include>//dm:device/rpid:user-input</include>'));
    assert.equal(out.devices.length, 1);
    assert.equal(out.devices[0]?.deviceId, 'mac:11');
    assert.equal(out.devices[0]?.userInput, 'active');
  });

  it('exclude alone: everything but the excluded items', () => {
    const out = filtered(
      doc,
      what(
        '<exclude>//pidf:note</exclude><exclude>//pidf:contact/@priority</exclude><exclude type="namespace">' +
          RPID_NS +
          '</exclude>',
      ),
    );
    assert.equal(out.tuples.length, 2);
    assert.equal(out.tuples[0]?.notes.length, 0);
    assert.equal(out.notes.length, 0);
    assert.equal(out.tuples[0]?.contact?.uri, 'sip:alice@pc.example.com');
    assert.equal(out.tuples[0]?.contact?.priority, undefined);
    assert.equal(out.tuples[0]?.elements.length, 0);
    assert.equal(out.persons[0]?.activities, undefined);
    assert.equal(out.persons[0]?.notes[0]?.text, 'in a meeting');
    assert.equal(out.tuples[0]?.deviceId, 'mac:11');
  });

  it('does not apply exclusions of mandatory items or of parts of an extension (RFC 4661 3.5.2)', () => {
    const out = filtered(
      doc,
      what(
        '<exclude>//pidf:status</exclude><exclude>/pidf:presence/@entity</exclude><exclude>//pidf:tuple/@id</exclude><exclude>//dm:device/dm:deviceID</exclude><exclude>//rpid:busy</exclude>',
      ),
    );
    assert.equal(out.tuples[0]?.basic, 'open');
    assert.equal(out.devices[0]?.deviceId, 'mac:11');
    assert.deepEqual(out.persons[0]?.activities, ['busy']);
  });

  it('excluding a tuple drops what was included inside it', () => {
    const out = filtered(doc, what('<include>//pidf:basic</include><exclude>//pidf:tuple[@id="t2"]</exclude>'));
    assert.deepEqual(
      out.tuples.map((t) => t.id),
      ['t1'],
    );
  });

  it('nothing selected: only the skeleton, flagged empty (RFC 4660 5.3.1: NOTIFY without body)', () => {
    const fl = what('<include>//pidf:tuple[@id="nope"]</include>');
    const r = applyContentFiltersDetailed(doc, fl);
    assert.equal(r.empty, true);
    assert.equal(r.filtered, true);
    assert.equal(
      r.body,
      `<?xml version="1.0" encoding="UTF-8"?><presence xmlns="${PIDF_NS}" entity="sip:alice@example.com"/>`,
    );
    assert.equal(applyContentFiltersDetailed(doc, what('<include>//pidf:basic</include>')).empty, false);
  });

  it('several filters: the union of what each keeps', () => {
    const set = mergeFilterSets(
      undefined,
      parseFilterSet(
        fs(`<filter id="a"><what><include>//pidf:tuple[@id="t1"]/pidf:status/pidf:basic</include></what></filter>
  <filter id="b" domain="example.com"><what><include>//dm:person/rpid:mood</include><include>//pidf:tuple[@id="t2"]/pidf:contact</include></what></filter>`),
      ),
    )!;
    const out = filtered(doc, filtersFor(set, 'sip:alice@example.com'));
    assert.deepEqual(
      out.tuples.map((t) => [t.id, t.basic, t.contact?.uri]),
      [
        ['t1', 'open', undefined],
        ['t2', undefined, 'tel:+15551234'],
      ],
    );
    assert.deepEqual(out.persons[0]?.mood, ['happy']);
  });

  it('ignores disabled filters and filters without <what>', () => {
    const set = parseFilterSet(
      fs(`<filter id="a" enabled="false"><what><include>//pidf:basic</include></what></filter>`),
    );
    assert.equal(applyContentFilters(doc, set.filters), doc);
  });

  it('is stable: filtering a filtered document again changes nothing', () => {
    const fl = what(`<include type="namespace">${PIDF_NS}</include><exclude>//pidf:note</exclude>`);
    const once = applyContentFilters(doc, fl);
    assert.equal(applyContentFilters(once, fl), once);
  });
});

// ---------------------------------------------------------------------------
// Triggers
// ---------------------------------------------------------------------------

describe('triggersFire', () => {
  const basicChanged = trigger('<changed>/pidf:presence/pidf:tuple/pidf:status/pidf:basic</changed>');

  it('true without filters, with a filter without triggers, and for the first NOTIFY (RFC 4660 5.3, 5.3.1)', () => {
    assert.equal(triggersFire(presence(), presence({ t1Note: 'x' }), []), true);
    assert.equal(triggersFire(presence(), presence({ t1Note: 'x' }), what('<include>//pidf:basic</include>')), true);
    assert.equal(triggersFire(undefined, presence(), basicChanged), true);
  });

  it('a basic trigger fires when a basic changes', () => {
    assert.equal(triggersFire(presence(), presence({ t2: 'open' }), basicChanged), true);
    assert.equal(triggersFire(presence(), presence({ t1: 'closed' }), basicChanged), true);
  });

  it('a note-only change does not fire a basic trigger; nor does an identical document or a reordering', () => {
    assert.equal(triggersFire(presence(), presence({ t1Note: 'gone fishing' }), basicChanged), false);
    assert.equal(triggersFire(presence(), presence({ activity: 'away' }), basicChanged), false);
    assert.equal(triggersFire(presence(), presence(), basicChanged), false);
    assert.equal(
      triggersFire(presence(), presence({ swapTuples: true }), basicChanged),
      false,
      'tuples are matched by id',
    );
  });

  it('from="closed" to="open" (RFC 4660 7.1.3)', () => {
    const fl = trigger('<changed from="closed" to="open">/pidf:presence/pidf:tuple/pidf:status/pidf:basic</changed>');
    assert.equal(
      triggersFire(presence({ t1: 'closed', t2: 'closed' }), presence({ t1: 'open', t2: 'closed' }), fl),
      true,
    );
    assert.equal(triggersFire(presence({ t1: 'open' }), presence({ t1: 'closed' }), fl), false, 'the other direction');
    assert.equal(
      triggersFire(presence({ t1: 'open', t2: 'open' }), presence({ t1: 'closed', t2: 'closed' }), fl),
      false,
    );
    assert.equal(triggersFire(presence(), presence({ t1Note: 'x' }), fl), false);
  });

  it('from alone and to alone', () => {
    const from = trigger('<changed from="open">//pidf:basic</changed>');
    const to = trigger('<changed to="open">//pidf:basic</changed>');
    assert.equal(triggersFire(presence({ t1: 'open' }), presence({ t1: 'closed' }), from), true);
    assert.equal(triggersFire(presence({ t2: 'closed' }), presence({ t2: 'open' }), from), false);
    assert.equal(triggersFire(presence({ t2: 'closed' }), presence({ t2: 'open' }), to), true);
    assert.equal(triggersFire(presence({ t1: 'open' }), presence({ t1: 'closed' }), to), false);
  });

  it('an activity change fires an activities trigger (empty RPID elements compare by structure)', () => {
    const fl = trigger('<changed>/pidf:presence/dm:person/rpid:activities</changed>');
    assert.equal(triggersFire(presence({ activity: 'busy' }), presence({ activity: 'away' }), fl), true);
    assert.equal(triggersFire(presence(), presence({ personNote: 'lunch' }), fl), false);
    assert.equal(triggersFire(presence(), presence({ t2: 'open' }), fl), false);
  });

  it('added and removed tuples (RFC 4661 3.6.2, 3.6.3)', () => {
    const added = trigger('<added>/pidf:presence/pidf:tuple</added>');
    const removed = trigger('<removed>/pidf:presence/pidf:tuple</removed>');
    assert.equal(triggersFire(presence(), presence({ extraTuple: true }), added), true);
    assert.equal(triggersFire(presence(), presence({ t2: 'open' }), added), false);
    assert.equal(triggersFire(presence({ extraTuple: true }), presence(), added), false);
    assert.equal(triggersFire(presence(), presence({ dropT2: true }), removed), true);
    assert.equal(triggersFire(presence(), presence({ extraTuple: true }), removed), false);
  });

  it('a changed trigger sees a selected node appear (no from / to)', () => {
    assert.equal(triggersFire(presence(), presence({ extraTuple: true }), basicChanged), true);
  });

  it('conditions of one trigger are AND-ed, triggers are OR-ed (RFC 4661 3.6)', () => {
    const and = trigger('<changed>//pidf:basic</changed><added>//pidf:tuple</added>');
    assert.equal(triggersFire(presence(), presence({ t2: 'open' }), and), false);
    assert.equal(triggersFire(presence(), presence({ extraTuple: true }), and), true);
    const or = filters(
      fs(
        `<filter id="f"><trigger><changed>//dm:person/rpid:activities</changed></trigger><trigger><removed>//pidf:tuple</removed></trigger></filter>`,
      ),
    );
    assert.equal(triggersFire(presence(), presence({ activity: 'away' }), or), true);
    assert.equal(triggersFire(presence(), presence({ dropT2: true }), or), true);
    assert.equal(triggersFire(presence(), presence({ t1: 'closed' }), or), false);
  });

  it('filters are OR-ed too, disabled ones ignored', () => {
    const set = parseFilterSet(
      fs(`<filter id="a" uri="sip:alice@example.com"><trigger><changed>//pidf:basic</changed></trigger></filter>
  <filter id="b" domain="example.com" enabled="false"><what><include>//pidf:basic</include></what></filter>`),
    );
    assert.equal(
      triggersFire(presence(), presence({ t1Note: 'x' }), set.filters),
      false,
      'the disabled what-only filter does not let every change through',
    );
    assert.equal(triggersFire(presence(), presence({ t1: 'closed' }), set.filters), true);
  });

  it('attribute triggers and by (RFC 4660 7.2.3, RFC 4661 3.6.1.3) on watcher information', () => {
    const winfo = (status: string, expiration: string): string =>
      `<watcherinfo xmlns="${WI_NS}" version="0" state="full"><watcher-list resource="sip:alice@example.com" package="presence">` +
      `<watcher status="${status}" id="w1" event="subscribe" expiration="${expiration}">sip:bob@example.com</watcher></watcher-list></watcherinfo>`;
    const wb = `<ns-bindings><ns-binding prefix="wi" urn="${WI_NS}"/></ns-bindings>`;
    const status = filters(
      fs('<filter id="s"><trigger><changed from="pending" to="terminated">//@status</changed></trigger></filter>', {
        bindings: wb,
      }),
    );
    assert.equal(triggersFire(winfo('pending', '6'), winfo('terminated', '6'), status), true);
    assert.equal(triggersFire(winfo('pending', '6'), winfo('active', '6'), status), false);
    const by = filters(
      fs('<filter id="b"><trigger><changed by="2">//wi:watcher/@expiration</changed></trigger></filter>', {
        bindings: wb,
      }),
    );
    assert.equal(triggersFire(winfo('active', '6'), winfo('active', '7'), by), false);
    assert.equal(triggersFire(winfo('active', '6'), winfo('active', '8'), by), true);
    assert.equal(triggersFire(winfo('active', '6'), winfo('active', '4'), by), true);
    assert.equal(triggersFire(winfo('active', '6'), winfo('active', 'soon'), by), false, 'not a number');
  });
});
