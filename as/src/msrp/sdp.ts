/**
 * The SDP of an MSRP media stream (RFC 4975 section 8, RFC 6135 a=setup, RFC 5547 file
 * transfer): reading the `m=message` sections and rewriting their address, port and path so
 * the media runs through the AS. Pure: no I/O. Line ends (CRLF or LF) are kept as found.
 */

export type MsrpSetup = 'active' | 'passive' | 'actpass' | 'holdconn';

export interface FileSelector {
  name?: string;
  type?: string;
  size?: number;
  hashes: Array<{ algorithm: string; value: string }>;
}

export interface MsrpMedia {
  /** Index of the m= line among all media of the SDP. */
  mediaIndex: number;
  port: number;
  /** TCP/MSRP or TCP/TLS/MSRP. */
  proto: string;
  formats: string[];
  /** The c= address that applies (media level, else session level). */
  address?: string;
  path: string[];
  acceptTypes: string[];
  acceptWrappedTypes: string[];
  maxSize?: number;
  setup?: MsrpSetup;
  /** sendonly, recvonly, sendrecv or inactive when given. */
  direction?: string;
  fileSelector?: FileSelector;
  fileTransferId?: string;
  fileDisposition?: string;
  fileDate?: { creation?: string; modification?: string; read?: string };
  fileIcon?: string;
  fileRange?: { start: number; stop?: number };
}

interface Section {
  /** Line index of the m= line (-1: the session part). */
  mLine: number;
  lines: string[];
  firstLine: number;
}

function splitLines(sdp: string): { lines: string[]; eol: string } {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const lines = sdp.split(/\r?\n/);
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return { lines, eol };
}

function sections(lines: string[]): Section[] {
  const out: Section[] = [{ mLine: -1, lines: [], firstLine: 0 }];
  lines.forEach((line, i) => {
    if (line.startsWith('m=')) out.push({ mLine: i, lines: [line], firstLine: i });
    else out[out.length - 1]!.lines.push(line);
  });
  return out;
}

function attr(lines: string[], name: string): string | undefined {
  const prefix = `a=${name}:`;
  const line = lines.find((l) => l.startsWith(prefix));
  return line?.slice(prefix.length).trim();
}

function connectionAddress(lines: string[]): string | undefined {
  const c = lines.find((l) => l.startsWith('c='));
  return c?.split(/\s+/)[2]?.split('/')[0];
}

/** `name:"My file.jpg" type:image/jpeg size:32349 hash:sha-1:72:24:...` (RFC 5547 section 6). */
export function parseFileSelector(text: string): FileSelector {
  const sel: FileSelector = { hashes: [] };
  const re = /(name|type|size|hash):("(?:[^"\\]|\\.)*"|\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const value = m[2]!;
    switch (m[1]) {
      case 'name':
        sel.name = value.startsWith('"') ? value.slice(1, -1) : value;
        break;
      case 'type':
        sel.type = value;
        break;
      case 'size':
        if (/^\d+$/.test(value)) sel.size = Number(value);
        break;
      case 'hash': {
        const colon = value.indexOf(':');
        if (colon > 0) sel.hashes.push({ algorithm: value.slice(0, colon), value: value.slice(colon + 1) });
        break;
      }
    }
  }
  return sel;
}

/** `creation:"<date>" modification:"<date>" read:"<date>"` (RFC 5547 section 6). */
function parseFileDate(text: string): NonNullable<MsrpMedia['fileDate']> {
  const out: NonNullable<MsrpMedia['fileDate']> = {};
  const re = /(creation|modification|read):"([^"]*)"/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out[m[1] as 'creation'] = m[2]!;
  return out;
}

function isMsrpProto(proto: string): boolean {
  return /^TCP\/(TLS\/)?MSRP$/i.test(proto);
}

/** Every MSRP media stream of an SDP body. */
export function parseMsrpMedia(sdp: string): MsrpMedia[] {
  const { lines } = splitLines(sdp);
  const all = sections(lines);
  const sessionAddress = connectionAddress(all[0]!.lines);
  const out: MsrpMedia[] = [];
  all.slice(1).forEach((section, mediaIndex) => {
    const [media, portText, proto, ...formats] = section.lines[0]!.slice(2).split(/\s+/);
    if (media !== 'message' || !proto || !isMsrpProto(proto)) return;
    const l = section.lines;
    const m: MsrpMedia = {
      mediaIndex,
      port: Number(portText),
      proto,
      formats,
      path: (attr(l, 'path') ?? '').split(/\s+/).filter(Boolean),
      acceptTypes: (attr(l, 'accept-types') ?? '').split(/\s+/).filter(Boolean),
      acceptWrappedTypes: (attr(l, 'accept-wrapped-types') ?? '').split(/\s+/).filter(Boolean),
    };
    const address = connectionAddress(l) ?? sessionAddress;
    if (address !== undefined) m.address = address;
    const maxSize = attr(l, 'max-size');
    if (maxSize !== undefined && /^\d+$/.test(maxSize)) m.maxSize = Number(maxSize);
    const setup = attr(l, 'setup');
    if (setup === 'active' || setup === 'passive' || setup === 'actpass' || setup === 'holdconn') m.setup = setup;
    const direction = l.find((x) => /^a=(sendonly|recvonly|sendrecv|inactive)$/.test(x));
    if (direction) m.direction = direction.slice(2);
    const selector = attr(l, 'file-selector');
    if (selector !== undefined) m.fileSelector = parseFileSelector(selector);
    const id = attr(l, 'file-transfer-id');
    if (id !== undefined) m.fileTransferId = id;
    const disposition = attr(l, 'file-disposition');
    if (disposition !== undefined) m.fileDisposition = disposition;
    const date = attr(l, 'file-date');
    if (date !== undefined) m.fileDate = parseFileDate(date);
    const icon = attr(l, 'file-icon');
    if (icon !== undefined) m.fileIcon = icon;
    const range = attr(l, 'file-range');
    const r = range !== undefined ? /^(\d+)-(\d+|\*)$/.exec(range) : null;
    if (r) m.fileRange = r[2] === '*' ? { start: Number(r[1]) } : { start: Number(r[1]), stop: Number(r[2]) };
    out.push(m);
  });
  return out;
}

