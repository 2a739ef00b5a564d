import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import {
  buildCdr,
  deriveCause,
  normalizeCdr,
  parseChargingVector,
  CDR_FIELDS,
  CAUSES_FOR_RECORD_CLOSING,
  validateEvent,
  type BuildContext,
  type ChargeableEvent,
} from '../../as/src/charging/record.js';

const T0 = new Date('2024-05-01T10:00:00.123Z');
const T1 = new Date('2024-05-01T10:00:00.456Z');
const NOW = new Date('2024-05-01T10:00:01.000Z');

function imMessage(over: Partial<ChargeableEvent> = {}): ChargeableEvent {
  return {
    service: 'im',
    role: 'originating',
    sipMethod: 'MESSAGE',
    sessionId: 'a84b4c76e66710@pc33.home1.net',
    callingParty: 'sip:alice@home1.net',
    calledParty: 'sip:bob@home2.net',
    requestTime: T0,
    responseTime: T1,
    statusCode: 200,
    outcome: 'delivered',
    messageBody: { contentType: 'text/plain', contentLength: 12 },
    ...over,
  };
}

function ctx(over: Partial<BuildContext> = {}): BuildContext {
  return {
    nodeId: 'as1',
    nodeAddress: '10.0.0.5',
    seq: 7,
    now: NOW,
    generateIcid: () => 'as1-generated-icid',
    ...over,
  };
}

describe('parseChargingVector', () => {
  test('RFC 7315 example with quoted icid-value', () => {
    const v = parseChargingVector(
      'icid-value="AyretyU0dm+6O2IrT5tAFrbHLso=023551024";icid-generated-at=192.0.6.8;orig-ioi=home1.net;term-ioi=home2.net',
    );
    assert.deepEqual(v, {
      icid: 'AyretyU0dm+6O2IrT5tAFrbHLso=023551024',
      genAddr: '192.0.6.8',
      origIoi: 'home1.net',
      termIoi: 'home2.net',
    });
  });

  test('unquoted values, whitespace, case-insensitive names, unknown params ignored', () => {
    const v = parseChargingVector(' ICID-Value = abc123 ; Orig-IOI="visited.net" ; foo=bar ; ggsn=1.2.3.4');
    assert.deepEqual(v, { icid: 'abc123', origIoi: 'visited.net' });
  });

  test('a quoted value may contain ";" and escaped quotes', () => {
    const v = parseChargingVector('icid-value="a;b\\"c";term-ioi=t.net');
    assert.deepEqual(v, { icid: 'a;b"c', termIoi: 't.net' });
  });

  test('garbage yields {} and never throws', () => {
    for (const g of [
      '',
      'garbage',
      ';;;',
      '=x',
      'icid-value=',
      'icid-value="unterminated',
      'icid-value=a b',
      'icid-value="\u0001"',
      'x'.repeat(10000),
      undefined,
      null,
      42,
      {},
    ]) {
      assert.deepEqual(parseChargingVector(g), {}, `input ${JSON.stringify(g)}`);
    }
  });

  test('keeps what is well-formed when a later parameter is broken', () => {
    assert.deepEqual(parseChargingVector('icid-value=ok1;orig-ioi="broken'), { icid: 'ok1' });
  });
});

