#!/usr/bin/env node
// Parse throughput of the SIP core: a realistic ~800-byte MESSAGE parsed N times.
// Usage: npx tsc -p tsconfig.json && node scripts/bench-sip-parse.mjs [iterations]
import { parseSipMessage } from '../build/as/src/sip/index.js';

const body = 'Hello Bob, are we still on for the 3pm review?';
const headers = [
  'MESSAGE sip:bob@ims.mnc001.mcc001.3gppnetwork.org SIP/2.0',
  'Via: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK.9c7a1f2e3d;rport=5060;received=10.0.0.10',
  'Via: SIP/2.0/UDP 192.168.1.20:5060;rport;branch=z9hG4bKPj3f1e2d4c5b6a',
  'Max-Forwards: 69',
  'Route: <sip:scscf.ims.mnc001.mcc001.3gppnetwork.org:6060;lr>',
  'From: "Alice Smith" <sip:alice@ims.mnc001.mcc001.3gppnetwork.org>;tag=8a7b6c5d',
  'To: <sip:bob@ims.mnc001.mcc001.3gppnetwork.org>',
  'Call-ID: 3f2b1a0c-9d8e-4f7a-b6c5-d4e3f2a1b0c9',
  'CSeq: 2 MESSAGE',
  'P-Asserted-Identity: "Alice Smith" <sip:alice@ims.mnc001.mcc001.3gppnetwork.org>, <tel:+15551230001>',
  'User-Agent: baresip v3.10.0',
  'Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, NOTIFY, SUBSCRIBE, MESSAGE',
  'Supported: replaces, 100rel, path',
  'Content-Type: text/plain;charset=utf-8',
  `Content-Length: ${Buffer.byteLength(body)}`,
];
const raw = headers.join('\r\n') + '\r\n\r\n' + body;

const n = Number(process.argv[2] ?? 200_000);
let sink = 0;
for (let i = 0; i < 20_000; i++) sink += parseSipMessage(raw).headers.size; // warm-up

let t0 = process.hrtime.bigint();
for (let i = 0; i < n; i++) sink += parseSipMessage(raw).headers.size;
let ms = Number(process.hrtime.bigint() - t0) / 1e6;
console.log(`message: ${raw.length} bytes, ${headers.length - 1} headers`);
console.log(`parse only:           ${n} in ${ms.toFixed(0)} ms = ${Math.round((n / ms) * 1000).toLocaleString('en-US')} msg/s`);

t0 = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  const m = parseSipMessage(raw);
  sink += m.cseq.seq + m.from.tag.length + m.headers.getAll('Via').length + (m.headers.get('Content-Type')?.length ?? 0);
}
ms = Number(process.hrtime.bigint() - t0) / 1e6;
console.log(`parse + From/Via/CT:  ${n} in ${ms.toFixed(0)} ms = ${Math.round((n / ms) * 1000).toLocaleString('en-US')} msg/s`);
if (sink === 0) console.log('');
