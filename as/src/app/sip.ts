import type { AsConfig } from '../config/config.js';
import { instanceName, instanceTag } from '../isc/instance.js';
import { KamailioRpc } from '../isc/kamailio-rpc.js';
import { UacClient } from '../isc/uac.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { Subsystem } from './ownership.js';

export interface SipDeps {
  config: Pick<AsConfig, 'kamailio' | 'isc' | 'sip' | 'node'>;
  log: Logger;
  metrics: Metrics;
}

export interface SipParts {
  /** Kamailio's RPC (htables, dialogs, version). */
  kamailio: KamailioRpc;
  /** Requests the AS sends through Kamailio. */
  uac: UacClient;
  /** Kamailio's SIP address as a URL (host and port for contacts). */
  core: URL;
}

/** The SIP side toward Kamailio; its close answers every request still waiting 503 (no caller hangs). */
export function createSip({ config, log, metrics }: SipDeps): Subsystem<SipParts> {
  const kamailio = new KamailioRpc({ httpUrl: config.kamailio.httpUrl, secret: config.isc.secret });
  const uac = new UacClient({
    httpUrl: config.kamailio.httpUrl,
    secret: config.isc.secret,
    coreUri: config.kamailio.sipUri,
    domain: config.sip.domain,
    transactionTimeoutMs: config.kamailio.transactionTimeoutMs,
    instanceTag: instanceTag(instanceName(config.node.id)),
    log: log.child({ svc: 'uac' }),
    metrics,
  });
  const core = new URL(config.kamailio.sipUri.replace(/^sips?:/, 'http://'));
  return { kamailio, uac, core, close: () => uac.close() };
}
