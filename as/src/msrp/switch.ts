/**
 * The AS's MSRP switch (docs/msrp.md): a back-to-back MSRP endpoint per session. The offerer
 * (A) is answered with an AS URI and connects to the AS; the AS connects to the answerer's (B)
 * path once the answer is known. Every chunk a participant sends is streamed on to the other
 * leg as it arrives, with that leg's paths and a transaction of its own; each hop's
 * transactions are answered here; REPORTs the far end sends are mapped back to the sender when
 * the sender asked for them; failures on the far leg become Failure-Reports to the sender.
 *
 * Nothing a peer sends can throw out of here: every socket event is handled under a catch that
 * closes that one connection; listener exceptions of our own events are contained.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { CPIM_CONTENT_TYPE, parseCpim } from '../im/formats/cpim.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { TypedEmitter } from '../util/typed-emitter.js';
import { ByteCoverage, checkChunk } from './chunking.js';
import { type ConnectionHandler, MsrpConnection } from './connection.js';
import type { FrameEvent } from './framer.js';
import { newMessageId, newSessionId, newTransactionId } from './ids.js';
import { type InboundMessage, MsrpLeg, type Side } from './leg.js';
import { type ParsedPath, PathCache } from './path-cache.js';
import { EndpointLeg, assembled } from './endpoint-leg.js';
import { MsrpListener } from './listener.js';
import {
  type ByteRange,
  type FailureReport,
  type MsrpHead,
  type MsrpHeader,
  type MsrpRequestHead,
  byteRangeOf,
  failureReportOf,
  formatByteRange,
  headerValue,
  parseStatus,
  successReportOf,
} from './message.js';
import { buildReport, responseTo, shouldRespond, wantsFailureReport } from './report.js';
import { type SwitchedSession, SessionTable, otherLeg } from './session-table.js';
import { MSRP_STATUS } from './status.js';
import { type MsrpUri, formatMsrpUri, msrpAuthorityKey, msrpUriEquals, parseMsrpPath, parseMsrpUri } from './uri.js';

export const IS_COMPOSING_TYPE = 'application/im-iscomposing+xml';
/** Bodies up to this size, of a text type, are handed to the 'message' event whole. */
export const TEXT_EVENT_MAX_BYTES = 64 * 1024;
/** How long a SEND waits for the other leg (the answer, its connection) before it is refused. */
export const DEFAULT_PEER_WAIT_MS = 2000;
const CONNECT_TIMEOUT_MS = 10_000;

export interface MsrpSwitchOptions {
  /** Address written in the AS's URIs and listened on. */
  host: string;
  /** 0: any free port (tests); see `port` after start(). */
  port: number;
  tls?: { cert: string | Buffer; key: string | Buffer };
  maxMessageBytes: number;
  /** Largest message an endpoint of the AS takes (held whole; 413 above); maxMessageBytes when unset. */
  endpointMaxMessageBytes?: number;
  /** A session with no MSRP traffic this long ends (0: never). */
  idleTimeoutMs: number;
  log: Logger;
  metrics?: Metrics;
  peerWaitMs?: number;
  maxHeadBytes?: number;
}

export interface MsrpMessageEvent {
  sessionKey: string;
  from: Side;
  messageId: string;
  contentType: string;
  bytes: number;
  /** The whole body as text, only for small text bodies (history). */
  text?: string;
  /** An is-composing indication (RFC 3994): relayed, but not a message to count or keep. */
  isComposing: boolean;
}

export interface MsrpSessionStats {
  fromOfferer: { messages: number; bytes: number };
  fromAnswerer: { messages: number; bytes: number };
}

/** A whole message a participant sent to an endpoint of the AS (the conference focus). */
export interface EndpointMessageEvent {
  key: string;
  contentType: string;
  body: Buffer;
}

type SwitchEvents = {
  message: [MsrpMessageEvent];
  'endpoint-message': [EndpointMessageEvent];
  'endpoint-lost': [{ key: string; reason: string }];
  ended: [{ sessionKey: string; reason: string }];
  error: [Error];
};

/** A request being received on a connection, chunk body still arriving. */
interface Incoming {
  head: MsrpHead;
  hasBody: boolean;
  /** Decided at the head (or on the way): the code the request is answered with. */
  reject?: { code: number; comment: string };
  failureReport: FailureReport;
  /** The request's From-Path and our To-Path URI as received (the response goes back with them). */
  fromPath?: string;
  selfUri?: string;
  session?: SwitchedSession;
  side?: Side;
  /** The request is for an endpoint of the AS (nothing to relay: collected whole). */
  endpoint?: EndpointLeg;
  messageId?: string;
  range?: ByteRange;
  message?: InboundMessage;
  received: number;
  relay?: { conn: MsrpConnection; tid: string; release: () => void; failed: boolean; response: Promise<number> };
}

export class MsrpSwitch extends TypedEmitter<SwitchEvents> {
  private readonly sessions = new SessionTable();
  private readonly paths = new PathCache();
  /** Sessions the AS ends itself, by their AS session id and by their key. */
  private readonly endpoints = new Map<string, EndpointLeg>();
  private readonly endpointsByKey = new Map<string, EndpointLeg>();
  private readonly incoming = new Map<MsrpConnection, Incoming>();
  private readonly connections = new Set<MsrpConnection>();
  /** Connections the AS opened, by the far authority: reused by every session towards it. */
  private readonly outbound = new Map<string, Promise<MsrpConnection>>();
  private listener?: MsrpListener;
  private sweeper?: NodeJS.Timeout;
  private readonly scheme: 'msrp' | 'msrps';
  private readonly handler: ConnectionHandler;

