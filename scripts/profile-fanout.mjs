#!/usr/bin/env node
// One PUBLISH's fan-out through the presence service's NOTIFY path in one process, for
// profiling (node --cpu-prof) and a before/after figure (issue 13): the real Notifier,
// PresencePackage, PresenceState and Publications on an embedded store, WATCHERS live
// dialogs watching one presentity, and a fake UAC that answers every NOTIFY 200 at once. No
// Kamailio, no SIP on the wire. Each round modifies the presentity's publication (as a
// PUBLISH does), then tells the notifier, and waits for the WATCHERS NOTIFYs.
// Prints, per fan-out, the median wall time and the median CPU time of the process (user +
// system; on a shared machine the CPU figure is the one to compare).
// Watchers: FILTERED of every 10 carry an RFC 4661 filter (a <what> and a <trigger>),
// PARTIAL of every 10 accept pidf-diff (RFC 5263), RULES distinct pres-rules permission sets
// are spread over them (0: everyone sees the full document).
//
//   npx tsc -p tsconfig.json && node [--cpu-prof --cpu-prof-dir DIR] scripts/profile-fanout.mjs
//   WATCHERS=1000 ROUNDS=15 WARMUP=3 FILTERED=0 PARTIAL=0 RULES=0 [BUILD=dir of another build]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// BUILD: another compiled tree (an older build) to compare with, same driver
const BUILD = resolve(process.env.BUILD ?? resolve(dirname(fileURLToPath(import.meta.url)), '../build'));
const load = (path) => import(pathToFileURL(resolve(BUILD, path)).href);
const { Notifier } = await load('as/src/events/notifier.js');
const { PresencePackage } = await load('as/src/presence/presence-package.js');
const { PresenceState } = await load('as/src/presence/presence-state.js');
const { Publications } = await load('as/src/presence/publications.js');
const { PidfTrees } = await load('as/src/presence/pidf-trees.js');
const { XdmDocuments } = await load('as/src/xdm/document-store.js');
const { SqliteStore } = await load('as/src/store/sqlite-store.js');
const { silentLogger } = await load('as/src/log/logger.js');
const { Metrics } = await load('as/src/ops/metrics.js');

const env = (name, dflt) => Number(process.env[name] ?? dflt);
const WATCHERS = env('WATCHERS', 1000);
const ROUNDS = env('ROUNDS', 15);
const WARMUP = env('WARMUP', 3);
const FILTERED = env('FILTERED', 0);
const PARTIAL = env('PARTIAL', 0);
const RULES = env('RULES', 0);

const ALICE = 'sip:alice@example.com';
const PIDF_NS = 'urn:ietf:params:xml:ns:pidf';
const DM_NS = 'urn:ietf:params:xml:ns:pidf:data-model';
const RPID_NS = 'urn:ietf:params:xml:ns:pidf:rpid';

/** A presence document of a few devices' services and a person, changing with `round`. */
function pidf(round) {
  const tuples = [];
  for (let i = 0; i < 4; i++) {
    const open = (round + i) % 2 === 0 ? 'open' : 'closed';
    tuples.push(
      `<tuple id="t${i}"><status><basic>${open}</basic></status>` +
        `<dm:deviceID>urn:uuid:d${i}</dm:deviceID><contact priority="0.${i + 1}">sip:alice@192.0.2.${i + 1}</contact>` +
        `<note>device ${i}, round ${round}</note><timestamp>2026-12-07T10:00:${String(i).padStart(2, '0')}Z</timestamp></tuple>`,
    );
  }
  const activity = ['busy', 'meeting', 'on-the-phone'][round % 3];
  return `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="${PIDF_NS}" xmlns:dm="${DM_NS}" xmlns:rp="${RPID_NS}" entity="${ALICE}">
${tuples.join('\n')}
<dm:person id="p1"><rp:activities><rp:${activity}/></rp:activities><rp:mood><rp:happy/></rp:mood>
<rp:place-type><rp:office/></rp:place-type><dm:note>round ${round}</dm:note></dm:person>
<dm:device id="d0"><dm:deviceID>urn:uuid:d0</dm:deviceID><dm:note>phone</dm:note></dm:device>
</presence>`;
}

const FILTER = `<?xml version="1.0" encoding="UTF-8"?>
<filter-set xmlns="urn:ietf:params:xml:ns:simple-filter">
  <ns-bindings><ns-binding prefix="pidf" urn="${PIDF_NS}"/><ns-binding prefix="dm" urn="${DM_NS}"/></ns-bindings>
  <filter id="f1"><what><include type="xpath">/pidf:presence/pidf:tuple/pidf:status</include>
  <include type="xpath">/pidf:presence/dm:person</include></what>
  <trigger><changed>/pidf:presence/pidf:tuple/pidf:status/pidf:basic</changed></trigger></filter>
</filter-set>`;

