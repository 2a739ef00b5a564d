import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_PARTS,
  MimePart,
  MultipartParseError,
  buildMultipart,
  isValidBoundary,
  parseDisposition,
  parseMediaType,
  parseMultipart,
  pickBoundary,
  relatedRoot,
  type PartInit,
} from '../../as/src/sip/multipart.js';

/** Joins lines with CRLF (the wire form). */
const crlf = (...lines: string[]): string => lines.join('\r\n');
const lf = (...lines: string[]): string => lines.join('\n');

function refused(reason: string | RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof MultipartParseError, `expected MultipartParseError, got ${String(err)}`);
    if (typeof reason === 'string') assert.equal(err.reason, reason);
    else assert.match(err.reason, reason);
    return true;
  };
}

const simple = (p: MimePart) => ({ headers: p.headers, body: p.body });

describe('parseMultipart', () => {
  it('splits a CRLF multipart/mixed body into parts with headers, content type and exact bodies', () => {
    const body = crlf(
      '--zz9',
      'Content-Type: text/plain;charset=UTF-8',
      'Content-ID: <m1@pager.example.org>',
      '',
      'Lunch at noon?',
      'Reply soon.',
      '--zz9',
      'content-type: application/resource-lists+xml',
      'CONTENT-DISPOSITION: recipient-list; handling="required"',
      '',
      '<resource-lists/>',
      '--zz9--',
      '',
    );
    const mp = parseMultipart(body, 'multipart/mixed;boundary=zz9');
    assert.equal(mp.mediaType, 'multipart/mixed');
    assert.equal(mp.subtype, 'mixed');
    assert.equal(mp.boundary, 'zz9');
    assert.equal(mp.parts.length, 2);
    const [a, b] = mp.parts as [MimePart, MimePart];
    assert.ok(a instanceof MimePart);
    assert.deepEqual(a.headers, [
      ['Content-Type', 'text/plain;charset=UTF-8'],
      ['Content-ID', '<m1@pager.example.org>'],
    ]);
    assert.equal(a.body, 'Lunch at noon?\r\nReply soon.');
    assert.equal(a.contentType?.type, 'text/plain');
    assert.equal(a.contentType?.params.get('charset'), 'UTF-8');
    assert.equal(a.contentId, '<m1@pager.example.org>');
    assert.equal(a.disposition, undefined);
    assert.equal(a.header('CONTENT-type'), 'text/plain;charset=UTF-8');
    assert.equal(a.header('X-Nope'), undefined);

    assert.equal(b.header('Content-Type'), 'application/resource-lists+xml');
    assert.equal(b.contentType?.type, 'application/resource-lists+xml');
    assert.deepEqual(b.disposition, { value: 'recipient-list', params: new Map([['handling', 'required']]) });
    assert.equal(b.body, '<resource-lists/>');
  });

  it('accepts bare LF line endings and keeps the body characters as given', () => {
    const body = lf(
      '--b1',
      'Content-Type: text/plain',
      '',
      'one',
      '',
      'two',
      '--b1',
      'Content-Type: text/html',
      '',
      '<p>x</p>',
      '--b1--',
    );
    const mp = parseMultipart(body, 'multipart/mixed; boundary=b1');
    assert.deepEqual(
      mp.parts.map((p) => p.body),
      ['one\n\ntwo', '<p>x</p>'],
    );
    assert.deepEqual(
      mp.parts.map((p) => p.contentType?.type),
      ['text/plain', 'text/html'],
    );
  });

  it('keeps a body that ends with its own line break (only the last CRLF belongs to the delimiter)', () => {
    const body = crlf('--q', 'Content-Type: text/plain', '', 'line', '', '--q--');
    assert.equal(parseMultipart(body, 'multipart/mixed;boundary=q').parts[0]?.body, 'line\r\n');
  });

  it('reads a quoted boundary with characters that need quoting, and an uppercase media type', () => {
    const boundary = "simple boundary:(1)=?,/'+_.-";
    assert.ok(isValidBoundary(boundary));
    const body = crlf(`--${boundary}`, 'Content-Type: text/plain', '', 'hi', `--${boundary}--`);
    const mp = parseMultipart(body, `Multipart/Mixed; boundary="${boundary}"`);
    assert.equal(mp.boundary, boundary);
    assert.equal(mp.mediaType, 'multipart/mixed');
    assert.equal(mp.params.get('boundary'), boundary);
    assert.deepEqual(mp.parts.map(simple), [{ headers: [['Content-Type', 'text/plain']], body: 'hi' }]);
  });

  it('ignores preamble and epilogue', () => {
    const body = crlf(
      'This is the preamble; MIME-unaware readers see it.',
      '--sep',
      'Content-Type: text/plain',
      '',
      'payload',
      '--sep--',
      'and this is the epilogue',
      '--sep',
      'not a part',
    );
    const mp = parseMultipart(body, 'multipart/mixed;boundary=sep');
    assert.equal(mp.parts.length, 1);
    assert.equal(mp.parts[0]?.body, 'payload');
  });

  it('accepts a part without headers and an empty body, and transport padding after a delimiter', () => {
    const body = '--p  \r\n\r\nno headers here\r\n--p\t\r\nContent-Type: text/plain\r\n\r\n\r\n--p--  \r\n';
    const mp = parseMultipart(body, 'multipart/mixed;boundary=p');
    assert.deepEqual(mp.parts.map(simple), [
      { headers: [], body: 'no headers here' },
      { headers: [['Content-Type', 'text/plain']], body: '' },
    ]);
    assert.equal(mp.parts[0]?.contentType, undefined);
  });

  it('does not take a boundary that is not at the start of a line for a delimiter', () => {
    const body = crlf('--x', 'Content-Type: text/plain', '', 'see --x in the text', '--x--');
    assert.equal(parseMultipart(body, 'multipart/mixed;boundary=x').parts[0]?.body, 'see --x in the text');
  });

  it('unfolds continuation lines and keeps header order and duplicates', () => {
    const body = crlf(
      '--f',
      'Content-Type: text/plain;',
      '\tcharset=utf-8',
      'X-Note: first',
      'X-Note:   second  ',
      '   continued',
      'X-Empty:',
      '',
      'body',
      '--f--',
    );
    const p = parseMultipart(body, 'multipart/mixed;boundary=f').parts[0] as MimePart;
    assert.deepEqual(p.headers, [
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['X-Note', 'first'],
      ['X-Note', 'second continued'],
      ['X-Empty', ''],
    ]);
    assert.equal(p.contentType?.params.get('charset'), 'utf-8');
    assert.equal(p.header('x-note'), 'first');
  });

  it('parses multipart/related with type and start and finds the root part', () => {
    const body = crlf(
      '--rel',
      'Content-Type: application/pidf+xml',
      'Content-ID: <pidf1@ps.example.net>',
      '',
      '<presence/>',
      '--rel',
      'Content-Type: application/rlmi+xml;charset=UTF-8',
      'Content-ID: <root9@rls.example.net>',
      '',
      '<list/>',
      '--rel--',
    );
    const ct = 'multipart/related;type="application/rlmi+xml";start="<root9@rls.example.net>";boundary="rel"';
    const mp = parseMultipart(body, ct);
    assert.equal(mp.subtype, 'related');
    assert.equal(mp.params.get('type'), 'application/rlmi+xml');
    assert.equal(mp.params.get('start'), '<root9@rls.example.net>');
    assert.equal(relatedRoot(mp)?.body, '<list/>');
    // Without start, the root is the first part; with an unknown start, there is none.
    assert.equal(
      relatedRoot(parseMultipart(body, 'multipart/related;type="application/pidf+xml";boundary=rel'))?.body,
      '<presence/>',
    );
    assert.equal(
      relatedRoot(parseMultipart(body, 'multipart/related;type="x/y";start="<nope@x>";boundary=rel')),
      undefined,
    );
  });

  it('accepts exactly MAX_PARTS parts and refuses one more', () => {
    const partText = (n: number) => Array.from({ length: n }, (_, i) => `--m\r\n\r\n${i}\r\n`).join('') + '--m--';
    const ok = parseMultipart(partText(MAX_PARTS), 'multipart/mixed;boundary=m');
    assert.equal(ok.parts.length, 1000);
    assert.equal(ok.parts[999]?.body, '999');
    assert.throws(
      () => parseMultipart(partText(MAX_PARTS + 1), 'multipart/mixed;boundary=m'),
      refused('more than 1000 parts'),
    );
  });

  describe('refusals', () => {
    const good = crlf('--b', 'Content-Type: text/plain', '', 'x', '--b--');
    it('non-multipart media type', () => {
      assert.throws(() => parseMultipart(good, 'text/plain;boundary=b'), refused('not a multipart media type'));
    });
    it('malformed Content-Type', () => {
      assert.throws(() => parseMultipart(good, 'multipart mixed'), refused('malformed Content-Type'));
      assert.throws(() => parseMultipart(good, 'multipart/mixed;boundary="b'), refused('malformed Content-Type'));
    });
    it('missing boundary', () => {
      assert.throws(() => parseMultipart(good, 'multipart/mixed'), refused('missing boundary parameter'));
    });
    it('invalid boundary (too long, trailing space, empty, bad character)', () => {
      assert.throws(
        () => parseMultipart(good, `multipart/mixed;boundary=${'a'.repeat(71)}`),
        refused('invalid boundary parameter'),
      );
      assert.throws(() => parseMultipart(good, 'multipart/mixed;boundary="b "'), refused('invalid boundary parameter'));
      assert.throws(() => parseMultipart(good, 'multipart/mixed;boundary=""'), refused('invalid boundary parameter'));
      assert.throws(() => parseMultipart(good, 'multipart/mixed;boundary=a*b'), refused('invalid boundary parameter'));
    });
    it('no delimiter at all', () => {
      assert.throws(() => parseMultipart('just text', 'multipart/mixed;boundary=b'), refused('no boundary delimiter'));
    });
    it('no closing delimiter', () => {
      assert.throws(
        () => parseMultipart(crlf('--b', 'Content-Type: text/plain', '', 'x'), 'multipart/mixed;boundary=b'),
        refused('missing closing boundary delimiter'),
      );
      assert.throws(
        () => parseMultipart(crlf('--b', '', 'x', '--b', '', 'y', ''), 'multipart/mixed;boundary=b'),
        refused('missing closing boundary delimiter'),
      );
    });
    it('no parts (close delimiter first)', () => {
      assert.throws(() => parseMultipart('--b--\r\n', 'multipart/mixed;boundary=b'), refused('no body parts'));
    });
    it('part without header/body separator', () => {
      assert.throws(
        () => parseMultipart(crlf('--b', 'Content-Type: text/plain', '--b--'), 'multipart/mixed;boundary=b'),
        refused('part 1 has no empty line after its headers'),
      );
      assert.throws(
        () => parseMultipart(crlf('--b', '', 'ok', '--b', '--b--'), 'multipart/mixed;boundary=b'),
        refused('part 2 has no empty line after its headers'),
      );
    });
    it('malformed header lines', () => {
      assert.throws(
        () => parseMultipart(crlf('--b', 'no colon here', '', 'x', '--b--'), 'multipart/mixed;boundary=b'),
        refused('malformed header line in part 1'),
      );
      assert.throws(
        () => parseMultipart(crlf('--b', ' folded: first', '', 'x', '--b--'), 'multipart/mixed;boundary=b'),
        refused('part 1 starts with a continuation line'),
      );
      assert.throws(
        () => parseMultipart(crlf('--b', 'Content-Type: text', '', 'x', '--b--'), 'multipart/mixed;boundary=b'),
        refused('malformed Content-Type in part 1'),
      );
      assert.throws(
        () => parseMultipart(crlf('--b', 'Content-Disposition: ;x=1', '', 'x', '--b--'), 'multipart/mixed;boundary=b'),
        refused('malformed Content-Disposition in part 1'),
      );
    });
  });
});

