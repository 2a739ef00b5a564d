/**
 * MSRP URIs (RFC 4975 section 6): `msrp://[user@]host[:port]/session-id;transport[;params]`,
 * scheme `msrp` or `msrps` (TLS). Pure: no I/O.
 *
 * Comparison (section 6.1): scheme, host and transport compare case-insensitively, the port
 * numerically (an absent port is never equal to a present one: no default is assumed), the
 * session id byte for byte; the user part and the other parameters are not compared.
 */

export interface MsrpUri {
  /** Lower-cased. */
  scheme: 'msrp' | 'msrps';
  user?: string;
  /** As written; IPv6 references keep their brackets. */
  host: string;
  port?: number;
  /** Absent only in a relay's URI (RFC 4976 AUTH targets). */
  sessionId?: string;
  /** Lower-cased ("tcp"). */
  transport: string;
  /** Further `;name[=value]` parameters, in order. */
  params: string[];
}

export class MsrpUriError extends Error {
  override readonly name = 'MsrpUriError';
}

// RFC 3986 unreserved / sub-delims / pct-encoded for userinfo and session-id (session-id is
// 1*(unreserved / "+" / "=" / "/")).
const USER = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*$/;
const SESSION_ID = /^[A-Za-z0-9\-._~+=/]+$/;
const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+,=]|%[0-9A-Fa-f]{2})+$/;
const IPV6_REF = /^\[[0-9A-Fa-f:.]+\]$/;
const TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]+$/;

/** Parses one MSRP URI; throws MsrpUriError naming what is wrong. */
export function parseMsrpUri(text: string): MsrpUri {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/;]+)(\/[^;]*)?;(.+)$/.exec(text);
  if (!m) throw new MsrpUriError(`not an MSRP URI: ${text}`);
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'msrp' && scheme !== 'msrps') throw new MsrpUriError(`scheme must be msrp or msrps: ${text}`);
  let authority = m[2]!;
  let user: string | undefined;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    user = authority.slice(0, at);
    authority = authority.slice(at + 1);
    if (!USER.test(user)) throw new MsrpUriError(`bad user part: ${text}`);
  }
  let host: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    host = authority.slice(0, close + 1);
    const rest = authority.slice(close + 1);
    if (rest && !rest.startsWith(':')) throw new MsrpUriError(`bad authority: ${text}`);
    portText = rest ? rest.slice(1) : undefined;
    if (!IPV6_REF.test(host)) throw new MsrpUriError(`bad IPv6 reference: ${text}`);
  } else {
    const colon = authority.indexOf(':');
    host = colon >= 0 ? authority.slice(0, colon) : authority;
    portText = colon >= 0 ? authority.slice(colon + 1) : undefined;
    if (!REG_NAME.test(host)) throw new MsrpUriError(`bad host: ${text}`);
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw new MsrpUriError(`bad port: ${text}`);
    port = Number(portText);
  }
  let sessionId: string | undefined;
  if (m[3] !== undefined) {
    sessionId = m[3].slice(1);
    if (!SESSION_ID.test(sessionId)) throw new MsrpUriError(`bad session id: ${text}`);
  }
  const [transport, ...params] = m[4]!.split(';');
  if (!transport || !TOKEN.test(transport)) throw new MsrpUriError(`bad transport: ${text}`);
  for (const p of params)
    if (!/^[A-Za-z0-9\-.!%*_+`'~]+(=[^;\s]*)?$/.test(p)) throw new MsrpUriError(`bad parameter: ${text}`);
  const uri: MsrpUri = { scheme, host, transport: transport.toLowerCase(), params };
  if (user !== undefined) uri.user = user;
  if (port !== undefined) uri.port = port;
  if (sessionId !== undefined) uri.sessionId = sessionId;
  return uri;
}

/** Parses, or undefined for anything that is not an MSRP URI. */
export function tryParseMsrpUri(text: string): MsrpUri | undefined {
  try {
    return parseMsrpUri(text);
  } catch {
    return undefined;
  }
}

export function formatMsrpUri(uri: MsrpUri): string {
  const authority = `${uri.user !== undefined ? `${uri.user}@` : ''}${uri.host}${uri.port !== undefined ? `:${uri.port}` : ''}`;
  const path = uri.sessionId !== undefined ? `/${uri.sessionId}` : '';
  return `${uri.scheme}://${authority}${path};${[uri.transport, ...uri.params].join(';')}`;
}

/** Equality by the rules of RFC 4975 section 6.1. */
export function msrpUriEquals(a: MsrpUri, b: MsrpUri): boolean {
  return (
    a.scheme === b.scheme &&
    a.host.toLowerCase() === b.host.toLowerCase() &&
    a.port === b.port &&
    a.sessionId === b.sessionId &&
    a.transport === b.transport
  );
}

/** The connection a URI is reached on (scheme, host, port): the key of connection reuse. */
export function msrpAuthorityKey(uri: MsrpUri): string {
  return `${uri.scheme}://${uri.host.toLowerCase()}:${uri.port ?? 2855}`;
}

/** A path header value (To-Path, From-Path, SDP a=path): URIs separated by whitespace. */
export function parseMsrpPath(text: string): MsrpUri[] {
  const parts = text.trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) throw new MsrpUriError('empty path');
  return parts.map(parseMsrpUri);
}
