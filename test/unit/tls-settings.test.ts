/** The AS's TLS settings: the XCAP server's certificate and key (both or neither, read at start). */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../as/src/config/config.js';
import { readTlsCredentials } from '../../as/src/http/tls-credentials.js';

const SECRET = 'a-secret-of-enough-length';

describe('TLS settings', () => {
  it('takes the XCAP certificate and key from the environment, plain HTTP when neither is set', () => {
    const plain = loadConfig({ env: { ISC_SECRET: SECRET } });
    assert.equal(plain.xdm.tlsCert, '');
    assert.equal(plain.xdm.tlsKey, '');
    const tls = loadConfig({
      env: { ISC_SECRET: SECRET, XDM_TLS_CERT: '/etc/x/server.pem', XDM_TLS_KEY: '/etc/x/server.key' },
    });
    assert.equal(tls.xdm.tlsCert, '/etc/x/server.pem');
    assert.equal(tls.xdm.tlsKey, '/etc/x/server.key');
  });

  it('refuses a certificate without its key (and a key without its certificate)', () => {
    for (const env of [{ XDM_TLS_CERT: '/etc/x/server.pem' }, { XDM_TLS_KEY: '/etc/x/server.key' }]) {
      assert.throws(
        () => loadConfig({ env: { ISC_SECRET: SECRET, ...env } }),
        (err: unknown) =>
          err instanceof ConfigError &&
          /xdm\.tlsCert \(XDM_TLS_CERT\) and xdm\.tlsKey \(XDM_TLS_KEY\): set both/.test(err.message),
      );
    }
  });

  it('reads the PEM files at start and names the setting when one is missing or not PEM', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tls-'));
    const cert = join(dir, 'c.pem');
    const key = join(dir, 'k.pem');
    writeFileSync(cert, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    writeFileSync(key, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    assert.equal(readTlsCredentials('', '', 'xdm.tlsCert/xdm.tlsKey'), undefined);
    assert.match(readTlsCredentials(cert, key, 'xdm.tlsCert/xdm.tlsKey')!.cert, /BEGIN CERTIFICATE/);
    assert.throws(
      () => readTlsCredentials(join(dir, 'none.pem'), key, 'xdm.tlsCert/xdm.tlsKey'),
      /cannot read the certificate .*none\.pem \(xdm\.tlsCert\/xdm\.tlsKey\): ENOENT/,
    );
    assert.throws(() => readTlsCredentials(key, key, 'xdm.tlsCert/xdm.tlsKey'), /holds no PEM certificate/);
    assert.throws(() => readTlsCredentials(cert, cert, 'xdm.tlsCert/xdm.tlsKey'), /holds no PEM private key/);
  });
});
