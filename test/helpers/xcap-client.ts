import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { digestResponse } from '../../as/src/http/digest.js';

export interface XcapReply {
  status: number;
  etag: string | undefined;
  /** Media type of Content-Type without parameters; undefined when there is no Content-Type. */
  contentType: string | undefined;
  body: string;
  /** The body as received (bytes). */
  raw: Buffer;
  headers: Headers;
}

export interface RawRequest {
  body?: string | Buffer;
  headers?: Record<string, string>;
  /** Send the body with chunked transfer coding (no Content-Length). */
  chunked?: boolean;
  timeoutMs?: number;
  /** PEM of the CA an https base's server certificate must chain to (nothing else is trusted). */
  ca?: string;
}

/**
 * One HTTP request over node:http with the path sent exactly as given: no URL parsing or
 * normalisation on the client side, so tests can send '..', '%2e%2e', raw quotes and brackets
 * the way a (possibly hostile) client would. `base` is http://host:port or https://host:port
 * (then the server's certificate is checked against `opts.ca`, and its name against the host).
 */
export function rawRequest(base: string, method: string, path: string, opts: RawRequest = {}): Promise<XcapReply> {
  const { hostname, port, protocol } = new URL(base);
  const request = protocol === 'https:' ? httpsRequest : httpRequest;
  const body =
    opts.body === undefined ? undefined : typeof opts.body === 'string' ? Buffer.from(opts.body, 'utf8') : opts.body;
  const headers: Record<string, string> = { ...opts.headers };
  if (body !== undefined && !opts.chunked) headers['content-length'] = String(body.length);
  return new Promise<XcapReply>((resolve, reject) => {
    let answered = false;
    const tls = protocol === 'https:' ? { ca: opts.ca, rejectUnauthorized: true, agent: false as const } : {};
    const req = request(
      { host: hostname, port: Number(port), method, path, headers, timeout: opts.timeoutMs ?? 10000, ...tls },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (v === undefined) continue;
            for (const one of Array.isArray(v) ? v : [v]) h.append(k, one);
          }
          const raw = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            etag: h.get('etag')?.replace(/^"|"$/g, ''),
            contentType: h.get('content-type')?.split(';')[0]?.trim(),
            body: raw.toString('utf8'),
            raw,
            headers: h,
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in time`)));
    // a server may answer (413, 401) before it has read the whole body and drop the rest:
    // a write error after the answer is not the test's business
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (body !== undefined && opts.chunked) {
      for (let i = 0; i < body.length; i += 16 * 1024) req.write(body.subarray(i, i + 16 * 1024));
      req.end();
    } else {
      req.end(body);
    }
  });
}

/**
 * An XCAP client for tests: answers the server's digest challenge like a real client, over
 * real HTTP. After the first challenge it keeps the nonce and sends credentials with every
 * further request (incrementing nc), answering a new challenge when the server sends one.
 * Paths are sent exactly as given (see {@link rawRequest}).
 */
export class XcapClient {
  private nonce: string | undefined;
  private nc = 0;

  /** `ca`: for an https base, the PEM of the CA its certificate chains to. */
  constructor(
    readonly base: string,
    readonly user: string,
    readonly password: string,
    readonly realm = 'example.com',
    readonly ca?: string,
  ) {}

  private authorization(method: string, path: string): string | undefined {
    if (this.nonce === undefined) return undefined;
    this.nc++;
    return digestResponse({
      username: this.user,
      password: this.password,
      realm: this.realm,
      nonce: this.nonce,
      method,
      uri: path,
      nc: this.nc.toString(16).padStart(8, '0'),
    });
  }

  async request(method: string, path: string, opts: RawRequest = {}): Promise<XcapReply> {
    const send = () => {
      const auth = this.authorization(method, path);
      return rawRequest(this.base, method, path, {
        ...opts,
        ...(this.ca ? { ca: this.ca } : {}),
        headers: { ...opts.headers, ...(auth ? { authorization: auth } : {}) },
      });
    };
    let res = await send();
    if (res.status === 401) {
      const nonce = /nonce="([^"]+)"/.exec(res.headers.get('www-authenticate') ?? '')?.[1];
      if (nonce === undefined) return res;
      this.nonce = nonce;
      this.nc = 0;
      res = await send();
    }
    return res;
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
