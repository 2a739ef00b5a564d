import { isIP } from 'node:net';
import { Charging } from '../charging/charging.js';
import { parseRfPeers } from '../charging/rf-client.js';
import type { AsConfig } from '../config/config.js';
import type { SingletonJobs } from '../cluster/singleton-jobs.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { Store } from '../store/port.js';
import type { Subsystem } from './ownership.js';

export interface ChargingDeps {
  config: Pick<AsConfig, 'charging' | 'node' | 'sip'>;
  log: Logger;
  metrics: Metrics;
  store: Store;
  jobs: SingletonJobs;
}

/** Charging (CDR files, Rf), started; its close flushes what was accepted (before the store closes). */
export async function startCharging({
  config,
  log,
  metrics,
  store,
  jobs,
}: ChargingDeps): Promise<Subsystem<{ charging: Charging }>> {
  const charging = new Charging({
    store,
    nodeId: config.node.id,
    nodeAddress: config.node.address,
    cdrDir: config.charging.cdrDir,
    rotateBytes: config.charging.rotateBytes,
    rotateSeconds: config.charging.rotateSeconds,
    retentionDays: config.charging.storeRetentionDays,
    maxStoredRecords: config.charging.storeMaxRecords,
    fsync: config.charging.fsync,
    jsonl: config.charging.jsonl,
    interOperatorIdentifiers: {
      originatingIOI: config.charging.originatingIoi || config.sip.domain,
      terminatingIOI: config.charging.terminatingIoi || config.sip.domain,
    },
    berFiles: {
      maxBytes: config.charging.fileMaxBytes,
      maxSeconds: config.charging.fileMaxSeconds,
      maxRecords: config.charging.fileMaxRecords,
    },
    log: log.child({ svc: 'charging' }),
    metrics,
    jobs,
    ...(config.charging.rf.peers.trim()
      ? {
          rf: {
            peers: parseRfPeers(config.charging.rf.peers),
            originHost: config.charging.rf.originHost || `${config.node.id}.${config.sip.domain}`,
            originRealm: config.charging.rf.originRealm || config.sip.domain,
            destinationRealm:
              config.charging.rf.destinationRealm || config.charging.rf.originRealm || config.sip.domain,
            hostIpAddress: isIP(config.node.address) ? config.node.address : '127.0.0.1',
            watchdogMs: config.charging.rf.watchdogSeconds * 1000,
          },
        }
      : {}),
  });
  const report = await charging.start();
  log.info({ report }, 'charging ready');
  return { charging, close: () => charging.stop() };
}
