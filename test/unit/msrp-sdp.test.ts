import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseFileSelector, parseMsrpMedia, rewriteMsrpMedia } from '../../as/src/msrp/sdp.js';

const crlf = (lines: string[]) => lines.map((l) => `${l}\r\n`).join('');

// RFC 4975 section 10.1: Alice's offer of a message session (from the example's facts).
const ALICE_OFFER = crlf([
  'v=0',
  'o=alice 2890844526 2890844527 IN IP4 alicepc.example.com',
  's=-',
  'c=IN IP4 alicepc.example.com',
  't=0 0',
  'm=message 7777 TCP/MSRP *',
  'a=accept-types:text/plain',
  'a=path:msrp://alicepc.example.com:7777/iau39soe2843z;tcp',
]);

// RFC 5547 section 9.1: Alice offers a picture (push), with its selector, id, disposition, date and icon.
const FILE_OFFER = crlf([
  'v=0',
  'o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com',
  's=',
  'c=IN IP4 host.atlanta.example.com',
  't=0 0',
  'm=message 7654 TCP/MSRP *',
  'i=This is my latest picture',
  'a=sendonly',
  'a=accept-types:message/cpim',
  'a=accept-wrapped-types:*',
  'a=path:msrp://atlanta.example.com:7654/jshA7we;tcp',
  'a=file-selector:name:"My cool picture.jpg" type:image/jpeg size:32349 hash:sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E',
  'a=file-transfer-id:vBnG916bdberum2fFEABR1FR3ExZMUrd',
  'a=file-disposition:render',
  'a=file-date:creation:"Mon, 15 May 2006 15:01:31 +0300"',
  'a=file-icon:cid:id2@alicepc.example.com',
]);

describe('MSRP SDP', () => {
  it('reads the media line of a message session offer', () => {
    assert.deepEqual(parseMsrpMedia(ALICE_OFFER), [
      {
        mediaIndex: 0,
        port: 7777,
        proto: 'TCP/MSRP',
        formats: ['*'],
        address: 'alicepc.example.com',
        path: ['msrp://alicepc.example.com:7777/iau39soe2843z;tcp'],
        acceptTypes: ['text/plain'],
        acceptWrappedTypes: [],
      },
    ]);
  });

  it('reads the RFC 5547 file-transfer attributes', () => {
    const [m] = parseMsrpMedia(FILE_OFFER);
    assert.ok(m);
    assert.equal(m.direction, 'sendonly');
    assert.deepEqual(m.acceptTypes, ['message/cpim']);
    assert.deepEqual(m.acceptWrappedTypes, ['*']);
    assert.deepEqual(m.fileSelector, {
      name: 'My cool picture.jpg',
      type: 'image/jpeg',
      size: 32349,
      hashes: [{ algorithm: 'sha-1', value: '72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E' }],
    });
    assert.equal(m.fileTransferId, 'vBnG916bdberum2fFEABR1FR3ExZMUrd');
    assert.equal(m.fileDisposition, 'render');
    assert.deepEqual(m.fileDate, { creation: 'Mon, 15 May 2006 15:01:31 +0300' });
    assert.equal(m.fileIcon, 'cid:id2@alicepc.example.com');
  });

  it('reads max-size, setup, file-range and TLS media; ignores other media', () => {
    const sdp = crlf([
      'v=0',
      'o=- 1 1 IN IP4 10.0.0.1',
      's=-',
      't=0 0',
      'm=audio 4000 RTP/AVP 0',
      'c=IN IP4 10.0.0.1',
      'm=message 2855 TCP/TLS/MSRP *',
      'c=IN IP4 10.0.0.2',
      'a=path:msrps://10.0.0.2:2855/abc;tcp',
      'a=max-size:65536',
      'a=setup:passive',
      'a=file-range:1024-*',
    ]);
    const media = parseMsrpMedia(sdp);
    assert.equal(media.length, 1);
    assert.deepEqual(
      [
        media[0]!.mediaIndex,
        media[0]!.proto,
        media[0]!.address,
        media[0]!.maxSize,
        media[0]!.setup,
        media[0]!.fileRange,
      ],
      [1, 'TCP/TLS/MSRP', '10.0.0.2', 65536, 'passive', { start: 1024 }],
    );
    assert.deepEqual(parseFileSelector('size:10 type:text/plain').size, 10);
  });

  it('moves the stream to the AS: port, path, the session c= when the stream is alone; other lines untouched', () => {
    const out = rewriteMsrpMedia(ALICE_OFFER, {
      path: ['msrp://192.0.2.5:2855/as1;tcp'],
      host: '192.0.2.5',
      port: 2855,
    });
    assert.equal(
      out,
      crlf([
        'v=0',
        'o=alice 2890844526 2890844527 IN IP4 alicepc.example.com',
        's=-',
        'c=IN IP4 192.0.2.5',
        't=0 0',
        'm=message 2855 TCP/MSRP *',
        'a=accept-types:text/plain',
        'a=path:msrp://192.0.2.5:2855/as1;tcp',
      ]),
    );
    assert.deepEqual(parseMsrpMedia(out)[0]!.path, ['msrp://192.0.2.5:2855/as1;tcp']);
  });

  it('gives the stream a c= of its own when other media share the session c=, sets a=setup, keeps LF line ends', () => {
    const sdp = [
      'v=0',
      'o=- 1 1 IN IP4 10.0.0.1',
      's=-',
      'c=IN IP4 10.0.0.1',
      't=0 0',
      'm=audio 4000 RTP/AVP 0',
      'm=message 7000 TCP/MSRP *',
      'i=chat',
      'a=path:msrp://10.0.0.1:7000/x;tcp',
      'a=setup:actpass',
      '',
    ].join('\n');
    const out = rewriteMsrpMedia(sdp, {
      path: ['msrp://[2001:db8::5]:2855/as2;tcp'],
      host: '2001:db8::5',
      port: 2855,
      setup: 'passive',
    });
    assert.equal(
      out,
      [
        'v=0',
        'o=- 1 1 IN IP4 10.0.0.1',
        's=-',
        'c=IN IP4 10.0.0.1',
        't=0 0',
        'm=audio 4000 RTP/AVP 0',
        'm=message 2855 TCP/MSRP *',
        'i=chat',
        'c=IN IP6 2001:db8::5',
        'a=path:msrp://[2001:db8::5]:2855/as2;tcp',
        'a=setup:passive',
        '',
      ].join('\n'),
    );
  });

  it('keeps the file-transfer attributes when the stream moves', () => {
    const out = rewriteMsrpMedia(FILE_OFFER, {
      path: ['msrp://192.0.2.5:2855/as3;tcp'],
      host: '192.0.2.5',
      port: 2855,
    });
    const [m] = parseMsrpMedia(out);
    assert.equal(m!.fileTransferId, 'vBnG916bdberum2fFEABR1FR3ExZMUrd');
    assert.equal(m!.fileSelector!.size, 32349);
    assert.equal(m!.port, 2855);
  });

  it('refuses to rewrite an SDP with no MSRP stream', () => {
    assert.throws(
      () =>
        rewriteMsrpMedia(crlf(['v=0', 'm=audio 4000 RTP/AVP 0']), { path: ['msrp://h:1/s;tcp'], host: 'h', port: 1 }),
      /no MSRP media/,
    );
  });
});
