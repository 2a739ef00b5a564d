import Koa from 'koa';
import type { AsConfig } from '../config/config.js';
import { DigestAuthenticator } from '../http/digest.js';
import { emptyBody } from '../http/empty-body.js';
import { errorSummary, isClientFault } from '../http/client-fault.js';
import { failureAnswers } from '../http/failure-answer.js';
import { readTlsCredentials, type TlsCredentials } from '../http/tls-credentials.js';
import type { ConversationHistory } from '../im/history.js';
import type { ImPolicies } from '../im/im-policies.js';
import { imRoutes } from '../im/im-routes.js';
import type { MessageStore } from '../im/message-store.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { StoreOutages } from '../store/store-fault.js';
import type { Store } from '../store/port.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { UserDirectory } from '../users/user-directory.js';
import { DocumentChecker } from '../xdm/document-checker.js';
import { XdmDocuments } from '../xdm/document-store.js';
import { xcapAuth } from '../xdm/xcap-auth.js';
import { XcapServer } from '../xdm/xcap-server.js';
import type { Subsystem } from './ownership.js';

/**
 * Documents below this size are parsed and checked on the main thread (about 2 ms at this size;
 * a worker round trip costs more); larger ones in the checker's worker thread.
 */
const INLINE_CHECK_BYTES = 16 * 1024;

export interface XdmDocumentsDeps {
  config: Pick<AsConfig, 'xdm'>;
  store: Store;
}

export interface XdmDocumentParts {
  docs: XdmDocuments;
  /** The XCAP server's credentials when it serves HTTPS. */
  xcapTls: TlsCredentials | undefined;
  /** The XCAP root URI clients are told (xcap-diff, welcome messages). */
  xcapRoot: string;
}

/** The XDMS documents in the store (what presence and IM read); nothing to close. */
export async function openXdmDocuments({ config, store }: XdmDocumentsDeps): Promise<Subsystem<XdmDocumentParts>> {
  const docs = new XdmDocuments(store);
  await docs.start();
  // read before anything listens: a wrong path stops the start naming the setting
  const xcapTls = readTlsCredentials(config.xdm.tlsCert, config.xdm.tlsKey, 'xdm.tlsCert/xdm.tlsKey');
  const xcapRoot =
    config.xdm.publicRoot ||
    `${xcapTls ? 'https' : 'http'}://${config.xdm.host}:${config.xdm.port}${config.xdm.rootPath}`;
  return { docs, xcapTls, xcapRoot, close: () => undefined };
}

export interface XcapDeps {
  config: Pick<AsConfig, 'xdm' | 'sip' | 'isc'>;
  log: Logger;
  metrics: Metrics;
  outages: StoreOutages;
  docs: XdmDocuments;
  xcapRoot: string;
  users: UserDirectory;
  domain: LocalDomain;
  /** The user's own IM data served under /im/users/ on the XCAP port. */
  im: { messageStore: MessageStore; history: ConversationHistory; imPolicies: ImPolicies };
}

/**
 * The XCAP server's application (not yet listening: the intake listens) and the document
 * checker; its close ends the checker's worker thread, after the XCAP port closed.
 */
export function createXcap({
  config,
  log,
  metrics,
  outages,
  docs,
  xcapRoot,
  users,
  domain,
  im,
}: XcapDeps): Subsystem<{ app: Koa }> {
  const xcap = new Koa();
  const xcapLog = log.child({ svc: 'xcap' });
  xcap.use(failureAnswers({ log: xcapLog, metrics, outages, api: 'xcap' }));
  // large documents are parsed and validated in a worker thread: no XCAP PUT stalls SIP decisions
  const checker = new DocumentChecker({
    limits: { maxBytes: config.xdm.maxDocumentBytes, maxDepth: config.xdm.maxDepth },
    inlineBelowBytes: INLINE_CHECK_BYTES,
    log: xcapLog,
    metrics,
  });
  const xcapServer = new XcapServer({
    docs,
    users,
    checker,
    metrics,
    outages,
    log: xcapLog,
    options: {
      rootPath: config.xdm.rootPath,
      rootUri: xcapRoot,
      domain,
      maxDocumentBytes: config.xdm.maxDocumentBytes,
      maxDepth: config.xdm.maxDepth,
    },
  });
  const underRoot = (path: string) =>
    path === config.xdm.rootPath || path.startsWith(`${config.xdm.rootPath}/`) || path.startsWith('/im/users/');
  xcap.use(async (ctx, next) => {
    if (!underRoot(ctx.path)) {
      emptyBody(ctx, 404);
      return;
    }
    await next();
  });
  xcap.use(
    xcapAuth({
      digest: new DigestAuthenticator(config.sip.domain, config.isc.secret),
      users,
      domain,
      trustedProxies: () => config.xdm.trustedProxies,
      assertedIdentityHeader: config.xdm.assertedIdentityHeader,
    }),
  );
  const userIm = imRoutes({ store: im.messageStore, history: im.history, policies: im.imPolicies, domain });
  xcap.use(userIm.routes()).use(userIm.allowedMethods());
  xcap.use(xcapServer.middleware());
  // koa's default prints whole stacks to stderr, e.g. for every client that sends a broken request
  xcap.on('error', (err: unknown) => {
    if (isClientFault(err)) xcapLog.info(errorSummary(err), 'XCAP connection failed (client)');
    else xcapLog.error(errorSummary(err), 'XCAP request failed');
  });
  return {
    app: xcap,
    // (as before the ownership tree: a checker that does not stop is worth a warning, not an unclean stop)
    close: () =>
      checker.close().catch((err: unknown) => xcapLog.warn(errorSummary(err), 'document checker not stopped')),
  };
}