describe('buildCdr', () => {
  test('IM originating MESSAGE without P-Charging-Vector', () => {
    const cdr = buildCdr(imMessage(), ctx());
    assert.deepEqual(cdr, {
      recordType: 'ASRecord',
      recordId: 'as1:7',
      localRecordSequenceNumber: 7,
      nodeId: 'as1',
      nodeAddress: '10.0.0.5',
      service: 'im',
      roleOfNode: 'originating',
      sessionId: 'a84b4c76e66710@pc33.home1.net',
      imsChargingIdentifier: 'as1-generated-icid',
      callingPartyAddress: 'sip:alice@home1.net',
      calledPartyAddress: 'sip:bob@home2.net',
      sipMethod: 'MESSAGE',
      sipRequestTimestamp: '2024-05-01T10:00:00.123Z',
      sipResponseTimestamp: '2024-05-01T10:00:00.456Z',
      statusCode: 200,
      outcome: 'delivered',
      causeForRecordClosing: 'serviceDeliveryEndSuccessfully',
      messageBody: { contentType: 'text/plain', contentLength: 12 },
      recordOpeningTime: '2024-05-01T10:00:00.123Z',
      recordClosureTime: '2024-05-01T10:00:01.000Z',
    });
    // Absent optional fields are omitted, not null.
    for (const f of ['interOperatorIdentifiers', 'event', 'expires', 'extra']) {
      assert.equal(f in cdr, false, `${f} must be omitted`);
    }
    // JSON-safe: round-trips unchanged, keys in canonical order.
    assert.deepEqual(JSON.parse(JSON.stringify(cdr)), cdr);
    assert.deepEqual(
      Object.keys(cdr),
      CDR_FIELDS.filter((f) => f in cdr),
    );
  });

  test('IM originating MESSAGE with P-Charging-Vector takes ICID and IOIs from it', () => {
    let generated = 0;
    const cdr = buildCdr(
      imMessage({
        chargingVector:
          'icid-value="AyretyU0dm+6O2IrT5tAFrbHLso=";icid-generated-at=192.0.6.8;orig-ioi=home1.net;term-ioi=home2.net',
      }),
      ctx({ generateIcid: () => `gen-${++generated}` }),
    );
    assert.equal(cdr.imsChargingIdentifier, 'AyretyU0dm+6O2IrT5tAFrbHLso=');
    assert.deepEqual(cdr.interOperatorIdentifiers, { originatingIOI: 'home1.net', terminatingIOI: 'home2.net' });
    assert.equal(generated, 0, 'no ICID generated when the vector carries one');
  });

  test('P-Charging-Vector without icid-value: generated ICID, IOI kept', () => {
    const cdr = buildCdr(imMessage({ chargingVector: 'orig-ioi=home1.net' }), ctx());
    assert.equal(cdr.imsChargingIdentifier, 'as1-generated-icid');
    assert.deepEqual(cdr.interOperatorIdentifiers, { originatingIOI: 'home1.net' });
  });

  test('garbage P-Charging-Vector falls back to a generated ICID', () => {
    const cdr = buildCdr(imMessage({ chargingVector: '%%%garbage' }), ctx());
    assert.equal(cdr.imsChargingIdentifier, 'as1-generated-icid');
    assert.equal('interOperatorIdentifiers' in cdr, false);
  });

  test('generated ICIDs are unique', () => {
    const gen = () => `as1-${randomUUID()}`;
    const seen = new Set<string>();
    for (let i = 1; i <= 2000; i++) {
      seen.add(buildCdr(imMessage(), ctx({ seq: i, generateIcid: gen })).imsChargingIdentifier);
    }
    assert.equal(seen.size, 2000);
  });

  test('presence SUBSCRIBE: event, expires and extra counters', () => {
    const cdr = buildCdr(
      {
        service: 'presence',
        role: 'terminating',
        sipMethod: 'SUBSCRIBE',
        sessionId: 'cid-1',
        callingParty: 'sip:watcher@home1.net',
        calledParty: 'sip:presentity@home1.net',
        event: 'presence',
        expires: 3600,
        requestTime: T0,
        outcome: 'expired',
        cause: 'timeLimit',
        extra: { notifyCount: 4, winfo: false, note: 'x' },
      },
      ctx({ seq: 1 }),
    );
    assert.equal(cdr.event, 'presence');
    assert.equal(cdr.expires, 3600);
    assert.equal(cdr.causeForRecordClosing, 'timeLimit');
    assert.deepEqual(cdr.extra, { notifyCount: 4, winfo: false, note: 'x' });
    assert.equal('sipResponseTimestamp' in cdr, false);
    assert.equal('statusCode' in cdr, false);
    assert.equal('messageBody' in cdr, false);
  });

  test('extra is copied, not shared', () => {
    const extra = { n: 1 };
    const cdr = buildCdr(imMessage({ extra }), ctx());
    extra.n = 2;
    assert.deepEqual(cdr.extra, { n: 1 });
  });

  test('validation throws TypeError naming the field', () => {
    const cases: [Partial<Record<keyof ChargeableEvent, unknown>>, RegExp][] = [
      [{ sessionId: undefined }, /sessionId/],
      [{ sessionId: '' }, /sessionId/],
      [{ callingParty: 5 }, /callingParty/],
      [{ calledParty: undefined }, /calledParty/],
      [{ role: 'proxy' }, /role/],
      [{ sipMethod: '' }, /sipMethod/],
      [{ outcome: undefined }, /outcome/],
      [{ requestTime: 'yesterday' }, /requestTime/],
      [{ requestTime: new Date('nope') }, /requestTime/],
      [{ responseTime: 12 }, /responseTime/],
      [{ statusCode: 42 }, /statusCode/],
      [{ expires: -1 }, /expires/],
      [{ cause: 'bored' }, /cause/],
      [{ messageBody: { contentType: 'text/plain', contentLength: -3 } }, /messageBody\.contentLength/],
      [{ extra: { bad: { nested: 1 } } }, /extra\.bad/],
    ];
    for (const [over, re] of cases) {
      const ev = { ...imMessage(), ...over } as unknown as ChargeableEvent;
      assert.throws(
        () => buildCdr(ev, ctx()),
        (err: unknown) => err instanceof TypeError && re.test(err.message),
      );
    }
    assert.throws(() => buildCdr(imMessage(), ctx({ seq: 0 })), TypeError);
  });
});

