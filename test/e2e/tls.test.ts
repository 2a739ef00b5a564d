/**
 * TLS end to end: the real Kamailio with its tls module (SIP over TLS on its own port, plain
 * UDP/TCP still beside it) and the AS's XCAP server over HTTPS, both with the local CA and
 * certificate scripts/tls-setup.sh makes. Clients trust that CA only: openssl s_client for
 * SIP (certificate chain and host name checked), node:https for XCAP.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { endChild } from '../helpers/end-child.js';
import { TlsSipClient } from '../helpers/tls-sip-client.js';
import { subscriberScenario } from './scenario-builder.js';
import { XcapClient, rawRequest } from '../helpers/xcap-client.js';
import { DOMAIN, ROOT, TestStack, eventually, portsFrom, type StackTls } from './stack.js';

const LIST = (entries: string[]) => `<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="friends">${entries.map((u) => `<entry uri="${u}"/>`).join('')}</list>
</resource-lists>`;
const DOC = `/xcap-root/resource-lists/users/sip:gina@${DOMAIN}/index`;

interface TlsExchange {
  /** What the server answered (the SIP reply), or '' when nothing came. */
  reply: string;
  /** openssl's account of the handshake (verification result, protocol). */
  handshake: string;
}

/**
 * Sends one SIP request over TLS with openssl s_client, trusting `ca` only and checking the
 * certificate names DOMAIN, and returns the first reply (up to its empty line).
 */
