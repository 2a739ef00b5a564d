import { connect, type TLSSocket } from 'node:tls';
import { digestResponse } from '../../as/src/http/digest.js';

/** One SIP message read off the connection: start line, headers (lower-case names) and body. */
export interface SipOnWire {
  startLine: string;
  headers: Map<string, string[]>;
  body: string;
  raw: string;
}

/**
 * A minimal SIP UA over one TLS connection (node:tls), for tests: writes requests as given,
 * splits what arrives into messages by Content-Length, and answers digest challenges. It
 * trusts only `ca` and checks the server's name, as a real client does.
 */
export class TlsSipClient {
  private buffer = '';
  private readonly inbox: SipOnWire[] = [];
  private waiters: Array<() => void> = [];

  private constructor(private readonly socket: TLSSocket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.split();
    });
    socket.on('error', () => {});
  }

  static open(port: number, ca: string, servername: string): Promise<TlsSipClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca, servername }, () => resolve(new TlsSipClient(socket)));
      socket.once('error', reject);
    });
  }

  /** The local port of the connection (not what the client announces in Via or Contact). */
  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  send(message: string): void {
    this.socket.write(message);
  }

  /** The next message whose start line matches `startLine` (earlier ones that do not match stay queued). */
  async next(startLine: RegExp, timeoutMs = 5000): Promise<SipOnWire> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) => startLine.test(m.startLine));
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      const left = until - Date.now();
      if (left <= 0)
        throw new Error(
          `no ${startLine} over TLS within ${timeoutMs} ms (got: ${this.inbox.map((m) => m.startLine).join(' | ') || 'nothing'})`,
        );
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Sends `build(undefined)`; on a 401/407, sends `build(<Authorization header line>)` once. Returns the final reply. */
  async withDigest(
    build: (auth?: string) => string,
    method: string,
    uri: string,
    user: string,
    password: string,
  ): Promise<SipOnWire> {
    this.send(build());
    let reply = await this.next(/^SIP\/2\.0 [2-6]\d\d /);
    if (reply.startLine.startsWith('SIP/2.0 401') || reply.startLine.startsWith('SIP/2.0 407')) {
      const proxy = reply.startLine.startsWith('SIP/2.0 407');
      const challenge = (reply.headers.get(proxy ? 'proxy-authenticate' : 'www-authenticate') ?? [''])[0]!;
      const realm = /realm="([^"]*)"/.exec(challenge)?.[1] ?? '';
      const nonce = /nonce="([^"]*)"/.exec(challenge)?.[1] ?? '';
      const auth = digestResponse({ username: user, password, realm, nonce, method, uri });
      this.send(build(`${proxy ? 'Proxy-Authorization' : 'Authorization'}: ${auth}\r\n`));
      reply = await this.next(/^SIP\/2\.0 [2-6]\d\d /);
    }
    return reply;
  }

  /** A 200 to `request`, with a To tag. */
  answer(request: SipOnWire, code = 200, reason = 'OK'): void {
    const h = (n: string) => request.headers.get(n) ?? [];
    const to = h('to')[0] ?? '';
    this.send(
      [
        `SIP/2.0 ${code} ${reason}`,
        ...h('via').map((v) => `Via: ${v}`),
        `From: ${h('from')[0] ?? ''}`,
        `To: ${/;\s*tag=/i.test(to) ? to : `${to};tag=tls-ua`}`,
        `Call-ID: ${h('call-id')[0] ?? ''}`,
        `CSeq: ${h('cseq')[0] ?? ''}`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
  }

  close(): void {
    this.socket.destroy();
  }

  private split(): void {
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buffer.slice(0, end);
      const lines = head.split('\r\n');
      const headers = new Map<string, string[]>();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon < 0) continue;
        const name = line.slice(0, colon).trim().toLowerCase();
        headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
      }
      const length = Number((headers.get('content-length') ?? headers.get('l') ?? ['0'])[0]);
      if (this.buffer.length < end + 4 + length) return;
      const body = this.buffer.slice(end + 4, end + 4 + length);
      this.inbox.push({ startLine: lines[0]!, headers, body, raw: this.buffer.slice(0, end + 4 + length) });
      this.buffer = this.buffer.slice(end + 4 + length);
      for (const w of this.waiters.splice(0)) w();
    }
  }
}
