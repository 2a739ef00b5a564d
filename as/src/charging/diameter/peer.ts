/**
 * One Diameter connection to one peer over TCP (RFC 6733 section 5): capabilities exchange
 * on connect, device watchdog while idle, answers to the peer's DWR and DPR, and requests
 * matched to their answers by hop-by-hop identifier. The connection is either 'open' or gone:
 * on any failure every outstanding request rejects and 'down' is emitted once; reconnecting
 * is the client's decision.
 */

import { EventEmitter } from 'node:events';
import { Socket, isIP } from 'node:net';
import { randomInt } from 'node:crypto';
import { decodeMessage, encodeMessage, messageLength, type Avp, type DiameterMessage } from './codec.js';
import { APP_BASE_ACCOUNTING, CMD, RESULT_SUCCESS, VENDOR_3GPP, avp, readAvp } from './dictionary.js';

export interface PeerOptions {
  host: string;
  port: number;
  originHost: string;
  originRealm: string;
  /** Our address in Host-IP-Address of the CER. */
  hostIpAddress: string;
  productName?: string;
  /** Time to connect and finish CER/CEA. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Tw: a DWR after this long without traffic; the peer is down when its DWA does not come within the same time. Default 30000 ms. */
  watchdogMs?: number;
  /** Time to wait for the answer to a request. Default 5000 ms. */
  answerTimeoutMs?: number;
}

interface Outstanding {
  resolve: (m: DiameterMessage) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class DiameterPeer extends EventEmitter {
  readonly name: string;
  private socket: Socket | null = null;
  private buffered: Buffer = Buffer.alloc(0);
  private readonly outstanding = new Map<number, Outstanding>();
  private nextHopByHop = randomInt(0, 0x7fffffff);
  private nextEndToEnd: number;
  private watchdog: NodeJS.Timeout | null = null;
  private closed = false;
  /** The peer's Origin-Host from its CEA. */
  remoteHost = '';

  constructor(private readonly opts: PeerOptions) {
    super();
    this.name = `${opts.host}:${opts.port}`;
    // RFC 6733 section 3: high 12 bits from the clock, low 20 random
    this.nextEndToEnd = (((Math.floor(Date.now() / 1000) & 0xfff) << 20) | randomInt(0, 0xfffff)) >>> 0;
  }

  /** Connects and exchanges capabilities; resolves when the peer accepted our CER. */
  async open(): Promise<void> {
    const timeoutMs = this.opts.connectTimeoutMs ?? 5000;
    const socket = new Socket();
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
    try {
      await this.connectAndExchange(socket, timeoutMs);
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
    this.armWatchdog();
  }

  private async connectAndExchange(socket: Socket, timeoutMs: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connect to ${this.name} timed out`)), timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.connect(this.opts.port, this.opts.host);
    });
    const cea = await this.request(this.message(CMD.CAPABILITIES_EXCHANGE, 0, this.capabilities()), timeoutMs);
    const result = readAvp(cea.avps, 'Result-Code');
    if (result !== RESULT_SUCCESS) throw new Error(`${this.name} refused our CER: Result-Code ${String(result)}`);
    this.remoteHost = String(readAvp(cea.avps, 'Origin-Host') ?? '');
  }

  get isOpen(): boolean {
    return this.socket !== null && !this.closed;
  }

  /** Sends a request (its identifiers set here) and resolves with the answer. */
  request(msg: DiameterMessage, timeoutMs = this.opts.answerTimeoutMs ?? 5000): Promise<DiameterMessage> {
    if (!this.socket || this.closed) return Promise.reject(new Error(`${this.name} is not connected`));
    const hopByHop = (this.nextHopByHop = (this.nextHopByHop + 1) >>> 0);
    const endToEnd = (this.nextEndToEnd = (this.nextEndToEnd + 1) >>> 0);
    const bytes = encodeMessage({ ...msg, request: true, hopByHop, endToEnd });
    return new Promise<DiameterMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.outstanding.delete(hopByHop);
        reject(new Error(`${this.name}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.outstanding.set(hopByHop, { resolve, reject, timer });
      this.socket!.write(bytes);
    });
  }

  /** Disconnects politely (DPR, then close). */
  async close(): Promise<void> {
    if (!this.socket || this.closed) return;
    try {
      await this.request(this.message(CMD.DISCONNECT_PEER, 0, [...this.origin(), avp('Disconnect-Cause', 0)]), 1000);
    } catch {
      // the peer may already be gone; closing is what matters
    }
    this.fail(new Error('closed by us'));
  }

  private capabilities(): Avp[] {
    const address = isIP(this.opts.hostIpAddress) ? this.opts.hostIpAddress : '127.0.0.1';
    return [
      ...this.origin(),
      avp('Host-IP-Address', address),
      avp('Vendor-Id', 0),
      avp('Product-Name', this.opts.productName ?? 'ims-as'),
      avp('Supported-Vendor-Id', VENDOR_3GPP),
      avp('Acct-Application-Id', APP_BASE_ACCOUNTING),
    ];
  }

  private origin(): Avp[] {
    return [avp('Origin-Host', this.opts.originHost), avp('Origin-Realm', this.opts.originRealm)];
  }

  private message(commandCode: number, applicationId: number, avps: Avp[]): DiameterMessage {
    return {
      commandCode,
      applicationId,
      hopByHop: 0,
      endToEnd: 0,
      request: true,
      proxiable: false,
      error: false,
      retransmit: false,
      avps,
    };
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    try {
      for (;;) {
        const length = messageLength(this.buffered);
        if (length === undefined || this.buffered.length < length) return;
        const msg = decodeMessage(this.buffered.subarray(0, length));
        this.buffered = this.buffered.subarray(length);
        this.onMessage(msg);
      }
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private onMessage(msg: DiameterMessage): void {
    this.armWatchdog();
    if (!msg.request) {
      const waiting = this.outstanding.get(msg.hopByHop);
      if (!waiting) return; // a late answer to a request we gave up on
      this.outstanding.delete(msg.hopByHop);
      clearTimeout(waiting.timer);
      waiting.resolve(msg);
      return;
    }
    if (msg.commandCode === CMD.DEVICE_WATCHDOG || msg.commandCode === CMD.DISCONNECT_PEER) {
      const answer: DiameterMessage = {
        ...msg,
        request: false,
        retransmit: false,
        avps: [avp('Result-Code', RESULT_SUCCESS), ...this.origin()],
      };
      this.socket?.write(encodeMessage(answer));
      if (msg.commandCode === CMD.DISCONNECT_PEER) setImmediate(() => this.fail(new Error('peer sent DPR')));
      return;
    }
    // 3001 DIAMETER_COMMAND_UNSUPPORTED: a client has no other requests to serve
    const refusal: DiameterMessage = {
      ...msg,
      request: false,
      error: true,
      retransmit: false,
      avps: [avp('Result-Code', 3001), ...this.origin()],
    };
    this.socket?.write(encodeMessage(refusal));
  }

  private armWatchdog(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    const tw = this.opts.watchdogMs ?? 30_000;
    this.watchdog = setTimeout(() => {
      this.request(this.message(CMD.DEVICE_WATCHDOG, 0, this.origin()), tw).then(
        () => undefined,
        (err: Error) => this.fail(new Error(`watchdog: ${err.message}`)),
      );
    }, tw);
    this.watchdog.unref();
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (this.watchdog) clearTimeout(this.watchdog);
    for (const [, o] of this.outstanding) {
      clearTimeout(o.timer);
      o.reject(err);
    }
    this.outstanding.clear();
    this.socket?.destroy();
    this.emit('down', err);
  }
}