describe('parseMediaType / parseDisposition', () => {
  it('lowercases the type and unquotes parameter values', () => {
    const mt = parseMediaType(' Application/RLMI+XML ; Charset="UTF-8";x=y');
    assert.deepEqual(mt, {
      type: 'application/rlmi+xml',
      params: new Map([
        ['charset', 'UTF-8'],
        ['x', 'y'],
      ]),
    });
    assert.equal(parseMediaType('text'), undefined);
    assert.deepEqual(parseDisposition('Recipient-List-History; handling=optional'), {
      value: 'recipient-list-history',
      params: new Map([['handling', 'optional']]),
    });
  });
});

describe('buildMultipart', () => {
  const parts: PartInit[] = [
    { headers: [['Content-Type', 'text/plain;charset=UTF-8']], body: 'Hello,\r\nworld' },
    {
      headers: [
        ['Content-Type', 'application/resource-lists+xml'],
        ['Content-Disposition', 'recipient-list'],
      ],
      body: '<resource-lists/>',
    },
  ];

  it('writes CRLF delimiters, headers, the empty line and the closing delimiter', () => {
    const out = buildMultipart({ subtype: 'mixed', boundary: 'fixed-1', parts });
    assert.equal(out.contentType, 'multipart/mixed;boundary=fixed-1');
    assert.equal(
      out.body,
      '--fixed-1\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\nHello,\r\nworld\r\n' +
        '--fixed-1\r\nContent-Type: application/resource-lists+xml\r\nContent-Disposition: recipient-list\r\n\r\n<resource-lists/>\r\n' +
        '--fixed-1--\r\n',
    );
  });

  it('round trips: parse(build(x)) gives the same parts', () => {
    const tricky: PartInit[] = [
      { headers: [], body: '' },
      { headers: [['Content-Type', 'text/plain']], body: 'ends with newline\r\n' },
      {
        headers: [
          ['Content-Type', 'text/plain'],
          ['X-A', 'a'],
          ['x-a', 'b'],
        ],
        body: 'lf only\nlines\n\n',
      },
      {
        headers: [['Content-Type', 'message/cpim']],
        body: 'From: <sip:a@x>\r\n\r\nContent-Type: text/plain\r\n\r\nhi',
      },
      { headers: [['Content-Type', 'text/plain']], body: '--almost a delimiter but not ours\r\n--' },
    ];
    for (const boundary of [undefined, 'b', 'with space and (parens)?']) {
      const built = buildMultipart({
        subtype: 'mixed',
        parts: tricky,
        ...(boundary === undefined ? {} : { boundary }),
      });
      const mp = parseMultipart(built.body, built.contentType);
      assert.deepEqual(
        mp.parts.map(simple),
        tricky.map((p) => ({ headers: p.headers, body: p.body })),
      );
      if (boundary !== undefined) assert.equal(mp.boundary, boundary);
    }
  });

  it('quotes a boundary that is not a token', () => {
    const out = buildMultipart({ subtype: 'mixed', boundary: 'a:b=c', parts });
    assert.equal(out.contentType, 'multipart/mixed;boundary="a:b=c"');
  });

  it('writes type and start (quoted) for multipart/related and round trips the root', () => {
    const rel: PartInit[] = [
      {
        headers: [
          ['Content-Type', 'application/rlmi+xml;charset=UTF-8'],
          ['Content-ID', '<rlmi@rls.example.net>'],
        ],
        body: '<list/>',
      },
      {
        headers: [
          ['Content-Type', 'application/pidf+xml'],
          ['Content-ID', '<p1@rls.example.net>'],
        ],
        body: '<presence/>',
      },
    ];
    const out = buildMultipart({
      subtype: 'related',
      boundary: 'r1',
      type: 'application/rlmi+xml',
      start: '<rlmi@rls.example.net>',
      parts: rel,
    });
    assert.equal(
      out.contentType,
      'multipart/related;type="application/rlmi+xml";start="<rlmi@rls.example.net>";boundary=r1',
    );
    const mp = parseMultipart(out.body, out.contentType);
    assert.equal(relatedRoot(mp)?.body, '<list/>');
    assert.deepEqual(mp.parts.map(simple), rel);
  });

  it('refuses invalid input', () => {
    // The boundary text alone is harmless ('Hello' is in a body); '--' + boundary is not.
    assert.equal(
      buildMultipart({ subtype: 'mixed', boundary: 'Hello', parts }).contentType,
      'multipart/mixed;boundary=Hello',
    );
    assert.throws(
      () => buildMultipart({ subtype: 'mixed', boundary: 'cut', parts: [{ headers: [], body: 'a\r\n--cut\r\nb' }] }),
      /boundary occurs in a part/,
    );
    assert.throws(
      () => buildMultipart({ subtype: 'mixed', boundary: 'cut', parts: [{ headers: [], body: 'trailing\n--cut' }] }),
      /boundary occurs in a part/,
    );
    assert.throws(
      () =>
        buildMultipart({
          subtype: 'mixed',
          boundary: 'lists+xml',
          parts: [{ headers: [['X', '--lists+xml']], body: '' }],
        }),
      /boundary occurs/,
    );
    assert.throws(
      () => buildMultipart({ subtype: 'mixed', boundary: 'bad*char', parts }),
      /invalid multipart boundary/,
    );
    assert.throws(() => buildMultipart({ subtype: 'mixed', parts: [] }), /at least one part/);
    assert.throws(
      () => buildMultipart({ subtype: 'mixed', parts: [{ headers: [['X-Evil', 'a\r\nBcc: x']], body: '' }] }),
      /line break/,
    );
    assert.throws(
      () => buildMultipart({ subtype: 'mixed', parts: [{ headers: [['Bad Name', 'v']], body: '' }] }),
      /invalid part header name/,
    );
    assert.throws(() => buildMultipart({ subtype: 'related', parts }), /needs a type parameter/);
    assert.throws(() => buildMultipart({ subtype: 'mixed', type: 'text/plain', parts }), /multipart\/related only/);
    assert.throws(
      () => buildMultipart({ subtype: 'related', type: 'text/plain', start: '<none@x>', parts }),
      /not the Content-ID of a part/,
    );
    const many = Array.from({ length: MAX_PARTS + 1 }, () => ({ headers: [], body: 'x' }));
    assert.throws(() => buildMultipart({ subtype: 'mixed', parts: many }), /at most 1000 parts/);
  });
});

describe('pickBoundary', () => {
  it('is deterministic, depends on seed and content, and is a valid boundary', () => {
    const parts: PartInit[] = [{ headers: [['Content-Type', 'text/plain']], body: 'abc' }];
    const b1 = pickBoundary(parts);
    assert.equal(pickBoundary(parts), b1);
    assert.match(b1, /^mp-[0-9a-f]{32}$/);
    assert.ok(isValidBoundary(b1));
    assert.notEqual(pickBoundary(parts, 'other seed'), b1);
    assert.notEqual(pickBoundary([{ headers: [], body: 'abd' }]), b1);
  });

  it('never returns a boundary that occurs in the content', () => {
    const parts: PartInit[] = [{ headers: [], body: 'x' }];
    const first = pickBoundary(parts);
    // A body that contains the boundary picked for another body: the pick changes and avoids it.
    const sneaky: PartInit[] = [{ headers: [], body: `--${first}` }];
    const b = pickBoundary(sneaky);
    assert.ok(!sneaky[0]?.body.includes(`--${b}`));
    const built = buildMultipart({ subtype: 'mixed', parts: sneaky });
    assert.equal(parseMultipart(built.body, built.contentType).parts[0]?.body, `--${first}`);
  });
});