  constructor(private readonly opts: MsrpSwitchOptions) {
    super();
    this.scheme = opts.tls ? 'msrps' : 'msrp';
    this.handler = {
      onFrame: async (conn, ev) => {
        try {
          await this.onFrame(conn, ev);
        } catch (err) {
          // a bug of ours, not the peer's: reported, and only this connection pays for it
          this.opts.log.error({ err, conn: conn.authority }, 'msrp: handling a frame failed; the connection is closed');
          this.safeEmit('error', err instanceof Error ? err : new Error(String(err)));
          throw err;
        }
      },
      onClose: (conn, reason) => this.onConnectionClosed(conn, reason),
    };
    opts.metrics
      ?.describe(
        'ims_as_msrp_messages_relayed_total',
        'MSRP messages relayed whole by the switch, by the side that sent them',
      )
      .describe('ims_as_msrp_bytes_relayed_total', 'MSRP body bytes relayed by the switch, by the side that sent them')
      .describe('ims_as_msrp_refusals_total', 'MSRP requests the switch answered with an error, by status code')
      .gauge('ims_as_msrp_sessions_open', 'MSRP sessions open in the switch', () => this.sessions.size)
      .gauge('ims_as_msrp_connections_open', 'MSRP connections open (both directions)', () => this.connections.size);
  }

  /** The port listened on (the picked one when configured 0). */
  get port(): number {
    return this.listener?.port ?? this.opts.port;
  }

  async start(): Promise<void> {
    const listener = new MsrpListener({
      host: this.opts.host,
      port: this.opts.port,
      tls: this.opts.tls,
      onSocket: (socket) => this.adopt(socket, `inbound:${socket.remoteAddress}:${socket.remotePort}`),
      onError: (err) => this.safeEmit('error', err),
    });
    await listener.start();
    this.listener = listener;
    if (this.opts.idleTimeoutMs > 0) {
      this.sweeper = setInterval(() => this.sweepIdle(), Math.max(50, Math.min(5000, this.opts.idleTimeoutMs / 4)));
      this.sweeper.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const s of this.sessions.all()) this.endSession(s, 'switch stopping', false);
    for (const key of [...this.endpointsByKey.keys()]) this.closeEndpoint(key);
    for (const c of [...this.connections]) c.close('switch stopping');
    await this.listener?.stop();
    this.listener = undefined;
  }

  /** Sets up a session: the AS URIs to give the offerer (in the answer) and the answerer (in the offer). */
  /**
   * `offerer.setup` is the offer's a=setup (RFC 6135): only `passive` changes anything (the AS
   * then connects to the offerer instead of waiting for it; the answer then says active).
   */
  open(
    sessionKey: string,
    offerer: { path: string[]; acceptTypes?: string[]; setup?: string; maxMessageBytes?: number },
  ): { offererSide: string; answererSide: string } {
    const existing = this.sessions.get(sessionKey);
    if (existing) {
      existing.offerer.peerPath = offerer.path.slice();
      return { offererSide: existing.offerer.localUri, answererSide: existing.answerer.localUri };
    }
    const a = newSessionId();
    const b = newSessionId();
    const session: SwitchedSession = {
      key: sessionKey,
      offerer: new MsrpLeg('offerer', a, this.uriFor(a)),
      answerer: new MsrpLeg('answerer', b, this.uriFor(b)),
      openedAt: Date.now(),
      lastActivity: Date.now(),
    };
    if (offerer.acceptTypes) session.acceptTypes = offerer.acceptTypes.slice();
    // a file transfer's declared size (RFC 5547): no message of the session may be larger
    if (offerer.maxMessageBytes !== undefined)
      session.maxMessageBytes = Math.min(offerer.maxMessageBytes, this.opts.maxMessageBytes);
    session.offerer.peerPath = offerer.path.slice();
    this.sessions.add(session);
    if (offerer.setup === 'passive') this.connectLegSafely(session, session.offerer);
    return { offererSide: session.offerer.localUri, answererSide: session.answerer.localUri };
  }

  /**
   * The answerer's a=path is known: the AS connects to it (reusing a connection to the same
   * authority), unless the answer's a=setup is `active` (the answerer connects to the AS).
   */
  answered(sessionKey: string, answerer: { path: string[]; setup?: string }): void {
    const session = this.sessions.get(sessionKey);
    if (!session) return;
    session.answerer.peerPath = answerer.path.slice();
    if (answerer.setup === 'active') {
      // its connection may already be here: the leg is usable now that the path is known
      if (session.answerer.connection) session.answerer.bind(session.answerer.connection);
      return;
    }
    this.connectLegSafely(session, session.answerer);
  }

  /**
   * A re-offer (re-INVITE or UPDATE) moved one participant to another a=path: the leg leaves
   * its connection (closed when no session is left on it) and is bound again, by the AS
   * connecting to the new path or, when that side is the active one (RFC 6135), by the
   * participant's first SEND from it. The same path changes nothing.
   */
  repath(sessionKey: string, side: Side, peer: { path: string[]; setup?: string }): void {
    const session = this.sessions.get(sessionKey);
    if (!session) return;
    const leg = session[side];
    if (leg.peerPath?.join(' ') === peer.path.join(' ')) return;
    leg.peerPath = peer.path.slice();
    this.leaveConnection(leg);
    const asConnects = side === 'answerer' ? peer.setup !== 'active' : peer.setup === 'passive';
    if (asConnects) this.connectLegSafely(session, leg);
  }