describe('deriveCause', () => {
  test('status code decides when present', () => {
    assert.equal(deriveCause({ statusCode: 200, outcome: 'failed' }), 'serviceDeliveryEndSuccessfully');
    assert.equal(deriveCause({ statusCode: 202, outcome: 'deferred' }), 'serviceDeliveryEndSuccessfully');
    assert.equal(deriveCause({ statusCode: 404, outcome: 'delivered' }), 'unSuccessfulServiceDelivery');
    assert.equal(deriveCause({ statusCode: 180, outcome: 'delivered' }), 'unSuccessfulServiceDelivery');
    assert.equal(deriveCause({ statusCode: 503, outcome: 'failed' }), 'unSuccessfulServiceDelivery');
  });

  test('outcome decides without a status code', () => {
    for (const ok of ['delivered', 'deferred', 'published', 'Delivered']) {
      assert.equal(deriveCause({ outcome: ok }), 'serviceDeliveryEndSuccessfully', ok);
    }
    for (const bad of ['rejected', 'failed', 'expired', 'whatever']) {
      assert.equal(deriveCause({ outcome: bad }), 'unSuccessfulServiceDelivery', bad);
    }
  });

  test('a discarded unwanted message is not a delivered service, whatever the sender was told', () => {
    assert.equal(deriveCause({ statusCode: 200, outcome: 'discarded' }), 'unSuccessfulServiceDelivery');
  });

  test('only the IMS enumeration of causes is accepted', () => {
    assert.deepEqual(
      [...CAUSES_FOR_RECORD_CLOSING],
      [
        'serviceDeliveryEndSuccessfully',
        'unSuccessfulServiceDelivery',
        'timeLimit',
        'serviceChange',
        'managementIntervention',
      ],
    );
    assert.throws(() => validateEvent({ ...imMessage(), cause: 'abnormalRelease' }), /cause must be one of/);
  });

  test('an explicit cause wins', () => {
    assert.equal(deriveCause({ cause: 'timeLimit', statusCode: 200, outcome: 'delivered' }), 'timeLimit');
    assert.equal(deriveCause({ cause: 'managementIntervention', outcome: 'deleted' }), 'managementIntervention');
  });
});

test('normalizeCdr drops store fields and restores canonical key order', () => {
  const cdr = buildCdr(imMessage({ extra: { a: 1 } }), ctx());
  const shuffled: Record<string, unknown> = { _id: cdr.recordId, storedAt: new Date(), junk: null };
  for (const k of Object.keys(cdr).reverse()) shuffled[k] = (cdr as unknown as Record<string, unknown>)[k];
  const n = normalizeCdr(shuffled);
  assert.equal(JSON.stringify(n), JSON.stringify(cdr));
});

// ---------------------------------------------------------------------------------------------
// schemas/cdr.schema.json: a tiny checker (type, const, enum, required, properties,
// additionalProperties, minimum/maximum, minLength, pattern, minProperties, local $ref).
// ---------------------------------------------------------------------------------------------

type Schema = Record<string, unknown>;

function findSchemaFile(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'schemas', 'cdr.schema.json');
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error('schemas/cdr.schema.json not found');
}

function typeOk(t: string, v: unknown): boolean {
  switch (t) {
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'object':
      return v !== null && typeof v === 'object' && !Array.isArray(v);
    case 'array':
      return Array.isArray(v);
    case 'null':
      return v === null;
    default:
      throw new Error(`checker: unknown type ${t}`);
  }
}

