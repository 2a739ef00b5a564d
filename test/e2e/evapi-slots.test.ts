/**
 * evapi's client slots (max_clients 32 in kamailio.cfg) against idle connections, with real
 * Kamailio and the AS: a connection from an address that is not AS_IP never holds a slot
 * (closed in event_route[evapi:connection-new]); idle connections from AS_IP itself do hold
 * slots for as long as they stay open (evapi 5.6 has no timer, and evapi_close() closes only
 * the connection whose event runs: kamailio-cfg/README.md). While they hold every slot, the
 * AS sees its connections refused (ims_as_isc_stream_refused_total, a warning) and serves over
 * HTTP; once slots are free its stream is back within seconds.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TestStack, eventually, portsFrom } from './stack.js';

const MAX_CLIENTS = 32;
const streamUp = async (stack: TestStack) => /^ims_as_isc_event_stream_up 1/m.test(await stack.metrics());

/**
 * Opens `n` TCP connections to evapi from `localAddress` that never send anything, one after
 * the other (evapi listens with a backlog of 4: a burst would wait in SYN retries), each given
 * a moment for Kamailio to close it.
 */
async function idleConnections(
  stack: TestStack,
  n: number,
  localAddress: string,
): Promise<Array<{ socket: Socket; closed: () => boolean }>> {
  const out: Array<{ socket: Socket; closed: () => boolean }> = [];
  for (let i = 0; i < n; i++) {
    let closed = false;
    const socket = connect({ host: '127.0.0.1', port: stack.ports.evapi, localAddress });
    socket.on('error', () => undefined);
    await new Promise<void>((res) => {
      socket.once('connect', () => res());
      socket.once('close', () => res());
    });
    socket.on('close', () => (closed = true));
    if (socket.destroyed) closed = true;
    await new Promise((r) => setTimeout(r, 30));
    out.push({ socket, closed: () => closed });
  }
  return out;
}

describe('evapi client slots and idle connections', () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start(portsFrom(7260));
    await eventually(async () => ((await streamUp(stack)) ? true : undefined), 10000, 'stream up');
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('closes at once every connection from an address that is not AS_IP: an AS restart finds its slots', async () => {
    const strangers = await idleConnections(stack, MAX_CLIENTS + 8, '127.0.0.2');
    await eventually(
      () => (strangers.every((c) => c.closed()) ? true : undefined),
      3000,
      'every stranger closed by Kamailio',
    );
    await stack.stopAs();
    const started = Date.now();
    await stack.startAs();
    await eventually(async () => ((await streamUp(stack)) ? true : undefined), 3000, 'stream up after the restart');
    assert.ok(Date.now() - started < 5000);
  });

  it('tells idle connections from AS_IP that hold every slot (refusals counted), and is back within seconds once they go', async () => {
    const taken = await idleConnections(stack, MAX_CLIENTS, '127.0.0.1');
    await stack.stopAs();
    // the AS's own slots free up as it stops: the idle client takes those too
    const more = await idleConnections(stack, 8, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 300));
    const holding = [...taken, ...more].filter((c) => !c.closed());
    assert.equal(holding.length, MAX_CLIENTS, 'idle connections hold every slot');
    await stack.startAs();
    await eventually(
      async () => (/^ims_as_isc_stream_refused_total [1-9]/m.test(await stack.metrics()) ? true : undefined),
      5000,
      'refusals counted',
    );
    assert.match(stack.logOf('as'), /all evapi client slots taken/);
    assert.equal(await streamUp(stack), false);
    // the slots free: the stream is back within seconds (retries at most 2 s apart)
    for (const c of holding) c.socket.destroy();
    const freed = Date.now();
    await eventually(
      async () => ((await streamUp(stack)) ? true : undefined),
      4000,
      'stream back once the slots are free',
    );
    assert.ok(Date.now() - freed < 4000, `${Date.now() - freed} ms`);
  });
});