/** `k` distinct permission sets (pres-rules outcomes), each showing a different part. */
function provideSet(k) {
  const services = { all: k % 2 === 0, serviceUris: [], serviceUriSchemes: ['sip'], occurrenceIds: [], classes: [] };
  return {
    services,
    persons: { all: true, occurrenceIds: [], classes: [] },
    devices: { all: k % 3 === 0, deviceIds: [], occurrenceIds: [], classes: [] },
    allAttributes: false,
    activities: true,
    class: false,
    mood: k % 2 === 1,
    placeIs: false,
    placeType: k % 4 === 0,
    privacy: false,
    relationship: false,
    sphere: false,
    statusIcon: false,
    timeOffset: false,
    userInput: 'bare',
    note: k % 5 !== 0,
    deviceID: true,
    unknownAttributes: [],
  };
}

class FakeUac {
  sent = 0;
  waiter;
  async send() {
    this.sent++;
    if (this.waiter && this.sent >= this.waiter.until) this.waiter.resolve();
    return { code: 200, reason: 'OK', timedOut: false, at: new Date() };
  }
  reach(n) {
    if (this.sent >= n) return Promise.resolve();
    return new Promise((resolve) => (this.waiter = { until: n, resolve }));
  }
}

const dir = await mkdtemp(join(process.env.TMPDIR ?? tmpdir(), 'profile-fanout-'));
const store = await SqliteStore.open(dir);
const log = silentLogger();
const metrics = new Metrics();
const publications = new Publications(store, { log, metrics });
await publications.start();
const docs = new XdmDocuments(store);
await docs.start();
const pidfTrees = new PidfTrees();
const state = new PresenceState({ publications, docs, log, metrics, pidfTrees });
const uac = new FakeUac();
const notifier = new Notifier({ store, uac, contact: 'sip:notifier@127.0.0.1', log, metrics });
const unused = () => {
  throw new Error('not on the NOTIFY path');
};
notifier.register(
  new PresencePackage({
    presentities: { exists: unused },
    domain: { canonical: unused },
    authorizer: { decide: unused },
    state,
    expiry: { minExpires: 60, maxExpires: 7200, defaultExpires: 3600 },
  }),
);

const subs = store.collection('subscriptions');
const now = Date.now();
for (let i = 0; i < WATCHERS; i++) {
  const accept = ['application/pidf+xml'];
  if (i % 10 < PARTIAL) accept.push('application/pidf-diff+xml');
  const data = { handling: 'allow' };
  if (RULES > 0) data.provide = provideSet(i % RULES);
  if ((i + 5) % 10 < FILTERED) data.filters = [FILTER];
  await subs.insertOne({
    _id: `w${i}|ft${i}|tt${i}`,
    event: 'presence',
    resource: ALICE,
    watcher: `sip:w${i}@example.com`,
    callId: `w${i}`,
    fromTag: `ft${i}`,
    toTag: `tt${i}`,
    remoteParty: `<sip:w${i}@example.com>;tag=ft${i}`,
    localParty: `<${ALICE}>;tag=tt${i}`,
    remoteTarget: `sip:w${i}@192.0.2.200:5060`,
    routeSet: [],
    localCseq: 1,
    remoteCseq: 1,
    state: 'active',
    expiresAt: new Date(now + 3_600_000),
    accept,
    createdAt: new Date(now),
    notifyCount: 1,
    data,
  });
}
await notifier.start();

const first = await publications.publish({
  entity: ALICE,
  event: 'presence',
  body: pidf(0),
  contentType: 'application/pidf+xml',
  expires: 3600,
});
let etag = first.etag;

/** One PUBLISH (a modification of alice's publication) and its fan-out; resolves when every NOTIFY is out. */
async function fanOut(round) {
  const out = await publications.publish({
    entity: ALICE,
    event: 'presence',
    ifMatch: etag,
    body: pidf(round),
    contentType: 'application/pidf+xml',
    expires: 3600,
  });
  etag = out.etag;
  const target = uac.sent + WATCHERS;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  state.forget(ALICE);
  const queued = await notifier.resourceChanged('presence', ALICE);
  if (queued !== WATCHERS) throw new Error(`${queued} dialogs queued, ${WATCHERS} expected`);
  await uac.reach(target);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  // let the NOTIFYs' store writes settle before the next round
  await new Promise((r) => setTimeout(r, 50));
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

const rounds = [];
for (let r = 1; r <= WARMUP + ROUNDS; r++) {
  const one = await fanOut(r);
  if (r > WARMUP) rounds.push(one);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const f = (x) => x.toFixed(1);
console.log(
  `fan-out of one PUBLISH to ${WATCHERS} watchers (filtered ${FILTERED}/10, partial ${PARTIAL}/10, rules ${RULES}), ` +
    `${ROUNDS} rounds: median ${f(median(rounds.map((x) => x.ms)))} ms wall, ${f(median(rounds.map((x) => x.cpuMs)))} ms CPU ` +
    `(min ${f(Math.min(...rounds.map((x) => x.cpuMs)))}); pidf parses ${pidfTrees.parses}, reuses ${pidfTrees.hits}`,
);
notifier.stop();
publications.stop();
await store.close();
await rm(dir, { recursive: true, force: true });