function check(root: Schema, schema: Schema, v: unknown, at: string, errors: string[]): void {
  if (typeof schema.$ref === 'string') {
    const ref = schema.$ref;
    assert.ok(ref.startsWith('#/'), `checker: only local $ref (${ref})`);
    let target: unknown = root;
    for (const part of ref.slice(2).split('/')) target = (target as Schema)[part];
    check(root, target as Schema, v, at, errors);
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((t) => typeOk(t, v))) {
      errors.push(`${at}: expected ${types.join('|')}, got ${JSON.stringify(v)}`);
      return;
    }
  }
  if ('const' in schema && v !== schema.const) errors.push(`${at}: expected const ${JSON.stringify(schema.const)}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(v)) errors.push(`${at}: ${JSON.stringify(v)} not in enum`);
  if (typeof v === 'number') {
    if (typeof schema.minimum === 'number' && v < schema.minimum) errors.push(`${at}: below minimum`);
    if (typeof schema.maximum === 'number' && v > schema.maximum) errors.push(`${at}: above maximum`);
  }
  if (typeof v === 'string') {
    if (typeof schema.minLength === 'number' && v.length < schema.minLength) errors.push(`${at}: too short`);
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(v)) {
      errors.push(`${at}: ${JSON.stringify(v)} does not match ${schema.pattern}`);
    }
  }
  if (typeOk('object', v)) {
    const obj = v as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const r of (schema.required ?? []) as string[]) {
      if (!(r in obj)) errors.push(`${at}: missing required ${r}`);
    }
    if (typeof schema.minProperties === 'number' && Object.keys(obj).length < schema.minProperties) {
      errors.push(`${at}: fewer than ${schema.minProperties} properties`);
    }
    for (const [k, val] of Object.entries(obj)) {
      if (props[k]) check(root, props[k], val, `${at}.${k}`, errors);
      else if (schema.additionalProperties === false) errors.push(`${at}: unexpected property ${k}`);
      else if (typeof schema.additionalProperties === 'object') {
        check(root, schema.additionalProperties as Schema, val, `${at}.${k}`, errors);
      }
    }
  }
}

describe('schemas/cdr.schema.json', () => {
  const schema = JSON.parse(readFileSync(findSchemaFile(), 'utf8')) as Schema;
  const validate = (v: unknown): string[] => {
    const errors: string[] = [];
    check(schema, schema, v, '$', errors);
    return errors;
  };

  test('is draft 2020-12 and describes every field (with a TS 32.298 reference where one applies)', () => {
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    const props = schema.properties as Record<string, Schema>;
    assert.deepEqual(Object.keys(props).sort(), [...CDR_FIELDS].sort(), 'schema lists exactly the CDR fields');
    const walk = (s: Schema, at: string): void => {
      assert.equal(typeof s.description, 'string', `${at} has a description`);
      for (const [k, sub] of Object.entries((s.properties ?? {}) as Record<string, Schema>)) walk(sub, `${at}.${k}`);
    };
    walk(schema, '$');
    for (const [k, s] of Object.entries(props)) {
      assert.match(String(s.description), /32\.298|recordExtensions/, `${k} cites TS 32.298`);
    }
  });

  test('built records validate: minimal, full, presence', () => {
    const minimal = buildCdr(
      {
        service: 'xdm',
        role: 'originating',
        sipMethod: 'PUT',
        sessionId: 's',
        callingParty: 'sip:a@x',
        calledParty: 'sip:b@x',
        requestTime: T0,
        outcome: 'updated',
      },
      ctx({ seq: 1 }),
    );
    const full = buildCdr(
      imMessage({
        chargingVector: 'icid-value=abc;orig-ioi=o.net;term-ioi=t.net',
        event: 'presence',
        expires: 60,
        extra: { notifyCount: 3, flag: true, s: 'x' },
      }),
      ctx({ seq: 123456 }),
    );
    const presence = buildCdr(
      imMessage({ service: 'presence', sipMethod: 'PUBLISH', statusCode: 412, outcome: 'rejected' }),
      ctx({ seq: 2 }),
    );
    for (const rec of [minimal, full, presence]) {
      assert.deepEqual(validate(JSON.parse(JSON.stringify(rec))), [], JSON.stringify(rec));
    }
  });

  test('the checker catches broken records', () => {
    const good = buildCdr(imMessage(), ctx());
    const bad = (mut: (r: Record<string, unknown>) => void): string[] => {
      const r = JSON.parse(JSON.stringify(good)) as Record<string, unknown>;
      mut(r);
      return validate(r);
    };
    assert.notDeepEqual(
      bad((r) => delete r.sessionId),
      [],
    );
    assert.notDeepEqual(
      bad((r) => (r.localRecordSequenceNumber = '7')),
      [],
    );
    assert.notDeepEqual(
      bad((r) => (r.statusCode = 42)),
      [],
    );
    assert.notDeepEqual(
      bad((r) => (r.event = null)),
      [],
    );
    assert.notDeepEqual(
      bad((r) => (r.sipRequestTimestamp = '2024-05-01 10:00')),
      [],
    );
    assert.notDeepEqual(
      bad((r) => (r.causeForRecordClosing = 'normal')),
      [],
    );
    assert.notDeepEqual(
      bad((r) => (r.surprise = 1)),
      [],
    );
    assert.notDeepEqual(
      bad((r) => (r.messageBody = { contentType: 'text/plain' })),
      [],
    );
  });
});