export interface MsrpMediaRewrite {
  /** The a=path to put in place of the one found. */
  path: string[];
  /** Address for the c= line. */
  host: string;
  port: number;
  /** a=setup to write (RFC 6135); absent: left as found. */
  setup?: MsrpSetup;
  /** Which MSRP stream (0: the first). */
  which?: number;
}

function addrType(host: string): 'IP4' | 'IP6' {
  return host.includes(':') ? 'IP6' : 'IP4';
}

/**
 * The SDP with one MSRP stream moved to the AS: its m= port, its a=path, its address (a c=
 * line of its own is added when the session-level c= is shared with other media, so those
 * keep theirs), and a=setup when asked. Other lines are untouched. Throws when there is no
 * such MSRP stream.
 */
export function rewriteMsrpMedia(sdp: string, rw: MsrpMediaRewrite): string {
  const { lines, eol } = splitLines(sdp);
  const all = sections(lines);
  const msrp = all.slice(1).filter((s) => {
    const [media, , proto] = s.lines[0]!.slice(2).split(/\s+/);
    return media === 'message' && proto !== undefined && isMsrpProto(proto);
  });
  const target = msrp[rw.which ?? 0];
  if (!target) throw new Error('no MSRP media stream in the SDP');
  const cLine = `c=IN ${addrType(rw.host)} ${rw.host}`;
  const otherMedia = all.length - 1 > 1;
  const session = all[0]!;
  const sessionC = session.lines.findIndex((l) => l.startsWith('c='));
  const [, , proto, ...formats] = target.lines[0]!.slice(2).split(/\s+/);
  const media: string[] = [`m=message ${rw.port} ${proto} ${formats.join(' ')}`.trimEnd()];
  let hasC = false;
  let hasPath = false;
  let hasSetup = false;
  for (const line of target.lines.slice(1)) {
    if (line.startsWith('c=')) {
      media.push(cLine);
      hasC = true;
    } else if (line.startsWith('a=path:')) {
      media.push(`a=path:${rw.path.join(' ')}`);
      hasPath = true;
    } else if (line.startsWith('a=setup:') && rw.setup) {
      media.push(`a=setup:${rw.setup}`);
      hasSetup = true;
    } else media.push(line);
  }
  // c= sits after i= and before b= / a= lines (RFC 4566 order)
  if (!hasC && (otherMedia || sessionC < 0)) {
    const at = media.findIndex((l, i) => i > 0 && !l.startsWith('i='));
    media.splice(at < 0 ? media.length : at, 0, cLine);
  }
  if (!hasPath) media.push(`a=path:${rw.path.join(' ')}`);
  if (rw.setup && !hasSetup) media.push(`a=setup:${rw.setup}`);
  const sessionLines = session.lines.slice();
  if (!hasC && !otherMedia && sessionC >= 0) sessionLines[sessionC] = cLine;
  const out = [...sessionLines];
  for (const s of all.slice(1)) out.push(...(s === target ? media : s.lines));
  return out.join(eol) + eol;
}

/**
 * The SDP answer of an end point that takes an MSRP session itself (the IM Server's deferred
 * sessions): one MSRP stream at `host`/`port` with `path` (RFC 4975 section 8), receiving only.
 */
export function msrpAnswerSdp(a: {
  host: string;
  port: number;
  path: string;
  proto: string;
  acceptTypes: string[];
  /** The o= line's session id (a number the caller picks, e.g. the time). */
  originId: number;
}): string {
  const type = addrType(a.host);
  return [
    'v=0',
    `o=- ${a.originId} 1 IN ${type} ${a.host}`,
    's=-',
    `c=IN ${type} ${a.host}`,
    't=0 0',
    `m=message ${a.port} ${a.proto} *`,
    `a=accept-types:${a.acceptTypes.length ? a.acceptTypes.join(' ') : 'message/cpim text/plain'}`,
    `a=path:${a.path}`,
    'a=recvonly',
    '',
  ].join('\r\n');
}
