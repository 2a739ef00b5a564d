/**
 * The trigger table of kamailio-cfg/kamailio.cfg (route ISC_TRIGGERS) against the AS it feeds:
 * every service a trigger sends requests to is one the AS's wiring (as/src/app.ts and the
 * subsystem factories under as/src/app/) registers with its ISC
 * dispatcher, and every SUBSCRIBE event package a trigger sends to the AS, or route BAD_EVENT
 * advertises, is one a notifier package of the AS serves. A request Kamailio hands to a
 * service or package the AS lacks would only fail at run time, for that request.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { servedByApp } from '../helpers/as-served.js';
import { advertisedEventPackages, packagesOfEventRegex, triggersOf } from '../helpers/trigger-table.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const cfg = readFileSync(join(ROOT, 'kamailio-cfg/kamailio.cfg'), 'utf8');
// the wiring: app.ts and its subsystem factories, read as one text
const app = [
  join(ROOT, 'as/src/app.ts'),
  ...readdirSync(join(ROOT, 'as/src/app'))
    .filter((f) => f.endsWith('.ts'))
    .sort()
    .map((f) => join(ROOT, 'as/src/app', f)),
]
  .map((f) => readFileSync(f, 'utf8'))
  .join('\n');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}
const asSources = sources(join(ROOT, 'as/src')).map((f) => readFileSync(f, 'utf8'));
function classSource(cls: string): string {
  const found = asSources.filter((s) => new RegExp(`export class ${cls}\\b`).test(s));
  assert.equal(found.length, 1, `one file in as/src declares class ${cls}`);
  return found[0]!;
}

const triggers = triggersOf(cfg);
const served = servedByApp(app, classSource);

describe('the trigger table in kamailio.cfg and the AS behind it', () => {
  it('reads the table: PUBLISH, SUBSCRIBE (per package), NOTIFY to rls, MESSAGE and MSRP INVITE', () => {
    const services = new Set(triggers.map((t) => t.service));
    for (const s of ['im', 'presence', 'xdm']) assert.ok(services.has(s), s);
    const packages = triggers.flatMap((t) => t.eventPackages);
    for (const p of ['presence', 'presence.winfo', 'reg', 'xcap-diff']) assert.ok(packages.includes(p), p);
    assert.ok(triggers.length >= 5, triggers.map((t) => t.condition).join('\n'));
  });

  it('reads the AS: services from the dispatcher, packages from the notifier', () => {
    for (const s of ['im', 'presence', 'xdm']) assert.ok(served.services.includes(s), s);
    for (const p of ['presence', 'presence.winfo', 'reg', 'xcap-diff']) assert.ok(served.eventPackages.includes(p), p);
  });

  it('sends requests only to services the AS registers', () => {
    for (const t of triggers) {
      assert.ok(
        served.services.includes(t.service),
        `${t.condition} -> service "${t.service}": the AS registers only ${served.services.join(', ')}`,
      );
    }
  });

  it('sends SUBSCRIBEs only for event packages the AS serves', () => {
    for (const t of triggers) {
      for (const pkg of t.eventPackages) {
        assert.ok(
          served.eventPackages.includes(pkg),
          `${t.condition} -> package "${pkg}": the AS serves only ${served.eventPackages.join(', ')}`,
        );
      }
    }
  });

  it('advertises in 489 Allow-Events exactly the packages it sends to the AS', () => {
    const routed = triggers.flatMap((t) => t.eventPackages).sort();
    assert.deepEqual(advertisedEventPackages(cfg).sort(), routed);
    for (const pkg of advertisedEventPackages(cfg)) assert.ok(served.eventPackages.includes(pkg), pkg);
  });

  it('refuses an Event pattern it cannot read instead of reading no package', () => {
    assert.deepEqual(packagesOfEventRegex('^(presence|presence\\.winfo|reg)([ \\t;].*)?$'), [
      'presence',
      'presence.winfo',
      'reg',
    ]);
    assert.deepEqual(packagesOfEventRegex('^xcap-diff([ \\t;].*)?$'), ['xcap-diff']);
    assert.throws(() => packagesOfEventRegex('presence'));
  });
});
