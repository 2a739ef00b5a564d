import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { KamailioRpc } from '../../as/src/isc/kamailio-rpc.js';

/** A stand-in for Kamailio's /RPC that answers each call after `delayMs` and counts calls open at once. */
function slowRpcServer(delayMs: number): { server: Server; open: () => number; maxOpen: () => number } {
  let open = 0;
  let maxOpen = 0;
  const server = createServer((req, res) => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const { id, method } = JSON.parse(body) as { id: number; method: string };
      setTimeout(() => {
        open--;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ jsonrpc: '2.0', id, result: method }));
      }, delayMs);
    });
  });
  return { server, open: () => open, maxOpen: () => maxOpen };
}

describe('KamailioRpc: calls in flight are bounded', () => {
  const stand = slowRpcServer(20);
  let url = '';
  before(async () => {
    await new Promise<void>((resolve) => stand.server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(stand.server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => stand.server.close(() => resolve())));

  it('sends at most maxInFlight calls at once and answers every one of 200', async () => {
    const rpc = new KamailioRpc({ httpUrl: url, secret: 's', maxInFlight: 4, timeoutMs: 2000 });
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => rpc.call<string>(`m${i}`)));
    assert.equal(results.length, 200);
    assert.deepEqual(results.slice(0, 3), ['m0', 'm1', 'm2']);
    assert.equal(stand.maxOpen(), 4);
    assert.equal(rpc.queued, 0);
  });

  it('times a call from when it is sent, not from when it was queued', async () => {
    // 40 calls of 20 ms behind 2 slots take about 400 ms; each alone is well under its 150 ms timeout
    const rpc = new KamailioRpc({ httpUrl: url, secret: 's', maxInFlight: 2, timeoutMs: 150 });
    const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => rpc.call(`q${i}`)));
    assert.deepEqual(
      results.filter((r) => r.status === 'rejected'),
      [],
    );
  });

  it('a failed call frees its slot', async () => {
    const rpc = new KamailioRpc({ httpUrl: 'http://127.0.0.1:1', secret: 's', maxInFlight: 1, timeoutMs: 500 });
    const results = await Promise.allSettled([rpc.call('a'), rpc.call('b'), rpc.call('c')]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected'],
    );
    assert.equal(rpc.queued, 0);
  });
});

describe('KamailioRpc.terminateDialog', () => {
  /** Answers the first `silentFor` calls never (the client times out), then as Kamailio 5.6 does. */
  function flakyKamailio(silentFor: number, answer: (id: number) => object): { server: Server; calls: () => number } {
    let calls = 0;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        calls++;
        if (calls <= silentFor) return; // left hanging: the client's timeout ends it
        const { id } = JSON.parse(body) as { id: number };
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(answer(id)));
      });
    });
    return { server, calls: () => calls };
  }
  async function withServer<T>(server: Server, run: (url: string) => Promise<T>): Promise<T> {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      return await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  it('asks again when Kamailio did not answer in time', async () => {
    const k = flakyKamailio(1, (id) => ({ jsonrpc: '2.0', id, result: null }));
    const outcome = await withServer(k.server, (url) =>
      new KamailioRpc({ httpUrl: url, secret: 's', timeoutMs: 100 }).terminateDialog('c', 'f', 't'),
    );
    assert.equal(outcome, 'terminated');
    assert.equal(k.calls(), 2);
  });

  it("reads a dialog Kamailio no longer holds as 'gone' (5.6 wording), without asking again", async () => {
    const k = flakyKamailio(0, (id) => ({
      jsonrpc: '2.0',
      id,
      error: { code: 500, message: 'Couldnt find callid in dialog' },
    }));
    const outcome = await withServer(k.server, (url) =>
      new KamailioRpc({ httpUrl: url, secret: 's', timeoutMs: 100 }).terminateDialog('c', 'f', 't'),
    );
    assert.equal(outcome, 'gone');
    assert.equal(k.calls(), 1);
  });

  it('gives up after three unanswered tries', async () => {
    const k = flakyKamailio(10, (id) => ({ jsonrpc: '2.0', id, result: null }));
    await withServer(k.server, (url) =>
      assert.rejects(
        new KamailioRpc({ httpUrl: url, secret: 's', timeoutMs: 100 }).terminateDialog('c', 'f', 't'),
        /unreachable/,
      ),
    );
    assert.equal(k.calls(), 3);
  });
});