  private connectLegSafely(session: SwitchedSession, leg: MsrpLeg): void {
    this.connectLeg(session, leg).catch((err: unknown) => {
      this.opts.log.warn({ sessionKey: session.key, side: leg.side, err }, 'msrp: cannot reach a participant');
      if (this.sessions.get(session.key) === session)
        this.endSession(session, `cannot connect to the ${leg.side}: ${(err as Error).message}`, true);
    });
  }

  async close(sessionKey: string, reason: string): Promise<void> {
    const session = this.sessions.get(sessionKey);
    if (session) this.endSession(session, reason, false);
  }

  /**
   * A session the AS ends itself (the focus's leg to one participant): the AS URI the
   * participant is given. The participant connects (the AS is passive), unless its offer
   * says `a=setup:passive`, then the AS connects to its path.
   */
  openEndpoint(key: string, peer: { path: string[]; setup?: string }): string {
    const known = this.endpointsByKey.get(key);
    if (known) return known.localUri;
    const sid = newSessionId();
    const leg = new EndpointLeg(key, sid, this.uriFor(sid), peer.path.slice());
    this.endpoints.set(sid, leg);
    this.endpointsByKey.set(key, leg);
    if (peer.setup === 'passive') this.connectEndpoint(leg);
    return leg.localUri;
  }

  /**
   * The participant's answer to the AS's own offer (the focus dialled out): its path, and the
   * AS connects to it unless the answer says `a=setup:active`.
   */
  endpointAnswered(key: string, peer: { path: string[]; setup?: string }): void {
    const leg = this.endpointsByKey.get(key);
    if (!leg) return;
    leg.peerPath = peer.path.slice();
    if (peer.setup !== 'active') this.connectEndpoint(leg);
  }

  /**
   * A re-offer in a focus dialog moved the participant to another a=path: its endpoint leg
   * leaves the old connection (closed when nothing else uses it) and is bound again by the
   * participant's first SEND from the new path, or by the AS connecting to it when the offer
   * says a=setup:passive. The same path changes nothing; false then, or for an unknown key.
   */
  repathEndpoint(key: string, peer: { path: string[]; setup?: string }): boolean {
    const leg = this.endpointsByKey.get(key);
    if (!leg || leg.peerPath.join(' ') === peer.path.join(' ')) return false;
    leg.peerPath = peer.path.slice();
    this.leaveConnection(leg);
    if (peer.setup === 'passive') this.connectEndpoint(leg);
    return true;
  }

  /** A leg moved to another path leaves its connection, closed when no session is left on it. */
  private leaveConnection(leg: { connection?: MsrpConnection; sessionId: string }): void {
    const old = leg.connection;
    if (!old) return;
    old.sessionIds.delete(leg.sessionId);
    leg.connection = undefined;
    if (!old.closed && old.sessionIds.size === 0 && !this.isStreaming(old)) old.close('session moved to another path');
  }

  /** The AS opens the endpoint's connection, binds it with a bodiless SEND, and sends what waited. */
  private connectEndpoint(leg: EndpointLeg): void {
    const key = leg.key;
    this.connectTo(parseMsrpUri(leg.peerPath[0]!))
      .then(async (conn) => {
        if (this.endpointsByKey.get(key) !== leg) return;
        leg.bind(conn);
        await conn.send({
          head: {
            kind: 'request',
            tid: newTransactionId(),
            method: 'SEND',
            headers: [
              { name: 'To-Path', value: leg.peerPath.join(' ') },
              { name: 'From-Path', value: leg.localUri },
              { name: 'Message-ID', value: newMessageId() },
            ],
          },
          flag: '$',
        });
        await this.flushEndpoint(leg);
      })
      .catch((err: unknown) => {
        if (this.endpointsByKey.get(key) !== leg) return;
        this.closeEndpoint(key);
        this.safeEmit('endpoint-lost', { key, reason: `cannot connect: ${(err as Error).message}` });
      });
  }

  /** Sends a whole message to an endpoint's participant (queued until its connection is bound). */
  async deliver(key: string, msg: { contentType: string; body: Buffer }): Promise<void> {
    const leg = this.endpointsByKey.get(key);
    if (!leg) return;
    leg.queued.push(msg);
    if (leg.ready) await this.flushEndpoint(leg);
  }

  closeEndpoint(key: string): void {
    const leg = this.endpointsByKey.get(key);
    if (!leg) return;
    this.endpointsByKey.delete(key);
    this.endpoints.delete(leg.sessionId);
    const conn = leg.connection;
    leg.release();
    if (conn && !conn.closed && conn.sessionIds.size === 0 && !this.isStreaming(conn))
      conn.close('no session left on it');
  }

  private async flushEndpoint(leg: EndpointLeg): Promise<void> {
    while (leg.queued.length > 0 && leg.ready && this.endpointsByKey.get(leg.key) === leg) {
      const msg = leg.queued.shift()!;
      const conn = leg.connection!;
      const tid = newTransactionId();
      const total = msg.body.length;
      // Failure-Report no: the participant sends no response, and nothing waits for one
      await conn.send({
        head: {
          kind: 'request',
          tid,
          method: 'SEND',
          headers: [
            { name: 'To-Path', value: leg.peerPath.join(' ') },
            { name: 'From-Path', value: leg.localUri },
            { name: 'Message-ID', value: newMessageId() },
            { name: 'Byte-Range', value: `1-${total}/${total}` },
            { name: 'Failure-Report', value: 'no' },
            { name: 'Content-Type', value: msg.contentType },
          ],
        },
        body: msg.body,
        flag: '$',
      });
    }
  }

