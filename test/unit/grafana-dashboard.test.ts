/**
 * deploy/grafana/ims-as-dashboard.json and deploy/prometheus/ims-as-alerts.yml: the JSON
 * parses into a dashboard, every query is valid PromQL (promtool, Debian package
 * prometheus), and every metric a query names is one the AS registers (as/src) or one of
 * the Kamailio statistics listed in deploy/grafana/kamailio-metrics.txt; the alert rules
 * pass `promtool check rules` and their unit tests.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const run = promisify(execFile);

interface Panel {
  type: string;
  id: number;
  title: string;
  targets?: Array<{ expr: string; refId: string }>;
}
const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/ims-as-dashboard.json'), 'utf8')) as {
  title: string;
  uid: string;
  panels: Panel[];
  templating: { list: Array<{ name: string }> };
};
const alertsText = readFileSync(join(ROOT, 'deploy/prometheus/ims-as-alerts.yml'), 'utf8');

/** Metric names the AS registers: literal names and name constants in count/observe/gauge/describe calls. */
function asMetricNames(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
    });
  const constants = new Map<string, string>();
  const sources = walk(join(ROOT, 'as/src')).map((f) => readFileSync(f, 'utf8'));
  for (const src of sources)
    for (const m of src.matchAll(/export const ([A-Z_]+) = '([a-z_:]+)'/g)) constants.set(m[1]!, m[2]!);
  for (const src of sources) {
    for (const m of src.matchAll(
      /(?:metrics\??|\))\s*\.(?:count|observe|gauge|sampledGauge|counterFrom|describe)\(\s*(?:'([a-z_:]+)'|([A-Z_]+)\b)/g,
    )) {
      const name = m[1] ?? constants.get(m[2]!);
      if (name) names.add(name);
    }
  }
  return names;
}

const PROMQL_WORDS = new Set([
  'sum',
  'by',
  'rate',
  'irate',
  'increase',
  'histogram_quantile',
  'max',
  'min',
  'avg',
  'without',
  'on',
  'ignoring',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'count',
  'topk',
  'group_left',
  'group_right',
]);

/** The metric names of a PromQL expression: identifiers that are not functions, keywords, labels or durations. */
function metricsOf(expr: string): string[] {
  const bare = expr
    .replace(/"[^"]*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '')
    .replace(/\[[^\]]*\]/g, '');
  return [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)]
    .map((m) => m[0])
    .filter((w) => !PROMQL_WORDS.has(w) && !/^\d/.test(w));
}

const kamailioNames = new Set(
  readFileSync(join(ROOT, 'deploy/grafana/kamailio-metrics.txt'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#')),
);
const asNames = asMetricNames();

function known(metric: string): boolean {
  if (metric === 'up') return true; // Prometheus's own, per scrape target
  if (metric.startsWith('kamailio_')) return kamailioNames.has(metric);
  return asNames.has(metric) || asNames.has(metric.replace(/_(bucket|sum|count)$/, ''));
}

const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
const alertExprs = [...alertsText.matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1]!);

describe('Grafana dashboard and alert rules', () => {
  it('the dashboard parses, with unique panel ids, a datasource variable and queries', () => {
    assert.equal(dashboard.uid, 'ims-as-overview');
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    assert.deepEqual(
      dashboard.templating.list.map((v) => v.name),
      ['datasource', 'as_job', 'kamailio_job'],
    );
    assert.ok(queries.length >= 30, `queries: ${queries.length}`);
  });

  it('the metric scan finds what the AS registers (so the next check means something)', () => {
    for (const n of [
      'ims_as_isc_decisions_total',
      'ims_as_isc_decision_seconds',
      'ims_as_store_unavailable_answers_total',
      'ims_as_charging_file_backlog_lines',
      'ims_as_reaction_failures_total',
    ]) {
      assert.ok(asNames.has(n), n);
    }
    assert.equal(known('no_such_metric_total'), false);
    // one prefix for everything the AS registers (the process_*/nodejs_* series come from prom-client)
    assert.deepEqual(
      [...asNames].filter((n) => !n.startsWith('ims_as_')),
      [],
    );
    assert.equal(known('kamailio_core_made_up'), false);
    assert.deepEqual(
      metricsOf('histogram_quantile(0.95, sum by (le) (rate(ims_as_isc_decision_seconds_bucket{job=~"$as_job"}[5m])))'),
      ['ims_as_isc_decision_seconds_bucket'],
    );
  });

  it('every metric a dashboard query or alert names exists in the AS or is a listed Kamailio statistic', () => {
    const unknown = [...queries.map((q) => q.expr), ...alertExprs].flatMap(metricsOf).filter((m) => !known(m));
    assert.deepEqual([...new Set(unknown)], []);
    // both sides are on the dashboard
    assert.ok(queries.some((q) => q.expr.includes('kamailio_')) && queries.some((q) => q.expr.includes('isc_')));
  });

  it('every dashboard query is valid PromQL (promtool checks them as recording rules)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dash-rules-'));
    try {
      const rules = queries.map(
        (q, i) =>
          `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(q.expr.replace(/\$as_job/g, 'ims-as').replace(/\$kamailio_job/g, 'kamailio'))}`,
      );
      writeFileSync(join(dir, 'rules.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
      const out = await run('promtool', ['check', 'rules', join(dir, 'rules.yml')]);
      assert.match(out.stdout, new RegExp(`SUCCESS: ${queries.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the alert rules pass promtool check rules and their unit tests (store down, latency, resets, CDR writer, flood)', async () => {
    const check = await run('promtool', ['check', 'rules', join(ROOT, 'deploy/prometheus/ims-as-alerts.yml')]);
    assert.match(check.stdout, /SUCCESS: 9 rules found/);
    for (const alert of [
      'ImsAsStoreDown',
      'ImsAsDecisionLatencyHigh',
      'ImsAsEventStreamResets',
      'ImsAsCdrWriterBehind',
      'KamailioFlood',
    ])
      assert.match(alertsText, new RegExp(`alert: ${alert}\\n`));
    const tested = await run('promtool', ['test', 'rules', join(ROOT, 'deploy/prometheus/ims-as-alerts.test.yml')]);
    assert.match(tested.stdout, /SUCCESS/);
  });
});
