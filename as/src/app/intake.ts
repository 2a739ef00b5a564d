import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type Koa from 'koa';
import type { AsConfig } from '../config/config.js';
import { refuseLargeContinue } from '../http/expect-continue.js';
import type { TlsCredentials } from '../http/tls-credentials.js';
import type { IscDispatcher } from '../isc/dispatcher.js';
import type { KamailioEventStream } from '../isc/event-stream.js';
import type { Logger } from '../log/logger.js';
import { DECISION_DEADLINE_MS } from './isc.js';
import type { Subsystem } from './ownership.js';

/** Longest a shutdown waits for decisions in flight and their stream frames (a decision's deadline, and then some). */
const SHUTDOWN_DRAIN_MS = DECISION_DEADLINE_MS + 1500;
/** Longest a shutdown waits for Kamailio to confirm it sends no more requests on the stream. */
const LEAVE_LIMIT_MS = 500;

export interface IntakeDeps {
  config: Pick<AsConfig, 'isc' | 'xdm'>;
  log: Logger;
  dispatcher: IscDispatcher;
  events: KamailioEventStream | undefined;
  /** The ISC port's application (ops) and the XCAP port's (xdm). */
  iscApp: Koa;
  xcapApp: Koa;
  xcapTls: TlsCredentials | undefined;
}

export interface IntakeParts {
  http: Server;
  xcapHttp: Server;
}

/**
 * Where requests come in: the ISC port, the evapi stream and the XCAP port, opened last once
 * every service exists. Its close (the first of a stop) loses no answer: Kamailio is asked to
 * send no more requests on the stream (later ones take HTTP, or another instance); every
 * decision in flight is answered and its stream frame confirmed by Kamailio; only then the
 * stream closes, and the ISC HTTP endpoint after it (the events of requests just answered may
 * come that way). The XCAP port closes alongside.
 */
export async function openIntake({
  config,
  log,
  dispatcher,
  events,
  iscApp,
  xcapApp,
  xcapTls,
}: IntakeDeps): Promise<Subsystem<IntakeParts>> {
  const http = await listen(iscApp, config.isc.host, config.isc.port, 'isc.host/isc.port');
  // Kamailio keeps its connections open; never let Node close them under it mid-request
  http.keepAliveTimeout = 65_000;
  events?.start();
  let xcapHttp: Server;
  try {
    xcapHttp = await listen(xcapApp, config.xdm.host, config.xdm.port, 'xdm.host/xdm.port', xcapTls);
  } catch (err) {
    await events?.close(0, () => true);
    http.closeAllConnections();
    await closeServer(http);
    throw err;
  }
  refuseLargeContinue(xcapHttp, config.xdm.maxDocumentBytes);
  const close = async () => {
    log.info({ deciding: dispatcher.inFlight }, 'stopping: answering the decisions in flight');
    const until = Date.now() + SHUTDOWN_DRAIN_MS;
    const remaining = () => Math.max(0, until - Date.now());
    const xcapClosed = closeServer(xcapHttp);
    await events?.leave(LEAVE_LIMIT_MS);
    await dispatcher.settle(remaining());
    await events?.close(remaining(), () => dispatcher.inFlight === 0);
    const iscClosed = closeServer(http);
    await dispatcher.settle(remaining());
    if (dispatcher.inFlight > 0) log.warn({ deciding: dispatcher.inFlight }, 'stopped with decisions unanswered');
    // a client still holding a connection now is idle or too slow: cut it
    for (const server of [http, xcapHttp]) server.closeAllConnections();
    await Promise.all([xcapClosed, iscClosed]);
  };
  return { http, xcapHttp, close };
}

/** Takes no new connections and drops idle ones; resolves when the last one is gone. */
function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  return closed;
}

/** Koa on host:port, over HTTPS when given credentials (then HTTPS only: no plain HTTP there). */
function listen(app: Koa, host: string, port: number, settings: string, tls?: TlsCredentials): Promise<Server> {
  return new Promise<Server>((resolve, reject) => {
    const s: Server = tls
      ? createHttpsServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, app.callback())
      : createHttpServer(app.callback());
    s.listen(port, host, () => resolve(s));
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot listen on ${host}:${port} (${settings}): ${err.code ?? err.message}`)),
    );
  });
}
