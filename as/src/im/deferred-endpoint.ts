/**
 * The IM Server's own MSRP end point for deferred sessions (OMA SIMPLE IM: the deferred
 * messaging function takes a session on behalf of a recipient who is not registered). The
 * switch connects to it on loopback like to any answerer, so the caller's leg runs through
 * the switch as in every session (policies, limits, counts); this end takes each SEND (200),
 * reassembles each message in memory (bounded by the message maximum) and hands it to the
 * session service, which stores it as a deferred message. A sender that asked for a
 * Success-Report gets one once the whole message is here: the IM server took it for the
 * recipient (RFC 4975 section 7.1.2, the recipient's duty, here the server's).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../log/logger.js';
import { Reassembly } from '../msrp/chunking.js';
import { MsrpFramer } from '../msrp/framer.js';
import {
  type ContinuationFlag,
  type MsrpHead,
  type MsrpRequestHead,
  byteRangeOf,
  failureReportOf,
  headerValue,
  serializeMessage,
  successReportOf,
} from '../msrp/message.js';
import { buildReport, responseTo, shouldRespond } from '../msrp/report.js';
import { newTransactionId } from '../msrp/ids.js';
import { MSRP_STATUS } from '../msrp/status.js';
import { parseMsrpPath } from '../msrp/uri.js';

/** A whole message a deferred session received. */
export interface DeferredSessionMessage {
  contentType: string;
  body: Buffer;
}

/** A message this end point refused on the way (above its size bound): the caller got the code. */
export interface DeferredSessionRefusal {
  contentType: string;
  code: number;
  reason: string;
}

interface SessionHandlers {
  onMessage: (m: DeferredSessionMessage) => void;
  onRefused?: (r: DeferredSessionRefusal) => void;
}

interface Receiving {
  head: MsrpHead;
  parts: Buffer[];
}

export class DeferredEndpoint {
  private server?: Server;
  private port = 0;
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Map<string, SessionHandlers>();
  private readonly messages = new Map<string, Reassembly>();

  constructor(private readonly opts: { maxMessageBytes: number; log: Logger }) {}

  async start(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    // it lives as long as the switch that connects to it (whose stop closes those connections)
    server.unref();
    this.server = server;
    const address = server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * The path the switch is given for this session's answerer; `onMessage` gets each whole
   * message, `onRefused` each one refused for its size (a file larger than the pager takes).
   */
  open(
    sessionId: string,
    onMessage: (m: DeferredSessionMessage) => void,
    onRefused?: (r: DeferredSessionRefusal) => void,
  ): string {
    this.sessions.set(sessionId, { onMessage, ...(onRefused ? { onRefused } : {}) });
    return `msrp://127.0.0.1:${this.port}/${sessionId};tcp`;
  }

  close(sessionId: string): void {
    this.sessions.delete(sessionId);
    for (const key of [...this.messages.keys()]) if (key.startsWith(`${sessionId} `)) this.messages.delete(key);
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    const framer = new MsrpFramer();
    let current: Receiving | undefined;
    socket.on('data', (data: Buffer) => {
      for (const ev of framer.push(data)) {
        if (ev.type === 'head') current = { head: ev.head, parts: [] };
        else if (ev.type === 'body') current?.parts.push(Buffer.from(ev.data));
        else if (ev.type === 'end') {
          if (current) this.received(socket, current, ev.flag);
          current = undefined;
        } else {
          this.opts.log.warn({ reason: ev.reason }, 'deferred session end point: unreadable MSRP, connection closed');
          socket.destroy();
        }
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  private received(socket: Socket, r: Receiving, flag: ContinuationFlag): void {
    const head = r.head;
    if (head.kind !== 'request' || head.method !== 'SEND') return;
    const answer = (code: number) => {
      if (!shouldRespond(failureReportOf(head), code)) return;
      const self = headerValue(head, 'To-Path') ?? '';
      const back = headerValue(head, 'From-Path') ?? '';
      socket.write(serializeMessage({ head: responseTo(head, code, self, back), flag: '$' }));
    };
    let sessionId: string | undefined;
    try {
      sessionId = parseMsrpPath(headerValue(head, 'To-Path') ?? '')[0]?.sessionId;
    } catch {
      return answer(MSRP_STATUS.BAD_REQUEST);
    }
    const handlers = sessionId !== undefined ? this.sessions.get(sessionId) : undefined;
    if (!handlers) return answer(MSRP_STATUS.NO_SESSION);
    const body = Buffer.concat(r.parts);
    // the switch's binding SEND has no body: nothing to keep
    if (body.length === 0 && headerValue(head, 'Byte-Range') === undefined) return answer(MSRP_STATUS.OK);
    this.chunk(head, sessionId!, body, flag, handlers, answer, (size) => {
      if (!successReportOf(head)) return;
      const report = buildReport({
        tid: newTransactionId(),
        toPath: headerValue(head, 'From-Path') ?? '',
        fromPath: headerValue(head, 'To-Path') ?? '',
        messageId: headerValue(head, 'Message-ID') ?? '',
        range: { start: 1, end: size, total: size },
        code: MSRP_STATUS.OK,
      });
      socket.write(serializeMessage({ head: report, flag: '$' }));
    });
  }

  private chunk(
    head: MsrpRequestHead,
    sessionId: string,
    body: Buffer,
    flag: ContinuationFlag,
    handlers: SessionHandlers,
    answer: (code: number) => void,
    reportSuccess: (size: number) => void,
  ): void {
    const key = `${sessionId} ${headerValue(head, 'Message-ID') ?? ''}`;
    let message = this.messages.get(key);
    if (!message) {
      message = new Reassembly(this.opts.maxMessageBytes);
      this.messages.set(key, message);
    }
    let verdict;
    try {
      verdict = message.add(byteRangeOf(head), body, flag);
    } catch {
      this.messages.delete(key);
      return answer(MSRP_STATUS.BAD_REQUEST);
    }
    if (!verdict.ok) {
      this.messages.delete(key);
      handlers.onRefused?.({
        contentType: headerValue(head, 'Content-Type') ?? 'application/octet-stream',
        code: verdict.code,
        reason: verdict.reason,
      });
      return answer(verdict.code);
    }
    answer(MSRP_STATUS.OK);
    if (message.state === 'receiving') return;
    this.messages.delete(key);
    // an interrupted message (#) is not kept: its sender was told it did not get through
    if (message.state !== 'complete') return;
    const contentType = headerValue(head, 'Content-Type') ?? 'text/plain';
    const whole = message.body();
    handlers.onMessage({ contentType, body: whole });
    reportSuccess(whole.length);
  }
}
