/**
 * The MSRP media of an SDP as the IM session service reads and rewrites it: the offer of
 * RFC 4975 section 8's example, a file-transfer offer (RFC 5547), session-level c=, other
 * media left alone, and MSRP URI authorities.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { msrpMediaOf, msrpUriAuthority, withMsrpEndpoint } from '../../as/src/im/session-sdp.js';

const OFFER = [
  'v=0',
  'o=alice 2890844526 2890844527 IN IP4 alice.example.com',
  's= ',
  'c=IN IP4 alice.example.com',
  't=0 0',
  'm=message 7394 TCP/MSRP *',
  'a=accept-types:text/plain',
  'a=path:msrp://alice.example.com:7394/2s93i93idj;tcp',
  '',
].join('\r\n');

const AS = { path: 'msrp://as.example.net:2855/k39sa8dj;tcp', host: '192.0.2.7', port: 2855 };

describe('IM session SDP', () => {
  it('reads the MSRP media of an offer: port, transport, session-level address, path, accept-types', () => {
    assert.deepEqual(msrpMediaOf(OFFER), {
      port: 7394, transport: 'TCP/MSRP', host: 'alice.example.com',
      path: ['msrp://alice.example.com:7394/2s93i93idj;tcp'], acceptTypes: ['text/plain'], acceptWrappedTypes: [],
    });
  });

  it('reads setup, max-size, accept-wrapped-types, a relay path and a file selector (RFC 5547)', () => {
    const sdp = [
      'v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 't=0 0',
      'm=audio 49170 RTP/AVP 0', 'c=IN IP4 192.0.2.99',
      'm=message 9 TCP/TLS/MSRP *', 'c=IN IP4 192.0.2.1',
      'a=accept-types:message/cpim', 'a=accept-wrapped-types:text/plain text/html', 'a=setup:passive', 'a=max-size:4096',
      'a=path:msrps://relay.example.net:2855/r1;tcp msrps://192.0.2.1:9/s1;tcp',
      'a=file-selector:name:"photo.jpg" type:image/jpeg size:4096',
    ].join('\r\n');
    const m = msrpMediaOf(sdp)!;
    assert.equal(m.transport, 'TCP/TLS/MSRP');
    assert.equal(m.host, '192.0.2.1', 'the media-level c= wins');
    assert.deepEqual(m.path, ['msrps://relay.example.net:2855/r1;tcp', 'msrps://192.0.2.1:9/s1;tcp']);
    assert.deepEqual(m.acceptWrappedTypes, ['text/plain', 'text/html']);
    assert.equal(m.setup, 'passive');
    assert.equal(m.maxSize, 4096);
    assert.equal(m.fileSelector, 'name:"photo.jpg" type:image/jpeg size:4096');
  });

  it('finds no MSRP media in an SDP without m=message, or with one that names no path', () => {
    assert.equal(msrpMediaOf('v=0\r\nm=audio 4000 RTP/AVP 0\r\n'), undefined);
    assert.equal(msrpMediaOf('v=0\r\nm=message 7394 TCP/MSRP *\r\na=accept-types:text/plain\r\n'), undefined);
  });

  it('rewrites port, path and address of the MSRP media only, adding a media-level c= when the address was session-level', () => {
    const out = withMsrpEndpoint(OFFER, AS);
    assert.equal(out, [
      'v=0',
      'o=alice 2890844526 2890844527 IN IP4 alice.example.com',
      's= ',
      'c=IN IP4 alice.example.com',
      't=0 0',
      'm=message 2855 TCP/MSRP *',
      'c=IN IP4 192.0.2.7',
      'a=accept-types:text/plain',
      'a=path:msrp://as.example.net:2855/k39sa8dj;tcp',
      '',
    ].join('\r\n'));
    assert.deepEqual(msrpMediaOf(out)!.path, [AS.path]);
    assert.equal(msrpMediaOf(out)!.host, '192.0.2.7');
  });

  it('replaces a media-level c= and a relay path, and leaves other media as they were', () => {
    const sdp = 'v=0\nm=audio 49170 RTP/AVP 0\nc=IN IP4 192.0.2.99\nm=message 9 TCP/MSRP *\nc=IN IP4 192.0.2.1\na=path:msrp://r.example.net/x;tcp msrp://192.0.2.1:9/y;tcp\n';
    const out = withMsrpEndpoint(sdp, { ...AS, host: '2001:db8::7' });
    assert.equal(out, 'v=0\r\nm=audio 49170 RTP/AVP 0\r\nc=IN IP4 192.0.2.99\r\nm=message 2855 TCP/MSRP *\r\nc=IN IP6 2001:db8::7\r\na=path:msrp://as.example.net:2855/k39sa8dj;tcp\r\n');
  });

  it('refuses to rewrite an SDP with no MSRP media', () => {
    assert.throws(() => withMsrpEndpoint('v=0\r\nm=audio 1 RTP/AVP 0\r\n', AS), RangeError);
  });

  it('reads host and port of MSRP URIs (default port 2855, IPv6 literal)', () => {
    assert.deepEqual(msrpUriAuthority('msrp://as.example.net:2856/abc;tcp'), { host: 'as.example.net', port: 2856 });
    assert.deepEqual(msrpUriAuthority('msrps://bob@[2001:db8::1]/abc;tcp'), { host: '2001:db8::1', port: 2855 });
    assert.equal(msrpUriAuthority('sip:bob@example.com'), undefined);
    assert.equal(msrpUriAuthority('msrp://h:0/abc;tcp'), undefined);
  });
});
