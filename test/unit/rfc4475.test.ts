/**
 * The SIP torture test messages of RFC 4475, bit for bit (test/fixtures/rfc4475: the files of
 * the RFC's Appendix A archive), through the AS's SIP parser. Each message is classified as
 * the RFC classifies it: valid ones must parse and mean what the RFC says they mean; invalid
 * ones must be refused, except where the RFC lets an element be liberal and the AS never
 * reads the faulty part (each such case says why).
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { remoteTarget } from '../../as/src/sip/request-checks.js';
import { isSameAor, parseSipMessage, parseUri, SipParseError, type SipMessage } from '../../as/src/sip/index.js';

const DIR = join(fileURLToPath(new URL('.', import.meta.url)), '../../../test/fixtures/rfc4475');
const read = (name: string): string => new TextDecoder().decode(readFileSync(join(DIR, `${name}.dat`)));
const parse = (name: string): SipMessage => parseSipMessage(read(name));
const request = (name: string) => {
  const m = parse(name);
  assert.equal(m.kind, 'request', name);
  return m as Extract<SipMessage, { kind: 'request' }>;
};

/** Syntactically valid messages (RFC 4475 3.1.1, and the valid ones of 3.2, 3.3 and 3.4). */
const VALID = [
  'wsinv',
  'intmeth',
  'esc01',
  'escnull',
  'esc02',
  'lwsdisp',
  'longreq',
  'dblreq',
  'semiuri',
  'transports',
  'mpart01',
  'unreason',
  'noreason',
  'badbranch',
  'unkscm',
  'novelsc',
  'unksm2',
  'bext01',
  'invut',
  'regaut01',
  'bcast',
  'zeromf',
  'cparam01',
  'cparam02',
  'regescrt',
  'sdp01',
  'inv2543',
];
/** Messages refused by the parser, with the reason given (the 400's reason phrase). */
const REFUSED: Record<string, RegExp> = {
  badvers: /SIP Version Not Supported/,
  bigcode: /start line/,
  clerr: /Content-Length/,
  ncl: /Content-Length/,
  ltgtruri: /Request-URI/,
  lwsruri: /start line/,
  lwsstart: /start line/,
  trws: /start line/,
  mcl01: /Content-Length/,
  mismatch01: /CSeq method mismatch/,
  mismatch02: /CSeq method mismatch/,
  multi01: /Multiple CSeq/,
  scalar02: /CSeq/,
  scalarlg: /CSeq/,
  insuf: /Missing Call-ID/,
  baddn: /empty line|name-addr/,
};
/** Refused when From or To is read (the ISC edge reads both for every request: 400). */
const REFUSED_FROM_TO = ['quotbal', 'badaspec'];
/** Invalid, but the RFC lets an element accept them, and the AS never acts on the fault. */
const LIBERAL: Record<string, string> = {
  baddate: 'the AS never reads Date (3.1.2.12: an element that does not need it may ignore it)',
  regbadct:
    "REGISTER is Kamailio's; the brackets can be inferred (3.1.2.13); as a SUBSCRIBE target it is refused (below)",
  escruri: 'the escaped headers stay in the Request-URI and are never applied as headers (3.1.2.11)',
  badinv01: 'the empty Via and Contact parameters are ignored: Kamailio routes by Via, the AS never does (3.1.2.1)',
};

describe('RFC 4475 torture messages through the SIP parser', () => {
  it('has all 49 messages of the archive, each classified once', () => {
    const files = readdirSync(DIR)
      .filter((f) => f.endsWith('.dat'))
      .map((f) => f.slice(0, -4))
      .sort();
    assert.equal(files.length, 49);
    const classified = [...VALID, ...Object.keys(REFUSED), ...REFUSED_FROM_TO, ...Object.keys(LIBERAL)].sort();
    assert.deepEqual(classified, files);
  });

  for (const name of VALID) {
    it(`parses the valid message ${name}, From and To included`, () => {
      const m = parse(name);
      if (m.kind === 'request') {
        assert.ok(m.from.uri && m.to.uri);
      }
    });
  }

  for (const [name, reason] of Object.entries(REFUSED)) {
    it(`refuses ${name} with 400-class reason ${reason}`, () => {
      assert.throws(
        () => parse(name),
        (e: unknown) => e instanceof SipParseError && reason.test(e.reason) && e.status >= 400 && e.status < 600,
      );
    });
  }

  for (const name of REFUSED_FROM_TO) {
    it(`refuses ${name} when its From/To is read`, () => {
      const m = request(name);
      assert.throws(() => [m.from.uri, m.to.uri], SipParseError);
    });
  }

  for (const [name, why] of Object.entries(LIBERAL)) {
    it(`accepts ${name}: ${why}`, () => {
      const m = request(name);
      assert.ok(m.from.uri && m.to.uri);
    });
  }

  it('reads wsinv as the RFC says: folded headers, leading zeros, short and long forms, empty Subject', () => {
    const m = request('wsinv');
    assert.equal(m.method, 'INVITE');
    assert.equal(m.cseq.seq, 9);
    assert.equal(m.cseq.method, 'INVITE');
    assert.equal(m.callId, 'wsinv.ndaksdj@192.0.2.1');
    assert.equal(m.from.tag, '98asjd8');
    assert.equal(m.headers.get('Max-Forwards'), '0068');
    assert.equal(m.headers.get('Subject'), '');
    assert.equal(m.headers.getAll('Via').length, 3);
    assert.ok(isSameAor(m.to.uri, 'sip:vivekg@chair-dnrc.example.com'));
  });

  it('keeps the unusual method token of intmeth and the escaped method of esc02 as they are', () => {
    assert.equal(request('intmeth').method, "!interesting-Method0123456789_*+`.%indeed'~");
    assert.equal(request('esc02').method, 'RE%47IST%45R');
  });

  it('compares escaped URIs by their meaning (esc01) and keeps an escaped NUL escaped (escnull)', () => {
    assert.ok(isSameAor(request('esc01').to.uri, 'sip:user@example.com'));
    const n = request('escnull');
    assert.match(n.to.uri, /null-%00-null/);
    assert.doesNotMatch(n.to.uri, /\u0000/);
  });

  it('takes only the first request of dblreq, with its empty body', () => {
    const m = request('dblreq');
    assert.equal(m.method, 'REGISTER');
    assert.equal(m.body, '');
  });

  it('reads a user part holding ";" (semiuri) and the UTF-8 reason phrase of unreason', () => {
    const uri = parseUri(request('semiuri').uri);
    assert.equal(uri.host, 'example.com');
    assert.match(uri.user ?? '', /^user;par=/);
    const r = parse('unreason');
    assert.equal(r.kind, 'response');
    if (r.kind === 'response')
      assert.equal(
        r.reason,
        '= 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f\u043d\u043e\u0441\u0442\u043e \u0434\u0435\u0432\u044f\u0442\u044c - \u043f\u0440\u043e\u0441\u0442\u043e\u0435',
      );
    const n = parse('noreason');
    if (n.kind === 'response') assert.equal(n.status, 100);
  });

  it('refuses regescrt and regbadct Contacts (URI headers) as the target of a dialog', () => {
    for (const name of ['regescrt', 'regbadct']) {
      assert.deepEqual(remoteTarget(request(name)), { problem: 'Contact URI must not carry headers' }, name);
    }
  });
});
