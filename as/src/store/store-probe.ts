import type { Doc, Store } from './port.js';
import type { StoreOutages } from './store-fault.js';

interface ProbeDoc extends Doc {
  at: Date;
}

/**
 * The store's health as a client sees it: `ping` says the engine is there, but a full or
 * read-only disk still answers pings, so the probe also writes (one small document per
 * node, replaced each time), and an outage a request met a moment ago counts too.
 * Resolves with the engine's name, rejects with the cause.
 */
export async function probeStore(store: Store, nodeId: string, outages: StoreOutages): Promise<string> {
  await store.ping();
  await store
    .collection<ProbeDoc>('health_probe')
    .replaceOne({ _id: nodeId }, { _id: nodeId, at: new Date() }, { upsert: true });
  const recent = outages.recent();
  if (recent) throw new Error(`${recent.message} (a request met it ${recent.secondsAgo} s ago)`);
  return store.engine;
}
