/**
 * The operator page in a real browser (headless Chromium from Debian) against a running
 * stack: after known traffic (one registered user, one presence subscription, three
 * messages stored for an offline user) the page shows those numbers, the ISC decisions and
 * CDRs the AS counted, its dependencies up, a plot per rate, and the searched user's view.
 * A screenshot is kept as an artifact (its path is printed).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { messageScenario } from './im-scenarios.js';
import { subscriberScenario } from './scenario-builder.js';
import { ROOT, TestStack, eventually, portsFrom } from './stack.js';

const pw = (u: string) => `${u}-pw-page`;
const auth = (u: string) => ['-au', u, '-ap', pw(u)];

/** Runs headless Chromium on `url` with extra flags; resolves with its stdout (the DOM with --dump-dom). */
function chromium(url: string, flags: string[]): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
  return new Promise<string>((res, rej) => {
    execFile(
      'chromium',
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        `--user-data-dir=${profile}`,
        '--virtual-time-budget=8000',
        ...flags,
        url,
      ],
      { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        rmSync(profile, { recursive: true, force: true });
        if (err) rej(new Error(`chromium failed: ${err.message}\n${stderr.slice(-2000)}`));
        else res(stdout);
      },
    );
  });
}

/** The text of the element carrying `data-<attr>="<key>"`, as a person reads it. */
function shown(dom: string, attr: string, key: string): string | undefined {
  const m = new RegExp(`data-${attr}="${key.replace(/\./g, '\\.')}"[^>]*>([^<]*)<`).exec(dom);
  return m?.[1];
}

function metricSum(text: string, name: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((s, l) => s + Number(l.split(' ').pop()), 0);
}

describe('operator page (headless Chromium)', () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start(portsFrom(7260), { OPS_SAMPLE_SECONDS: '1' });
    await stack.provisionUsers(['alice', 'bob', 'carol'], pw);
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user: 'alice', ct_port: String(stack.sippPort()), expires: '600' },
      args: auth('alice'),
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    const sub = await stack.sipp(
      {
        name: 'watch',
        xml: subscriberScenario({ event: 'presence', accept: 'application/pidf+xml', unsubscribe: false }),
      },
      { set: { user: 'bob', target: 'alice' }, args: auth('bob') },
    );
    assert.equal(sub.exitCode, 0, sub.stdout);
    for (let i = 1; i <= 3; i++) {
      const r = await stack.sipp(messageScenario({ final: 202, body: `note ${i}` }), {
        set: { user: 'alice', to: 'carol' },
        args: auth('alice'),
      });
      assert.equal(r.exitCode, 0, r.stdout);
    }
    // the CDRs of the traffic are written, and two samples taken after it
    await eventually(
      async () => (metricSum(await stack.metrics(), 'ims_as_charging_records_written_total') >= 3 ? true : undefined),
      5000,
      'CDRs',
    );
    await new Promise((r) => setTimeout(r, 2500));
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('shows the counts, totals, health, plots and the searched user after known traffic', async (t) => {
    const metrics = await stack.metrics();
    const decisions = metricSum(metrics, 'ims_as_isc_decisions_total');
    const cdrs = metricSum(metrics, 'ims_as_charging_records_written_total');
    assert.ok(decisions >= 4, `one SUBSCRIBE and three MESSAGEs decided: ${decisions}`);

    const url = `http://127.0.0.1:${stack.ports.isc}/admin/ui#token=${stack.adminToken}&user=carol`;
    const dom = await chromium(url, ['--dump-dom']);
    assert.match(dom, /data-loaded="yes"/, 'the page loaded its data (through the token form and its cookie)');
    assert.equal(shown(dom, 'count', 'registeredUsers'), '1');
    assert.equal(shown(dom, 'count', 'subscriptions.presence'), '1');
    assert.equal(shown(dom, 'count', 'storedMessages'), '3');
    assert.equal(shown(dom, 'count', 'cdrsWritten'), String(cdrs));
    assert.equal(shown(dom, 'count', 'iscDecisionsTotal'), String(decisions));
    // the traffic was within the last minute: a rate and a latency are shown
    assert.ok(
      Number(shown(dom, 'count', 'iscDecisionsPerSecond')) > 0,
      `decisions per second: ${shown(dom, 'count', 'iscDecisionsPerSecond')}`,
    );
    assert.ok(
      Number(shown(dom, 'count', 'decisionMeanMs')) > 0,
      `mean latency: ${shown(dom, 'count', 'decisionMeanMs')}`,
    );
    assert.ok(Number(shown(dom, 'count', 'decisionP95Ms')) > 0, `p95 latency: ${shown(dom, 'count', 'decisionP95Ms')}`);
    for (const dep of ['store', 'kamailio', 'eventStream']) {
      assert.match(dom, new RegExp(`data-health="${dep}"><td>${dep}</td><td class="ok">up</td>`), `${dep} shown up`);
    }
    for (const plot of ['iscDecisions', 'iscEvents', 'notifies', 'cdrs']) {
      const points = new RegExp(`data-plot="${plot}" data-points="(\\d+)"`).exec(dom);
      assert.ok(points && Number(points[1]) >= 2, `plot ${plot} has points: ${points?.[1]}`);
    }
    assert.match(dom, /data-user="sip:carol@example\.com"/);
    assert.equal(shown(dom, 'count', 'user.storedMessages'), '3');
    assert.equal(shown(dom, 'count', 'user.registrations'), '0');

    const artifacts = mkdtempSync(join(tmpdir(), 'operator-page-'));
    const png = join(artifacts, 'operator-page.png');
    await chromium(url, [`--screenshot=${png}`, '--window-size=1280,1900', '--hide-scrollbars']);
    const bytes = readFileSync(png);
    assert.equal(bytes.subarray(1, 4).toString(), 'PNG');
    assert.ok(statSync(png).size > 20_000, `a screenshot with content (${statSync(png).size} bytes)`);
    t.diagnostic(`screenshot: ${png}`);
  });

  it("Kamailio's xhttp_prom answers /metrics with every statistic the Grafana dashboard uses", async () => {
    const res = await fetch(`http://127.0.0.1:${stack.ports.rpc}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    const listed = readFileSync(join(ROOT, 'deploy/grafana/kamailio-metrics.txt'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const missing = listed.filter((name) => !new RegExp(`^${name}[ {]`, 'm').test(text));
    assert.deepEqual(missing, []);
    assert.match(text, /^kamailio_usrloc_registered_users(\{[^}]*\})? 1\b/m, 'alice is registered');
  });

  it('without the token: the token form (401) and no data', async () => {
    const page = await fetch(`http://127.0.0.1:${stack.ports.isc}/admin/ui`);
    assert.equal(page.status, 401);
    assert.match(await page.text(), /admin token \(<code>admin\.token<\/code>/);
    const data = await fetch(`http://127.0.0.1:${stack.ports.isc}/admin/ui/overview`, {
      headers: { cookie: 'ims_admin=wrong' },
    });
    assert.equal(data.status, 401);
    const withBearer = await fetch(`http://127.0.0.1:${stack.ports.isc}/admin/ui/overview`, {
      headers: { authorization: `Bearer ${stack.adminToken}` },
    });
    assert.equal(withBearer.status, 200);
    const body = (await withBearer.json()) as { counts: { storedMessages: number } };
    assert.equal(body.counts.storedMessages, 3);
  });
});
