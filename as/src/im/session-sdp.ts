/**
 * The MSRP media of an SDP offer or answer (RFC 4975 section 8, RFC 6135, RFC 5547), as the
 * IM session service reads and rewrites it: pure text in, text out, no I/O. Only the first
 * `m=message` line with an MSRP transport is the session's media; everything else (other
 * media, unknown attributes, line order) is kept as it was.
 */

export type MsrpTransport = 'TCP/MSRP' | 'TCP/TLS/MSRP';

export interface MsrpMedia {
  port: number;
  transport: MsrpTransport;
  /** The c= address that applies to the media (media level, else session level). */
  host?: string;
  /** a=path: the MSRP URIs from the far end to the near end, in order. */
  path: string[];
  acceptTypes: string[];
  acceptWrappedTypes: string[];
  /** a=setup (RFC 6135): active, passive, actpass. */
  setup?: string;
  /** a=max-size (RFC 4975 section 8.6), bytes. */
  maxSize?: number;
  /** a=file-selector (RFC 5547): present for a file transfer. */
  fileSelector?: string;
}

/** Where the AS takes this side of the session: its MSRP URI, and the address and port behind it. */
export interface MsrpEndpoint {
  path: string;
  host: string;
  port: number;
}

const MEDIA_LINE = /^m=message (\d+) (TCP\/MSRP|TCP\/TLS\/MSRP) /i;

function linesOf(sdp: string): string[] {
  return sdp.split(/\r?\n/);
}

/** Index ranges: [start, end) of the session part and of each media section. */
function sections(lines: string[]): Array<{ start: number; end: number }> {
  const starts = [0];
  lines.forEach((l, i) => { if (l.startsWith('m=')) starts.push(i); });
  return starts.map((start, k) => ({ start, end: k + 1 < starts.length ? starts[k + 1]! : lines.length }));
}

function hostOf(cLine: string | undefined): string | undefined {
  const m = cLine ? /^c=IN IP[46] ([^\s/]+)/i.exec(cLine) : null;
  return m ? m[1] : undefined;
}

/** The session's MSRP media, or undefined when the SDP offers none (or names no path). */
export function msrpMediaOf(sdp: string): MsrpMedia | undefined {
  const lines = linesOf(sdp);
  const [session, ...media] = sections(lines);
  const section = media.find((s) => MEDIA_LINE.test(lines[s.start]!));
  if (!section) return undefined;
  const m = MEDIA_LINE.exec(lines[section.start]!)!;
  const own = lines.slice(section.start, section.end);
  const attr = (name: string) => own.find((l) => l.toLowerCase().startsWith(`a=${name}:`))?.slice(name.length + 3).trim();
  const words = (v: string | undefined) => (v ?? '').split(/\s+/).filter(Boolean);
  const path = words(attr('path'));
  if (path.length === 0) return undefined;
  const sessionC = lines.slice(session!.start, session!.end).find((l) => l.startsWith('c='));
  const out: MsrpMedia = {
    port: Number(m[1]),
    transport: m[2]!.toUpperCase() as MsrpTransport,
    path,
    acceptTypes: words(attr('accept-types')),
    acceptWrappedTypes: words(attr('accept-wrapped-types')),
  };
  const host = hostOf(own.find((l) => l.startsWith('c=')) ?? sessionC);
  if (host !== undefined) out.host = host;
  const setup = attr('setup');
  if (setup) out.setup = setup.toLowerCase();
  const maxSize = Number(attr('max-size'));
  if (Number.isSafeInteger(maxSize) && maxSize > 0) out.maxSize = maxSize;
  const fileSelector = attr('file-selector');
  if (fileSelector) out.fileSelector = fileSelector;
  return out;
}

/**
 * The SDP with its MSRP media pointing at `ep`: the m= port, the a=path (the AS's URI alone:
 * the far end only ever talks to the AS) and the c= address (media level, or session level
 * when the media has none and no other media shares it: then a media-level c= is added).
 * Line ends are CRLF, as RFC 4566 asks.
 */
export function withMsrpEndpoint(sdp: string, ep: MsrpEndpoint): string {
  const lines = linesOf(sdp.replace(/\r?\n$/, ''));
  const [, ...media] = sections(lines);
  const section = media.find((s) => MEDIA_LINE.test(lines[s.start]!));
  if (!section) throw new RangeError('the SDP has no MSRP media');
  const ipVersion = ep.host.includes(':') ? 'IP6' : 'IP4';
  const out: string[] = [];
  let mediaC = false;
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    const inMedia = i >= section.start && i < section.end;
    if (i === section.start) line = line.replace(/^m=message \d+ /i, `m=message ${ep.port} `);
    if (inMedia && line.startsWith('c=')) {
      line = `c=IN ${ipVersion} ${ep.host}`;
      mediaC = true;
    }
    if (inMedia && line.toLowerCase().startsWith('a=path:')) line = `a=path:${ep.path}`;
    out.push(line);
    // no c= of its own: one right after the m= line (RFC 4566 order: i=, c= follow m=)
    if (i === section.end - 1 && !mediaC) {
      const at = out.length - (section.end - section.start) + 1;
      out.splice(at, 0, `c=IN ${ipVersion} ${ep.host}`);
    }
  }
  return `${out.join('\r\n')}\r\n`;
}

/** Host and port of an MSRP URI (`msrp://host:port/session-id;tcp`, RFC 4975 section 9). */
export function msrpUriAuthority(uri: string): { host: string; port: number } | undefined {
  const m = /^msrps?:\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/;]+)(?::(\d{1,5}))?\//i.exec(uri);
  if (!m) return undefined;
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const port = m[2] ? Number(m[2]) : 2855;
  return port > 0 && port < 65536 ? { host, port } : undefined;
}
