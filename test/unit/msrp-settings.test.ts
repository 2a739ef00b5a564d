/** The msrp.* settings: defaults, the host falling back to isc.host, TLS both or neither, --help. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, settingsHelp } from '../../as/src/config/config.js';

const SECRET = 'a-secret-of-sixteen-chars';

describe('msrp settings', () => {
  it('defaults: port 2855, 100 MiB, 30 min idle, interim records every 30 min, no TLS, the host of the ISC endpoint', () => {
    const cfg = loadConfig({ env: { ISC_SECRET: SECRET, ISC_HOST: '10.1.2.3' } });
    assert.deepEqual(cfg.msrp, {
      host: '10.1.2.3',
      port: 2855,
      maxMessageBytes: 100 * 1024 * 1024,
      maxFileBytes: 0,
      idleTimeoutSeconds: 1800,
      interimRecordSeconds: 1800,
      tlsCert: '',
      tlsKey: '',
    });
  });

  it('takes every setting from the environment', () => {
    const cfg = loadConfig({
      env: {
        ISC_SECRET: SECRET,
        MSRP_HOST: 'msrp.example.com',
        MSRP_PORT: '12855',
        MSRP_MAX_MESSAGE_BYTES: '1000',
        MSRP_MAX_FILE_BYTES: '500',
        MSRP_IDLE_TIMEOUT_SECONDS: '0',
        MSRP_INTERIM_RECORD_SECONDS: '60',
        MSRP_TLS_CERT: '/c.pem',
        MSRP_TLS_KEY: '/k.pem',
      },
    });
    assert.deepEqual(cfg.msrp, {
      host: 'msrp.example.com',
      port: 12855,
      maxMessageBytes: 1000,
      maxFileBytes: 500,
      idleTimeoutSeconds: 0,
      interimRecordSeconds: 60,
      tlsCert: '/c.pem',
      tlsKey: '/k.pem',
    });
  });

  it('refuses a certificate without its key, a port out of range, a zero size', () => {
    assert.throws(
      () => loadConfig({ env: { ISC_SECRET: SECRET, MSRP_TLS_CERT: '/c.pem' } }),
      (err: unknown) =>
        err instanceof ConfigError && /msrp\.tlsCert \(MSRP_TLS_CERT\) and msrp\.tlsKey/.test(err.message),
    );
    assert.throws(
      () => loadConfig({ env: { ISC_SECRET: SECRET, MSRP_PORT: '70000' } }),
      (err: unknown) => err instanceof ConfigError && /msrp\.port/.test(err.message),
    );
    assert.throws(
      () => loadConfig({ env: { ISC_SECRET: SECRET, MSRP_MAX_MESSAGE_BYTES: '0' } }),
      (err: unknown) => err instanceof ConfigError && /msrp\.maxMessageBytes/.test(err.message),
    );
  });

  it('lists them in --help', () => {
    const help = settingsHelp();
    for (const v of [
      'MSRP_HOST',
      'MSRP_PORT',
      'MSRP_MAX_MESSAGE_BYTES',
      'MSRP_MAX_FILE_BYTES',
      'MSRP_IDLE_TIMEOUT_SECONDS',
      'MSRP_INTERIM_RECORD_SECONDS',
      'MSRP_TLS_CERT',
      'MSRP_TLS_KEY',
    ])
      assert.match(help, new RegExp(v));
  });
});
