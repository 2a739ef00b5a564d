/**
 * A test MSRP participant built on the format module: it connects to the switch (the
 * offerer's side) or listens for the switch (the answerer's side), writes raw bytes or whole
 * messages, and collects every message it receives (bodies whole).
 */
import { once } from 'node:events';
import { type AddressInfo, type Server, type Socket, connect as tcpConnect, createServer } from 'node:net';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { MsrpFramer } from '../../as/src/msrp/framer.js';
import { type ContinuationFlag, type MsrpHead, type MsrpMessage, headerValue, serializeMessage } from '../../as/src/msrp/message.js';
import { until } from '../helpers/until.js';

export interface Received {
  head: MsrpHead;
  body?: Buffer;
  flag: ContinuationFlag;
}

export class MsrpPeer {
  socket?: Socket;
  private server?: Server;
  readonly received: Received[] = [];
  /** Body bytes received in total (for streams too large to keep). */
  bodyBytes = 0;
  closed = false;
  private current?: { head: MsrpHead; parts: Buffer[]; hasBody: boolean };
  /** Keep bodies up to this size (larger ones are counted only). */
  keepBodiesUpTo = 1024 * 1024;
  /** Answer every SEND with 200 (as an endpoint does). */
  autoRespond = true;

  /** The offerer's side: connects to the switch. */
  static async connect(port: number, tls = false): Promise<MsrpPeer> {
    const peer = new MsrpPeer();
    const socket = tls ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }) : tcpConnect({ host: '127.0.0.1', port });
    await once(socket, tls ? 'secureConnect' : 'connect');
    peer.attach(socket);
    return peer;
  }

  /** The answerer's side: listens; the switch connects. Returns its port. */
  async listen(tls?: { cert: Buffer; key: Buffer }): Promise<number> {
    this.server = tls ? createTlsServer(tls, (s) => this.attach(s)) : createServer((s) => this.attach(s));
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return (this.server.address() as AddressInfo).port;
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    const framer = new MsrpFramer();
    socket.on('data', (d: Buffer) => {
      for (const ev of framer.push(d)) {
        if (ev.type === 'head') this.current = { head: ev.head, parts: [], hasBody: ev.hasBody };
        else if (ev.type === 'body') {
          this.bodyBytes += ev.data.length;
          if (this.current && this.bodyBytes <= this.keepBodiesUpTo) this.current.parts.push(ev.data);
        } else if (ev.type === 'end' && this.current) {
          const c = this.current;
          this.current = undefined;
          const msg: Received = c.hasBody ? { head: c.head, body: Buffer.concat(c.parts), flag: ev.flag } : { head: c.head, flag: ev.flag };
          this.received.push(msg);
          if (this.autoRespond && c.head.kind === 'request' && c.head.method === 'SEND') this.respond(c.head, 200);
        } else if (ev.type === 'error') throw new Error(ev.reason);
      }
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  respond(request: MsrpHead, code: number): void {
    const from = headerValue(request, 'From-Path')!.split(' ')[0]!;
    const to = headerValue(request, 'To-Path')!.split(' ')[0]!;
    this.write(serializeMessage({
      head: { kind: 'response', tid: request.tid, code, comment: code === 200 ? 'OK' : 'Failed', headers: [{ name: 'To-Path', value: from }, { name: 'From-Path', value: to }] },
      flag: '$',
    }));
  }

  write(data: Buffer | string): boolean {
    return this.socket!.write(data);
  }

  send(msg: MsrpMessage): void {
    this.write(serializeMessage(msg));
  }

  requests(method: string): Received[] {
    return this.received.filter((m) => m.head.kind === 'request' && m.head.method === method);
  }

  responseTo(tid: string): Received | undefined {
    return this.received.find((m) => m.head.kind === 'response' && m.head.tid === tid);
  }

  async waitFor(what: string, ok: (r: Received[]) => boolean, ms = 5000): Promise<void> {
    await until(what, () => ok(this.received), ms);
  }

  async close(): Promise<void> {
    this.socket?.destroy();
    if (this.server) await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}
