#!/usr/bin/env node
// One XCAP user PUTting a large resource-lists document again and again (each PUT waits for
// the previous answer), for `seconds`; prints one JSON line: PUTs, statuses, latency p50/max.
// MODE=node: the document is PUT once, then one entry's <display-name> is replaced again and
// again (element PUTs: the server parses, changes and serialises the whole document each time).
// Used by scripts/bench-xcap-stall.sh. The identity is asserted (the AS trusts 127.0.0.1 as
// an aggregation proxy there), so no digest round trip.
//
//   node scripts/bench/xcap-put-loop.mjs http://127.0.0.1:5294 SIZE_KB SECONDS
import { request } from 'node:http';

const [base, sizeKb = '1000', seconds = '20'] = process.argv.slice(2);
const user = 'sip:xcapload@example.com';
const path = `/xcap-root/resource-lists/users/${user}/index`;

/** A resource-lists document of about `bytes`, its entries numbered from `salt` (every PUT a new version). */
function documentOf(bytes, salt) {
  const entries = [];
  let size = 200;
  for (let i = 0; size < bytes; i++) {
    const e = `<entry uri="sip:c${salt}-${i}@example.com"><display-name>Contact ${i}</display-name></entry>`;
    entries.push(e);
    size += e.length;
  }
  return `<?xml version="1.0" encoding="UTF-8"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="l">${entries.join('')}</list></resource-lists>`;
}

function put(body, target = path, type = 'application/resource-lists+xml') {
  return new Promise((resolve, reject) => {
    const req = request(base + target, {
      method: 'PUT',
      headers: { 'content-type': type, 'content-length': Buffer.byteLength(body), 'x-3gpp-asserted-identity': user },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const mode = process.env.MODE ?? 'doc';
const bodies = [documentOf(Number(sizeKb) * 1024, 'a'), documentOf(Number(sizeKb) * 1024, 'b')];
const element = `${path}/~~/resource-lists/list%5b@name=%22l%22%5d/entry%5b@uri=%22sip:ca-7@example.com%22%5d/display-name`;
if (mode === 'node') await put(bodies[0]);
const once = (n) => (mode === 'node' ? put(`<display-name>Seven ${n}</display-name>`, element, 'application/xcap-el+xml') : put(bodies[n % 2]));
const until = Date.now() + Number(seconds) * 1000;
const statuses = {};
const took = [];
for (let n = 0; Date.now() < until; n++) {
  const t = performance.now();
  const status = await once(n).catch((e) => `error ${e.code ?? e.message}`);
  took.push(performance.now() - t);
  statuses[status] = (statuses[status] ?? 0) + 1;
}
took.sort((a, b) => a - b);
console.log(JSON.stringify({
  mode, puts: took.length, bytes: Buffer.byteLength(bodies[0]), statuses,
  p50ms: Math.round(took[Math.floor(took.length / 2)] ?? NaN), maxMs: Math.round(took[took.length - 1] ?? NaN),
}));