  sessionStats(sessionKey: string): MsrpSessionStats | undefined {
    const s = this.sessions.get(sessionKey);
    if (!s) return undefined;
    return {
      fromOfferer: { messages: s.offerer.messages, bytes: s.offerer.bytes },
      fromAnswerer: { messages: s.answerer.messages, bytes: s.answerer.bytes },
    };
  }

  // -------------------------------------------------------------------------
  // connections
  // -------------------------------------------------------------------------

  private uriFor(sessionId: string): string {
    return formatMsrpUri({
      scheme: this.scheme,
      host: this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host,
      port: this.port,
      sessionId,
      transport: 'tcp',
      params: [],
    });
  }

  private adopt(socket: Socket, authority: string): MsrpConnection {
    socket.setNoDelay(true);
    const conn = new MsrpConnection(socket, authority, this.handler, this.opts.maxHeadBytes);
    this.connections.add(conn);
    return conn;
  }

  private connectTo(uri: MsrpUri): Promise<MsrpConnection> {
    const key = msrpAuthorityKey(uri);
    const known = this.outbound.get(key);
    if (known) return known;
    const host = uri.host.replace(/^\[(.*)\]$/, '$1');
    const port = uri.port ?? 2855;
    const attempt = new Promise<MsrpConnection>((resolve, reject) => {
      // the far end's certificate is not checked: MSRP over TLS names no host to check
      // it against (RFC 4975 relies on the SDP fingerprint, which the SIP side carries)
      const socket =
        uri.scheme === 'msrps' ? tlsConnect({ host, port, rejectUnauthorized: false }) : tcpConnect({ host, port });
      const timer = setTimeout(() => socket.destroy(new Error('connect timed out')), CONNECT_TIMEOUT_MS);
      const fail = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once('error', fail);
      socket.once(uri.scheme === 'msrps' ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', fail);
        resolve(this.adopt(socket, key));
      });
    });
    this.outbound.set(key, attempt);
    attempt.catch(() => {
      if (this.outbound.get(key) === attempt) this.outbound.delete(key);
    });
    return attempt;
  }

  private async connectLeg(session: SwitchedSession, leg: MsrpLeg): Promise<void> {
    if (leg.connection && !leg.connection.closed) return;
    const first = parseMsrpUri(leg.peerPath![0]!);
    const conn = await this.connectTo(first);
    if (this.sessions.get(session.key) !== session || (leg.connection && !leg.connection.closed)) return;
    leg.bind(conn);
    // the active side opens with a SEND (bodiless: nothing to say yet) so the far end binds too
    const tid = newTransactionId();
    const response = conn.expectResponse(tid);
    await conn.send({
      head: {
        kind: 'request',
        tid,
        method: 'SEND',
        headers: [
          { name: 'To-Path', value: leg.peerPath!.join(' ') },
          { name: 'From-Path', value: leg.localUri },
          { name: 'Message-ID', value: newMessageId() },
        ],
      },
      flag: '$',
    });
    const code = await response;
    if (code !== 200)
      this.opts.log.info({ sessionKey: session.key, side: leg.side, code }, 'msrp: the binding SEND was refused');
  }

  private onConnectionClosed(conn: MsrpConnection, reason: string): void {
    this.connections.delete(conn);
    const key = conn.authority;
    const out = this.outbound.get(key);
    if (out)
      // a connection that never opened is the far side's failure, already reported
      out.then(
        (c) => {
          if (c === conn) this.outbound.delete(key);
        },
        () => undefined,
      );
    const inc = this.incoming.get(conn);
    this.incoming.delete(conn);
    if (inc?.relay) this.abortRelay(inc).catch((err: unknown) => this.safeEmit('error', err as Error));
    for (const sid of [...conn.sessionIds]) {
      const ep = this.endpoints.get(sid);
      if (ep) {
        this.closeEndpoint(ep.key);
        this.safeEmit('endpoint-lost', { key: ep.key, reason: `msrp connection lost: ${reason}` });
        continue;
      }
      const found = this.sessions.bySession(sid);
      if (found) this.endSession(found.session, `msrp connection of the ${found.side} lost: ${reason}`, true);
    }
  }

  private endSession(session: SwitchedSession, reason: string, notify: boolean): void {
    if (this.sessions.get(session.key) !== session) return;
    this.sessions.remove(session.key);
    for (const leg of [session.offerer, session.answerer]) {
      const conn = leg.connection;
      leg.release();
      // a connection no session uses any more is closed (RFC 4975: connections live with their sessions)
      if (conn && !conn.closed && conn.sessionIds.size === 0 && !this.isStreaming(conn))
        conn.close('no session left on it');
    }
    this.opts.log.info({ sessionKey: session.key, reason }, 'msrp: session ended');
    if (notify) this.safeEmit('ended', { sessionKey: session.key, reason });
  }

  private isStreaming(conn: MsrpConnection): boolean {
    return this.incoming.get(conn)?.relay !== undefined;
  }

  private sweepIdle(): void {
    const now = Date.now();
    for (const s of this.sessions.all()) {
      if (now - s.lastActivity > this.opts.idleTimeoutMs) this.endSession(s, 'msrp idle timeout', true);
    }
    for (const c of this.connections) {
      if (c.sessionIds.size === 0 && now - c.lastActivity > this.opts.idleTimeoutMs)
        c.close('idle, bound to no session');
    }
  }

  private safeEmit<K extends keyof SwitchEvents & string>(event: K, ...args: SwitchEvents[K]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      this.opts.log.error({ err, event }, 'msrp: a listener of the switch failed; the switch goes on');
    }
  }

  // -------------------------------------------------------------------------
  // inbound
  // -------------------------------------------------------------------------

  private async onFrame(conn: MsrpConnection, ev: FrameEvent): Promise<void> {
    switch (ev.type) {
      case 'error':
        this.opts.log.info({ conn: conn.authority, reason: ev.reason }, 'msrp: framing error, connection closed');
        this.opts.metrics?.count('ims_as_msrp_refusals_total', { code: 'framing' });
        conn.close(`framing error: ${ev.reason}`);
        return;
      case 'head':
        if (ev.head.kind === 'response') {
          conn.settle(ev.head.tid, ev.head.code);
          this.incoming.set(conn, { head: ev.head, hasBody: ev.hasBody, failureReport: 'no', received: 0 });
          return;
        }
        {
          const inc = await this.onRequestHead(conn, ev.head, ev.hasBody);
          // the connection may have gone while the other leg was awaited: free what was taken
          if (conn.closed) await this.abortRelay(inc);
          else this.incoming.set(conn, inc);
        }
        return;
      case 'body': {
        const inc = this.incoming.get(conn);
        if (inc?.endpoint) this.onEndpointBody(inc, ev.data);
        else if (inc && inc.head.kind === 'request') await this.onBody(inc, ev.data);
        return;
      }
      case 'end': {
        const inc = this.incoming.get(conn);
        this.incoming.delete(conn);
        if (inc?.endpoint) await this.onEndpointEnd(conn, inc, ev.flag);
        else if (inc && inc.head.kind === 'request') await this.onEnd(conn, inc, ev.flag);
        return;
      }
    }
  }

  private async onRequestHead(conn: MsrpConnection, head: MsrpRequestHead, hasBody: boolean): Promise<Incoming> {
    const inc: Incoming = { head, hasBody, failureReport: 'yes', received: 0 };
    const refuse = (code: number, comment: string): Incoming => {
      inc.reject = { code, comment };
      return inc;
    };
    let to: readonly MsrpUri[];
    let from: ParsedPath;
    try {
      const toPath = this.paths.get(headerValue(head, 'To-Path') ?? '');
      from = this.paths.get(headerValue(head, 'From-Path') ?? '');
      to = toPath.uris;
      inc.fromPath = from.text;
      inc.selfUri = toPath.first;
    } catch {
      return refuse(MSRP_STATUS.BAD_REQUEST, 'To-Path and From-Path must be MSRP URIs');
    }
    try {
      inc.failureReport = failureReportOf(head);
    } catch {
      return refuse(MSRP_STATUS.BAD_REQUEST, 'bad Failure-Report');
    }
    if (head.method === 'REPORT') return inc;
    if (head.method !== 'SEND') return refuse(MSRP_STATUS.UNKNOWN_METHOD, `${head.method} not handled by the switch`);

    const endpoint = to.length === 1 && this.isOurs(to[0]!) ? this.endpoints.get(to[0]!.sessionId!) : undefined;
    if (endpoint) return this.onEndpointHead(conn, inc, endpoint, head, hasBody, from);
    const found = to.length === 1 && this.isOurs(to[0]!) ? this.sessions.bySession(to[0]!.sessionId!) : undefined;
    if (!found) return refuse(MSRP_STATUS.NO_SESSION, 'no such session here');
    const { session, side } = found;
    const leg = session[side];
    if (leg.connection && !leg.connection.closed && leg.connection !== conn) {
      return refuse(MSRP_STATUS.WRONG_CONNECTION, 'session bound to another connection');
    }
    // the sender must be the participant the SDP named (RFC 4975 section 5.4: the last URI of
    // the From-Path is the peer's own): anyone else who learnt the AS's URI could take the leg
    if (leg.peerPath && !this.sameParticipant(from, leg.peerPath))
      return refuse(MSRP_STATUS.FORBIDDEN, 'From-Path is not the participant of this session');
    if (!leg.connection || leg.connection.closed) leg.bind(conn);
    session.lastActivity = Date.now();
    inc.session = session;
    inc.side = side;

    const messageId = headerValue(head, 'Message-ID');
    if (!messageId) return refuse(MSRP_STATUS.BAD_REQUEST, 'SEND without Message-ID');
    inc.messageId = messageId;
    let range: ByteRange;
    let successReport: boolean;
    try {
      range = byteRangeOf(head);
      successReport = successReportOf(head);
    } catch (err) {
      return refuse(MSRP_STATUS.BAD_REQUEST, (err as Error).message);
    }
    inc.range = range;
    // a bodiless SEND binds the connection and carries nothing to relay
    if (!hasBody) return inc;

    let msg = leg.inbound.get(messageId);
    if (!msg) {
      const contentType = (headerValue(head, 'Content-Type') ?? '').split(';')[0]!.trim().toLowerCase();
      msg = { coverage: new ByteCoverage(), contentType, bytes: 0 };
      if (isTextType(contentType) && (range.total ?? 0) <= TEXT_EVENT_MAX_BYTES) msg.textParts = [];
      leg.inbound.set(messageId, msg);
    }
    inc.message = msg;
    if (msg.refused) return refuse(msg.refused, 'message already refused');
    const verdict = checkChunk(range, 0, msg.total, session.maxMessageBytes ?? this.opts.maxMessageBytes);
    if (!verdict.ok) {
      msg.refused = verdict.code;
      return refuse(verdict.code, verdict.reason);
    }
    if (range.total !== undefined) msg.total = range.total;

    const out = otherLeg(session, side);
    const outConn = await out.whenReady(this.opts.peerWaitMs ?? DEFAULT_PEER_WAIT_MS);
    if (!outConn || this.sessions.get(session.key) !== session)
      return refuse(MSRP_STATUS.TIMEOUT, `the ${out.side} is not connected`);
    const release = await outConn.lock.acquire();
    const tid = newTransactionId();
    const response = outConn.expectResponse(tid);
    inc.relay = { conn: outConn, tid, release, failed: false, response };
    out.relayed.set(messageId, { senderPath: inc.fromPath!, successReport, failureReport: inc.failureReport });
    const headers: MsrpHeader[] = [
      { name: 'To-Path', value: out.peerPath!.join(' ') },
      { name: 'From-Path', value: out.localUri },
      { name: 'Message-ID', value: messageId },
      { name: 'Byte-Range', value: formatByteRange({ start: range.start, total: range.total }) },
    ];
    if (successReport) headers.push({ name: 'Success-Report', value: 'yes' });
    headers.push({ name: 'Failure-Report', value: 'yes' });
    for (const h of head.headers) if (!HOP_HEADERS.has(h.name.toLowerCase())) headers.push(h);
    try {
      await outConn.beginBody({ kind: 'request', tid, method: 'SEND', headers });
    } catch {
      this.relayFailed(inc);
    }
    return inc;
  }

  /** Whether the From-Path ends at the participant the SDP named (its a=path's last URI). */
  private sameParticipant(from: ParsedPath, peerPath: string[]): boolean {
    const last = peerPath[peerPath.length - 1];
    let expected: MsrpUri | undefined;
    try {
      expected = last !== undefined ? this.paths.get(last).uris[0] : undefined;
    } catch {
      expected = undefined;
    }
    return expected !== undefined && msrpUriEquals(from.uris[from.uris.length - 1]!, expected);
  }

  /** A SEND to an endpoint of the AS: checked like a relayed one, then collected. */
  private onEndpointHead(
    conn: MsrpConnection,
    inc: Incoming,
    leg: EndpointLeg,
    head: MsrpRequestHead,
    hasBody: boolean,
    from: ParsedPath,
  ): Incoming {
    const refuse = (code: number, comment: string): Incoming => {
      inc.reject = { code, comment };
      return inc;
    };
    if (leg.connection && !leg.connection.closed && leg.connection !== conn)
      return refuse(MSRP_STATUS.WRONG_CONNECTION, 'session bound to another connection');
    if (!this.sameParticipant(from, leg.peerPath))
      return refuse(MSRP_STATUS.FORBIDDEN, 'From-Path is not the participant of this session');
    const fresh = !leg.connection || leg.connection.closed;
    if (fresh) leg.bind(conn);
    leg.lastActivity = Date.now();
    inc.endpoint = leg;
    const messageId = headerValue(head, 'Message-ID');
    if (!messageId) return refuse(MSRP_STATUS.BAD_REQUEST, 'SEND without Message-ID');
    inc.messageId = messageId;
    try {
      inc.range = byteRangeOf(head);
    } catch (err) {
      return refuse(MSRP_STATUS.BAD_REQUEST, (err as Error).message);
    }
    // what waited for the participant's connection goes out now (after this request's response)
    if (fresh)
      setImmediate(() => this.flushEndpoint(leg).catch((err: unknown) => this.safeEmit('error', err as Error)));
    if (!hasBody) return inc;
    let msg = leg.inbound.get(messageId);
    if (!msg) {
      const contentType = (headerValue(head, 'Content-Type') ?? '').split(';')[0]!.trim().toLowerCase();
      msg = { contentType, coverage: new ByteCoverage(), chunks: [], bytes: 0 };
      leg.inbound.set(messageId, msg);
    }
    if (msg.refused) return refuse(msg.refused, 'message already refused');
    const verdict = checkChunk(inc.range, 0, undefined, this.endpointMax);
    if (!verdict.ok) {
      msg.refused = verdict.code;
      return refuse(verdict.code, verdict.reason);
    }
    return inc;
  }

  private onEndpointBody(inc: Incoming, data: Buffer): void {
    const leg = inc.endpoint!;
    const msg = inc.messageId !== undefined ? leg.inbound.get(inc.messageId) : undefined;
    if (inc.reject || !msg || !inc.range) return;
    const at = inc.range.start + inc.received;
    inc.received += data.length;
    if (msg.bytes + data.length > this.endpointMax) {
      msg.refused = MSRP_STATUS.STOP_SENDING;
      inc.reject = { code: MSRP_STATUS.STOP_SENDING, comment: 'message too large' };
      return;
    }
    msg.chunks.push({ start: at, data: Buffer.from(data) });
    msg.bytes += data.length;
  }

  private async onEndpointEnd(conn: MsrpConnection, inc: Incoming, flag: '$' | '+' | '#'): Promise<void> {
    const head = inc.head as MsrpRequestHead;
    const leg = inc.endpoint!;
    // the whole message, when this chunk completes it: vetted before the chunk is answered, so
    // that a message the endpoint's owner cannot take gets its error code, not a 200
    const msg = inc.messageId !== undefined ? leg.inbound.get(inc.messageId) : undefined;
    let complete: EndpointMessageEvent | undefined;
    if (!inc.reject && msg && inc.range && flag !== '#' && !msg.refused) {
      if (inc.received > 0) msg.coverage.add(inc.range.start, inc.range.start + inc.received - 1);
      if (flag === '$') msg.endsAt = inc.range.start + inc.received - 1;
      const body = assembled(msg);
      if (body) {
        complete = { key: leg.key, contentType: msg.contentType, body };
        leg.inbound.delete(inc.messageId!);
        const refusal = this.endpointVetter?.(complete);
        if (refusal) {
          inc.reject = refusal;
          complete = undefined;
        }
      }
    }
    const code = inc.reject?.code ?? MSRP_STATUS.OK;
    if (code !== MSRP_STATUS.OK) this.opts.metrics?.count('ims_as_msrp_refusals_total', { code: String(code) });
    if (shouldRespond(inc.failureReport, code) && inc.fromPath && inc.selfUri) {
      const response = responseTo(head, code, inc.selfUri, inc.fromPath.split(' ')[0]!, inc.reject?.comment);
      await conn.send({ head: response, flag: '$' }).catch(() => undefined);
    }
    if (msg && (flag === '#' || msg.refused) && flag !== '+') leg.inbound.delete(inc.messageId!);
    if (!complete) return;
    leg.messages++;
    leg.bytes += complete.body.length;
    this.safeEmit('endpoint-message', complete);
  }

  private endpointVetter?: (m: EndpointMessageEvent) => { code: number; comment: string } | undefined;

  /** Who decides, before the last chunk is answered, whether an endpoint takes a whole message (the focus). */
  setEndpointVetter(vet: (m: EndpointMessageEvent) => { code: number; comment: string } | undefined): void {
    this.endpointVetter = vet;
  }

  private get endpointMax(): number {
    return this.opts.endpointMaxMessageBytes ?? this.opts.maxMessageBytes;
  }

  private isOurs(uri: MsrpUri): boolean {
    const host = uri.host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    return (
      uri.scheme === this.scheme &&
      host === this.opts.host.toLowerCase() &&
      uri.port === this.port &&
      uri.sessionId !== undefined
    );
  }

  private relayFailed(inc: Incoming): void {
    const relay = inc.relay;
    if (!relay || relay.failed) return;
    relay.failed = true;
    relay.release();
  }

  private async onBody(inc: Incoming, data: Buffer): Promise<void> {
    const msg = inc.message;
    if (inc.reject || !msg || !inc.range) return;
    inc.received += data.length;
    const last = inc.range.start + inc.received - 1;
    const verdict = checkChunk(
      inc.range,
      inc.received,
      msg.total,
      inc.session?.maxMessageBytes ?? this.opts.maxMessageBytes,
    );
    if (!verdict.ok) {
      msg.refused = verdict.code;
      inc.reject = { code: verdict.code, comment: verdict.reason };
      await this.abortRelay(inc);
      return;
    }
    if (msg.textParts) {
      // kept only while it arrives in order from byte 1 (chunks out of order: no text)
      const at = inc.range.start - 1 + inc.received - data.length;
      const held = msg.textParts.reduce((n, p) => n + p.length, 0);
      if (last > TEXT_EVENT_MAX_BYTES || at !== held) delete msg.textParts;
      else msg.textParts.push(data);
    }
    const leg = inc.session![inc.side!];
    // a long transfer in one chunk is traffic too: the session is not idle while it flows
    inc.session!.lastActivity = Date.now();
    leg.bytes += data.length;
    msg.bytes += data.length;
    this.opts.metrics?.count('ims_as_msrp_bytes_relayed_total', { from: inc.side! }, data.length);
    const relay = inc.relay;
    if (relay && !relay.failed) {
      try {
        await relay.conn.write(data);
      } catch {
        this.relayFailed(inc);
      }
    }
  }

  /** Ends the relayed chunk as interrupted (`#`): the far side drops the message. */
  private async abortRelay(inc: Incoming): Promise<void> {
    const relay = inc.relay;
    if (!relay || relay.failed) return;
    try {
      await relay.conn.endBody(relay.tid, '#');
    } catch {
      // the far connection is gone: nothing to tell it
    }
    this.relayFailed(inc);
  }

  private async onEnd(conn: MsrpConnection, inc: Incoming, flag: '$' | '+' | '#'): Promise<void> {
    const head = inc.head as MsrpRequestHead;
    if (head.method === 'REPORT' && !inc.reject) {
      await this.onReport(inc);
      return;
    }
    const relay = inc.relay;
    if (relay && !relay.failed) {
      try {
        await relay.conn.endBody(relay.tid, flag);
      } catch {
        relay.failed = true;
      }
      relay.release();
    }
    const code = inc.reject?.code ?? (relay?.failed ? MSRP_STATUS.TIMEOUT : MSRP_STATUS.OK);
    if (code !== MSRP_STATUS.OK) this.opts.metrics?.count('ims_as_msrp_refusals_total', { code: String(code) });
    if (shouldRespond(inc.failureReport, code) && inc.fromPath && inc.selfUri) {
      const to = inc.fromPath.split(' ')[0]!;
      const response = responseTo(head, code, inc.selfUri, to, inc.reject?.comment);
      await conn.send({ head: response, flag: '$' }).catch(() => undefined);
    }
    const msg = inc.message;
    const session = inc.session;
    if (!msg || !session || !inc.messageId || !inc.range) return;
    const side = inc.side!;
    const leg = session[side];
    if (inc.received > 0) msg.coverage.add(inc.range.start, inc.range.start + inc.received - 1);
    if (relay) this.followRelay(session, side, inc, relay.response, flag);
    if (flag === '#' || msg.refused) {
      if (flag !== '+') leg.inbound.delete(inc.messageId);
      return;
    }
    // the `$` chunk's last byte ends the message (see Reassembly: a declared total may count
    // the CRLF before the end-line, as RFC 4975's examples do); it may arrive before others
    if (flag === '$') msg.endsAt = inc.range.start + inc.received - 1;
    const total = msg.endsAt;
    if (total === undefined || !msg.coverage.covers(total)) return;
    leg.inbound.delete(inc.messageId);
    leg.messages++;
    const text = msg.textParts ? Buffer.concat(msg.textParts).toString('utf8') : undefined;
    const isComposing =
      msg.contentType === IS_COMPOSING_TYPE ||
      (msg.contentType === CPIM_CONTENT_TYPE && text !== undefined && wrapsIsComposing(text));
    this.opts.metrics?.count('ims_as_msrp_messages_relayed_total', { from: side });
    const event: MsrpMessageEvent = {
      sessionKey: session.key,
      from: side,
      messageId: inc.messageId,
      contentType: msg.contentType,
      bytes: total,
      isComposing,
    };
    if (text !== undefined) event.text = text;
    this.safeEmit('message', event);
  }

  /**
   * The far leg's answer to a relayed chunk: an error becomes a Failure-Report to the sender
   * (when it wants them) and refuses the rest of a message the far end stopped (413).
   */
  private followRelay(
    session: SwitchedSession,
    side: Side,
    inc: Incoming,
    response: Promise<number>,
    flag: string,
  ): void {
    const messageId = inc.messageId!;
    const range: ByteRange = {
      start: inc.range!.start,
      end: inc.range!.start + inc.received - 1,
      total: inc.message!.total,
    };
    const failureReport = inc.failureReport;
    const senderPath = inc.fromPath!;
    response
      .then(async (code) => {
        const out = otherLeg(session, side);
        if (code === MSRP_STATUS.OK) {
          if (flag === '$' && !out.relayed.get(messageId)?.successReport) out.relayed.delete(messageId);
          return;
        }
        if (code === MSRP_STATUS.STOP_SENDING) {
          const msg = session[side].inbound.get(messageId);
          if (msg) msg.refused = code;
        }
        const leg = session[side];
        if (!wantsFailureReport(failureReport) || !leg.connection || leg.connection.closed) return;
        await leg.connection.send({
          head: buildReport({
            tid: newTransactionId(),
            toPath: senderPath,
            fromPath: leg.localUri,
            messageId,
            range,
            code,
          }),
          flag: '$',
        });
      })
      .catch((err: unknown) => this.opts.log.warn({ err, sessionKey: session.key }, 'msrp: failure report not sent'));
  }

  /** A REPORT from one participant about a message the AS relayed to it: mapped back to its sender. */
  private async onReport(inc: Incoming): Promise<void> {
    const head = inc.head as MsrpRequestHead;
    const to = parseMsrpPath(headerValue(head, 'To-Path')!);
    const found = to.length === 1 && this.isOurs(to[0]!) ? this.sessions.bySession(to[0]!.sessionId!) : undefined;
    const messageId = headerValue(head, 'Message-ID');
    const status = headerValue(head, 'Status');
    // REPORTs are never answered (RFC 4975 section 7.1.2): a bad one is dropped
    if (!found || !messageId || !status) return;
    const { session, side } = found;
    session.lastActivity = Date.now();
    const leg = session[side];
    const rel = leg.relayed.get(messageId);
    if (!rel) return;
    let code: number;
    let range: ByteRange;
    try {
      code = parseStatus(status).code;
      range = byteRangeOf(head);
    } catch {
      return;
    }
    const wanted = code === MSRP_STATUS.OK ? rel.successReport : wantsFailureReport(rel.failureReport);
    if (code === MSRP_STATUS.OK && range.total !== undefined && range.end === range.total)
      leg.relayed.delete(messageId);
    const back = otherLeg(session, side);
    if (!wanted || !back.connection || back.connection.closed) return;
    const parsed = parseStatus(status);
    await back.connection
      .send({
        head: buildReport({
          tid: newTransactionId(),
          toPath: rel.senderPath,
          fromPath: back.localUri,
          messageId,
          range,
          code,
          comment: parsed.comment,
        }),
        flag: '$',
      })
      .catch(() => undefined);
  }
}

/** Headers the switch writes itself on the far leg (the rest travel as they came). */
const HOP_HEADERS = new Set(['to-path', 'from-path', 'message-id', 'byte-range', 'success-report', 'failure-report']);

/** Whether a From-Path ends with the URI a participant's SDP path ends with. */

/** A CPIM message whose content is an is-composing indication (clients wrap it too). */
function wrapsIsComposing(body: string): boolean {
  try {
    return parseCpim(body).contentType === IS_COMPOSING_TYPE;
  } catch {
    return false;
  }
}

function isTextType(contentType: string): boolean {
  return contentType.startsWith('text/') || contentType === 'message/cpim' || contentType === IS_COMPOSING_TYPE;
}
