import type { Doc, Store } from './port.js';

interface ProbeDoc extends Doc {
  at: Date;
}

/**
 * The store's health as a client sees it: `ping` says the engine is there, but a full or
 * read-only disk still answers pings, so the probe also writes (one small document per
 * node, replaced each time). Resolves with a short description, rejects with the cause.
 */
export async function probeStore(store: Store, nodeId: string): Promise<string> {
  await store.ping();
  await store.collection<ProbeDoc>('health_probe').replaceOne({ _id: nodeId }, { _id: nodeId, at: new Date() }, { upsert: true });
  return `${store.engine}, writable`;
}
