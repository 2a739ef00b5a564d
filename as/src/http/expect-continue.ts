import type { Server } from 'node:http';

/**
 * Answers `Expect: 100-continue` itself instead of letting Node send 100 to everyone: a body
 * declared larger than `limit` gets 413 at once (RFC 9110 section 10.1.1: the client then
 * never sends it), anything else gets 100 and goes on to the server's request handler.
 */
export function refuseLargeContinue(server: Server, limit: number): void {
  server.on('checkContinue', (req, res) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      res.writeHead(413, { 'Content-Length': '0', Connection: 'close' });
      res.end();
      return;
    }
    res.writeContinue();
    server.emit('request', req, res);
  });
}