async function sipOverTls(port: number, ca: string, request: string): Promise<TlsExchange> {
  const child = spawn(
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-CAfile',
      ca,
      '-verify_return_error',
      '-verify_hostname',
      DOMAIN,
      '-servername',
      DOMAIN,
      '-tls1_2',
      '-ign_eof',
      '-brief',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.on('error', () => {});
  try {
    // -brief reports the verified handshake on stderr before any data flows
    await eventually(
      () => (/CONNECTION ESTABLISHED/.test(err) || child.exitCode !== null ? true : undefined),
      5000,
      'the TLS handshake',
    );
    child.stdin.write(request);
    await eventually(
      () => (/\r\n\r\n/.test(out) || child.exitCode !== null ? true : undefined),
      5000,
      'a SIP reply over TLS',
    ).catch(() => undefined);
    return { reply: out, handshake: err };
  } finally {
    await endChild(child, (c) => c.kill('SIGTERM'), 1000);
  }
}

const options = (port: number, callId: string) =>
  [
    `OPTIONS sip:127.0.0.1:${port};transport=tls SIP/2.0`,
    `Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-${callId}`,
    'Max-Forwards: 70',
    `From: <sip:probe@${DOMAIN}>;tag=p1`,
    `To: <sip:127.0.0.1:${port}>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');

const message = (port: number, callId: string) =>
  [
    `MESSAGE sips:bob@${DOMAIN} SIP/2.0`,
    `Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-${callId}`,
    'Max-Forwards: 70',
    `From: <sips:gina@${DOMAIN}>;tag=m1`,
    `To: <sips:bob@${DOMAIN}>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 MESSAGE',
    `Route: <sip:127.0.0.1:${port};transport=tls;lr>`,
    'Content-Type: text/plain',
    'Content-Length: 2',
    '',
    'hi',
  ].join('\r\n');

describe('TLS: SIP over TLS to Kamailio and XCAP over HTTPS, with the generated local CA', () => {
  let stack: TestStack;
  let tls: StackTls;
  let ca: string;

  before(async () => {
    stack = await TestStack.start(portsFrom(7060), {}, { tls: true });
    tls = stack.tls!;
    ca = readFileSync(tls.ca, 'utf8');
    await stack.provisionUsers(['gina', 'hank'], (u) => `${u}-pw-tls`);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('answers a SIP request over TLS, its certificate chaining to the local CA and naming the domain', async () => {
    const r = await sipOverTls(stack.ports.tls, tls.ca, options(stack.ports.tls, 'tls-options-1'));
    assert.match(r.handshake, /Verification: OK/, r.handshake);
    assert.match(r.handshake, /Protocol version: TLSv1\.[23]/);
    assert.match(r.reply, /^SIP\/2\.0 200 Keepalive\r\n/, r.reply + r.handshake);
    assert.match(r.reply, /\r\nVia: SIP\/2\.0\/TLS 127\.0\.0\.1:5999;branch=z9hG4bK-tls-options-1/);
  });

  it('challenges an unauthenticated sips: MESSAGE over TLS like one over UDP (digest, realm of the domain)', async () => {
    const r = await sipOverTls(stack.ports.tls, tls.ca, message(stack.ports.tls, 'tls-message-1'));
    assert.match(r.reply, /^SIP\/2\.0 407 /, r.reply + r.handshake);
    assert.match(r.reply, /\r\nProxy-Authenticate: Digest realm="example\.com"/);
  });

  it('delivers a MESSAGE from a UDP user over the connection a client registered on over TLS, to the address it announced', async () => {
    // The client announces 127.0.0.1:5999 in Via and Contact, where nothing listens (its
    // connection comes from another, ephemeral port): the core must use that connection.
    const ua = await TlsSipClient.open(stack.ports.tls, ca, DOMAIN);
    let sender: ReturnType<TestStack['sipp']> | undefined;
    try {
      assert.notEqual(ua.localPort, 5999);
      const register = (auth?: string) =>
        [
          `REGISTER sip:${DOMAIN} SIP/2.0`,
          `Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-reg-${auth ? 2 : 1}`,
          'Max-Forwards: 70',
          `From: <sip:gina@${DOMAIN}>;tag=g1`,
          `To: <sip:gina@${DOMAIN}>`,
          'Call-ID: tls-register-gina',
          `CSeq: ${auth ? 2 : 1} REGISTER`,
          'Contact: <sip:gina@127.0.0.1:5999;transport=tls>',
          'Expires: 60',
          `${auth ?? ''}Content-Length: 0`,
          '',
          '',
        ].join('\r\n');
      const registered = await ua.withDigest(register, 'REGISTER', `sip:${DOMAIN}`, 'gina', 'gina-pw-tls');
      assert.match(registered.startLine, /^SIP\/2\.0 200 /, registered.raw);

      const sent = (sender = stack.sipp('message', {
        final: 200,
        set: { user: 'hank', to: 'gina', text: 'over your TLS connection' },
        args: ['-au', 'hank', '-ap', 'hank-pw-tls'],
      }));
      const delivered = await ua.next(/^MESSAGE /, 8000);
      assert.equal(delivered.body.trimEnd(), 'over your TLS connection');
      assert.match(
        delivered.headers.get('via')?.[0] ?? '',
        /^SIP\/2\.0\/TLS 127\.0\.0\.1:/,
        'the core sent it over TLS',
      );
      ua.answer(delivered);
      const r = await sent;
      assert.equal(r.exitCode, 0, r.stdout + r.messages);
    } finally {
      ua.close();
      if (sender && sender.process.exitCode === null) {
        sender.process.kill();
        await sender;
      }
    }
  });

  it('serves a sips: SUBSCRIBE over TLS and sends its NOTIFY back over the same connection', async () => {
    const ua = await TlsSipClient.open(stack.ports.tls, ca, DOMAIN);
    try {
      const subscribe = (auth?: string) =>
        [
          `SUBSCRIBE sips:hank@${DOMAIN} SIP/2.0`,
          `Via: SIP/2.0/TLS 127.0.0.1:5998;branch=z9hG4bK-sub-${auth ? 2 : 1}`,
          'Max-Forwards: 70',
          `From: <sips:gina@${DOMAIN}>;tag=s1`,
          `To: <sips:hank@${DOMAIN}>`,
          'Call-ID: tls-subscribe-gina',
          `CSeq: ${auth ? 2 : 1} SUBSCRIBE`,
          'Contact: <sips:gina@127.0.0.1:5998>',
          'Event: presence',
          'Accept: application/pidf+xml',
          'Expires: 600',
          `${auth ?? ''}Content-Length: 0`,
          '',
          '',
        ].join('\r\n');
      const accepted = await ua.withDigest(subscribe, 'SUBSCRIBE', `sips:hank@${DOMAIN}`, 'gina', 'gina-pw-tls');
      assert.match(accepted.startLine, /^SIP\/2\.0 20[02] /, accepted.raw);
      const notify = await ua.next(/^NOTIFY /, 8000);
      assert.match(notify.headers.get('call-id')?.[0] ?? '', /^tls-subscribe-gina$/);
      assert.match(notify.headers.get('subscription-state')?.[0] ?? '', /^(pending|active)/);
      assert.match(notify.headers.get('via')?.[0] ?? '', /^SIP\/2\.0\/TLS /, 'the core sent it over TLS');
      ua.answer(notify);
    } finally {
      ua.close();
    }
  });

  it('refuses the handshake of a client that trusts another CA', async () => {
    // the system's CAs do not know the local CA
    const r = await sipOverTls(
      stack.ports.tls,
      '/etc/ssl/certs/ca-certificates.crt',
      options(stack.ports.tls, 'tls-options-2'),
    );
    assert.doesNotMatch(r.handshake, /Verification: OK/);
    assert.match(r.handshake, /verify error|certificate verify failed/i, r.handshake);
    assert.equal(r.reply, '');
  });

  it('keeps plain SIP over UDP beside TLS (REGISTER with digest)', async () => {
    const r = await stack.sipp('register', {
      final: 200,
      set: { user: 'gina', ct_port: '5999', expires: '60' },
      args: ['-au', 'gina', '-ap', 'gina-pw-tls'],
    });
    assert.equal(r.exitCode, 0, r.stdout + r.messages);
  });

  it('serves XCAP over HTTPS: PUT then GET of a document, trusting only the local CA', async () => {
    const gina = new XcapClient(`https://127.0.0.1:${stack.ports.xdm}`, 'gina', 'gina-pw-tls', DOMAIN, ca);
    const put = await gina.put(DOC, LIST([`sip:bob@${DOMAIN}`]), 'application/resource-lists+xml');
    assert.equal(put.status, 201, put.body);
    const get = await gina.get(DOC);
    assert.equal(get.status, 200);
    assert.equal(get.contentType, 'application/resource-lists+xml');
    assert.match(get.body, /<entry uri="sip:bob@example\.com"\/>/);
    assert.equal(get.etag, put.etag);
    // the XCAP root the server announces (xcap-caps) is the https one
    const caps = await gina.get('/xcap-root/xcap-caps/global/index');
    assert.equal(caps.status, 200, caps.body);
  });

  it('announces the https XCAP root in xcap-diff notifications', async () => {
    const xml = subscriberScenario({ event: 'xcap-diff', accept: 'application/xcap-diff+xml' });
    const run = await stack.sipp(
      { name: 'xcap-diff-over-https', xml },
      { set: { user: 'gina', target: 'gina' }, args: ['-au', 'gina', '-ap', 'gina-pw-tls'], timeoutMs: 20000 },
    );
    assert.equal(run.exitCode, 0, run.stdout);
    assert.match(
      run.messages,
      new RegExp(`xcap-root="https://127\\.0\\.0\\.1:${stack.ports.xdm}/xcap-root/?"`),
      run.messages,
    );
  });

  it('does not speak plain HTTP on the HTTPS port, and a client that does not trust the CA gets no answer', async () => {
    await assert.rejects(rawRequest(`http://127.0.0.1:${stack.ports.xdm}`, 'GET', DOC, { timeoutMs: 3000 }));
    await assert.rejects(
      rawRequest(`https://127.0.0.1:${stack.ports.xdm}`, 'GET', DOC, { timeoutMs: 3000 }),
      /self[- ]signed|unable to verify|certificate/i,
    );
  });
});

describe("TLS: Kamailio on a tls.cfg (kamailio-cfg/tls.cfg with this stack's paths)", () => {
  let stack: TestStack;

  before(async () => {
    const sample = readFileSync(join(ROOT, 'kamailio-cfg/tls.cfg'), 'utf8');
    stack = await TestStack.start(
      portsFrom(7160),
      {},
      {
        tls: true,
        kamailioTlsConfig: (t) =>
          sample
            .replaceAll('/etc/kamailio/tls/server.pem', t.cert)
            .replaceAll('/etc/kamailio/tls/server.key', t.key)
            .replaceAll('/etc/kamailio/tls/ca.pem', t.ca),
      },
    );
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('answers over TLS with the certificate the file names', async () => {
    const r = await sipOverTls(stack.ports.tls, stack.tls!.ca, options(stack.ports.tls, 'tls-cfg-options-1'));
    assert.match(r.handshake, /Verification: OK/, r.handshake);
    assert.match(r.reply, /^SIP\/2\.0 200 Keepalive\r\n/, r.reply + r.handshake);
    assert.match(stack.logOf('kamailio'), /TLSs<default>: certificate='[^']*server\.pem'/);
  });
});
