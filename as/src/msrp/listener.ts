/**
 * The MSRP listener: plain TCP, or TLS (`msrps:` URIs) when a certificate and key are given.
 * Listen errors reject start(); connection-level errors stay with their connection.
 */
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';

export interface ListenerOptions {
  host: string;
  port: number;
  tls?: { cert: string | Buffer; key: string | Buffer };
  onSocket: (socket: Socket) => void;
  onError?: (err: Error) => void;
}

export class MsrpListener {
  private server?: Server;
  /** The port bound, read once: every request compares its To-Path against it. */
  private boundPort?: number;

  constructor(private readonly opts: ListenerOptions) {}

  async start(): Promise<void> {
    const server = this.opts.tls
      ? createTlsServer({ cert: this.opts.tls.cert, key: this.opts.tls.key }, (s) => this.opts.onSocket(s))
      : createTcpServer((s) => this.opts.onSocket(s));
    // a failed TLS handshake is the client's problem, not the listener's
    server.on('tlsClientError', (_err: Error, socket: Socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        const addr = server.address();
        this.boundPort = addr && typeof addr === 'object' ? addr.port : this.opts.port;
        resolve();
      });
    });
    server.on('error', (err) => {
      // after listen succeeded, errors concern single accepts: reported, nothing to stop for
      this.opts.onError?.(err);
    });
    this.server = server;
  }

  /** The bound port (the configured one, or the one picked for port 0). */
  get port(): number {
    return this.boundPort ?? this.opts.port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
