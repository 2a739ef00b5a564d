#!/usr/bin/env node
// Summarises one sipp run directory (stat.csv from -trace_stat, *_rtt.csv from -trace_rtt)
// as one JSON line: calls, ok, failed, retransmissions, achieved calls/s, rtd percentiles.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
const rows = readFileSync(join(dir, 'stat.csv'), 'utf8').trim().split('\n');
const head = rows[0].split(';');
const last = rows[rows.length - 1].split(';');
const col = (name) => {
  const i = head.indexOf(name);
  return i < 0 ? NaN : last[i];
};
const seconds = (hms) => {
  // "HH:MM:SS:uuuuuu"
  const [h, m, s, us] = String(hms).split(':').map(Number);
  return h * 3600 + m * 60 + s + (us || 0) / 1e6;
};
const ok = Number(col('SuccessfulCall(C)'));
const failed = Number(col('FailedCall(C)'));
const elapsed = seconds(col('ElapsedTime(C)'));
const rttFile = readdirSync(dir).find((f) => f.endsWith('_rtt.csv'));
const rtts = rttFile
  ? readFileSync(join(dir, rttFile), 'utf8').trim().split('\n').slice(1).map((l) => Number(l.split(';')[1])).filter(Number.isFinite).sort((a, b) => a - b)
  : [];
const pct = (p) => (rtts.length ? rtts[Math.min(rtts.length - 1, Math.floor((p / 100) * rtts.length))] : NaN);
console.log(JSON.stringify({
  calls: ok + failed,
  ok,
  failed,
  retrans: Number(col('Retransmissions(C)')),
  timeouts: Number(col('FailedMaxUDPRetrans(C)')) + Number(col('FailedTimeoutOnRecv(C)')),
  achievedCps: elapsed > 0 ? Math.round(ok / elapsed) : 0,
  elapsedS: elapsed,
  p50ms: pct(50),
  p95ms: pct(95),
  p99ms: pct(99),
  maxMs: rtts.length ? rtts[rtts.length - 1] : NaN,
}));
