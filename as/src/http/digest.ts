import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * HTTP Digest authentication (RFC 7616 with MD5 and qop=auth, the scheme SIP clients and
 * XCAP clients share) against stored HA1s. Pure: no I/O. Nonces are self-validating
 * (timestamp + HMAC), so any AS instance can check a nonce another issued, and nothing is
 * kept per client.
 */

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

export interface DigestCredentials {
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  qop?: string;
  nc?: string;
  cnonce?: string;
  opaque?: string;
  algorithm?: string;
}

/** Parses `Digest k=v, k="v"` (values may contain commas inside quotes). */
export function parseDigestHeader(header: string): DigestCredentials | undefined {
  const m = /^\s*Digest\s+(.*)$/is.exec(header);
  if (!m) return undefined;
  const out: Record<string, string> = {};
  const re = /([a-zA-Z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))\s*(?:,|$)/g;
  let part: RegExpExecArray | null;
  while ((part = re.exec(m[1]!)))
    out[part[1]!.toLowerCase()] = part[2] !== undefined ? part[2].replace(/\\(.)/g, '$1') : part[3]!;
  const { username, realm, nonce, uri, response } = out;
  if (!username || !realm || !nonce || !uri || !response) return undefined;
  return {
    username,
    realm,
    nonce,
    uri,
    response,
    qop: out.qop,
    nc: out.nc,
    cnonce: out.cnonce,
    opaque: out.opaque,
    algorithm: out.algorithm,
  };
}

export type DigestVerdict = 'ok' | 'stale' | 'bad';

export class DigestAuthenticator {
  private readonly key: Buffer;
  /** (nonce, nc, cnonce) already accepted, until the nonce expires: a replayed header fails. */
  private readonly seen = new Map<string, number>();
  private lastSweep = 0;

  constructor(
    readonly realm: string,
    secret: string,
    private readonly nonceTtlMs = 300_000,
  ) {
    this.key = createHash('sha256').update(`digest-nonce:${secret}`).digest();
  }

  /** A fresh nonce: base64url(time ms) "." HMAC(time) — checkable without server state. */
  nonce(now = Date.now()): string {
    const t = Buffer.from(String(now)).toString('base64url');
    return `${t}.${createHmac('sha256', this.key).update(t).digest('base64url').slice(0, 22)}`;
  }

  challenge(stale = false): string {
    return `Digest realm="${this.realm}", qop="auth", algorithm=MD5, nonce="${this.nonce()}"${stale ? ', stale=true' : ''}`;
  }

  private nonceState(nonce: string, now: number): 'fresh' | 'expired' | 'forged' {
    const [t, mac] = nonce.split('.');
    if (!t || !mac) return 'forged';
    const expect = createHmac('sha256', this.key).update(t).digest('base64url').slice(0, 22);
    if (mac.length !== expect.length || !timingSafeEqual(Buffer.from(mac), Buffer.from(expect))) return 'forged';
    const issued = Number(Buffer.from(t, 'base64url').toString());
    if (!Number.isFinite(issued) || issued > now + 5000) return 'forged';
    return now - issued > this.nonceTtlMs ? 'expired' : 'fresh';
  }

  /** Checks credentials for `method` against the user's HA1 (undefined: unknown user). */
  verify(c: DigestCredentials, method: string, ha1: string | undefined, now = Date.now()): DigestVerdict {
    if (c.realm !== this.realm || (c.algorithm && c.algorithm.toUpperCase() !== 'MD5')) return 'bad';
    const state = this.nonceState(c.nonce, now);
    if (state === 'forged' || !ha1) return 'bad';
    const ha2 = md5(`${method}:${c.uri}`);
    let expected: string;
    if (c.qop) {
      if (c.qop !== 'auth' || !c.nc || !c.cnonce) return 'bad';
      expected = md5(`${ha1}:${c.nonce}:${c.nc}:${c.cnonce}:${c.qop}:${ha2}`);
    } else {
      expected = md5(`${ha1}:${c.nonce}:${ha2}`);
    }
    const ok =
      expected.length === c.response.length &&
      timingSafeEqual(Buffer.from(expected), Buffer.from(c.response.toLowerCase()));
    if (!ok) return 'bad';
    if (state === 'expired') return 'stale';
    // replay protection (per instance): each nonce-count is good once (RFC 7616 3.4.5)
    const use = `${c.nonce}|${c.nc ?? ''}|${c.cnonce ?? ''}`;
    if (this.seen.has(use)) return 'bad';
    this.seen.set(use, now + this.nonceTtlMs);
    if (now - this.lastSweep > 60_000) {
      this.lastSweep = now;
      for (const [k, until] of this.seen) if (until < now) this.seen.delete(k);
    }
    return 'ok';
  }
}

/** A client-side response, for tests and tools: what a UA would send. */
export function digestResponse(opts: {
  username: string;
  password: string;
  realm: string;
  nonce: string;
  method: string;
  uri: string;
  nc?: string;
  cnonce?: string;
}): string {
  const ha1 = md5(`${opts.username}:${opts.realm}:${opts.password}`);
  const nc = opts.nc ?? '00000001';
  const cnonce = opts.cnonce ?? randomBytes(8).toString('hex');
  const response = md5(`${ha1}:${opts.nonce}:${nc}:${cnonce}:auth:${md5(`${opts.method}:${opts.uri}`)}`);
  // quoted-string values: a request URI may contain '"' (an XCAP attribute predicate sent
  // unencoded), which must be escaped or it would end the value early
  const q = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;
  return `Digest username=${q(opts.username)}, realm=${q(opts.realm)}, nonce=${q(opts.nonce)}, uri=${q(opts.uri)}, qop=auth, nc=${nc}, cnonce=${q(cnonce)}, response="${response}", algorithm=MD5`;
}
