#!/usr/bin/env node
// Parse time of the XML layer (as/src/xml/xml-tree.ts) on presence documents of ~1 KB and
// ~10 KB (a rich PIDF with RPID person and many tuples), mean of N parses after warm-up.
// Usage: npx tsc -p tsconfig.json && node scripts/bench-xml-parse.mjs [iterations] [module]
// `module` is another build of xml-tree.js to compare against (e.g. an older commit's).
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const modulePath = process.argv[3] ? pathToFileURL(resolve(process.argv[3])).href : '../build/as/src/xml/xml-tree.js';
const { parseXml } = await import(modulePath);

function pidf(tuples) {
  let doc = '<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
    + 'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">\n';
  for (let t = 0; t < tuples; t++) {
    doc += `  <tuple id="t${t}">\n    <status><basic>${t % 2 ? 'open' : 'closed'}</basic></status>\n`
      + `    <contact priority="0.8">sip:alice@10.0.0.${t}:5060;transport=tcp</contact>\n`
      + `    <note xml:lang="en">Device ${t} &amp; its &lt;note&gt; with text</note>\n    <timestamp>2026-12-07T10:00:0${t % 10}Z</timestamp>\n  </tuple>\n`;
  }
  doc += '  <dm:person id="p1">\n    <rpid:activities><rpid:meeting/></rpid:activities>\n    <rpid:mood><rpid:happy/></rpid:mood>\n'
    + '    <dm:note>In a meeting until 3pm</dm:note>\n  </dm:person>\n</presence>\n';
  return doc;
}

const n = Number(process.argv[2] ?? 20_000);
for (const [label, doc] of [['small', pidf(2)], ['large', pidf(36)]]) {
  let sink = 0;
  for (let i = 0; i < 2_000; i++) sink += parseXml(doc).root.elements.length;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink += parseXml(doc).root.elements.length;
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / n;
  console.log(`${label}: ${Buffer.byteLength(doc)} bytes, ${us.toFixed(1)} µs per parse (${n} parses, check ${sink % 7})`);
}
