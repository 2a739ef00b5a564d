import { digestResponse } from '../../as/src/http/digest.js';

export interface XcapReply {
  status: number;
  etag: string | undefined;
  contentType: string | undefined;
  body: string;
  headers: Headers;
}

/**
 * An XCAP client for tests: answers the server's digest challenge like a real client
 * (one request without credentials, then one with), over real HTTP.
 */
export class XcapClient {
  constructor(readonly base: string, readonly user: string, readonly password: string, readonly realm = 'example.com') {}

  async request(method: string, path: string, opts: { body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<XcapReply> {
    const send = (auth?: string) => fetch(this.base + path, {
      method,
      body: typeof opts.body === 'string' || opts.body === undefined ? opts.body : new Uint8Array(opts.body),
      headers: { ...opts.headers, ...(auth ? { authorization: auth } : {}) },
      signal: AbortSignal.timeout(10000),
    });
    let res = await send();
    if (res.status === 401) {
      await res.arrayBuffer();
      const nonce = /nonce="([^"]+)"/.exec(res.headers.get('www-authenticate') ?? '')?.[1] ?? '';
      res = await send(digestResponse({ username: this.user, password: this.password, realm: this.realm, nonce, method, uri: path }));
    }
    const etag = res.headers.get('etag')?.replace(/^"|"$/g, '');
    return { status: res.status, etag, contentType: res.headers.get('content-type')?.split(';')[0], body: await res.text(), headers: res.headers };
  }

  get(path: string, headers: Record<string, string> = {}) {
    return this.request('GET', path, { headers });
  }

  put(path: string, body: string | Buffer, contentType: string, headers: Record<string, string> = {}) {
    return this.request('PUT', path, { body, headers: { 'content-type': contentType, ...headers } });
  }

  delete(path: string, headers: Record<string, string> = {}) {
    return this.request('DELETE', path, { headers });
  }
}
