import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../as/src/config/config.js';

const SECRET = 'a-secret-of-enough-length';

describe('config', () => {
  it('applies defaults, then the file, then the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'as.json');
    writeFileSync(file, JSON.stringify({ sip: { domain: 'file.example' }, isc: { port: 7100, secret: SECRET } }));
    const cfg = loadConfig({ file, env: { ISC_PORT: '7200' } });
    assert.equal(cfg.sip.domain, 'file.example');
    assert.equal(cfg.isc.port, 7200, 'environment wins over the file');
    assert.deepEqual(cfg.sip.domainAliases, ['127.0.0.1']);
    assert.equal(cfg.kamailio.transactionTimeoutMs, 5000);
    assert.match(cfg.node.id, /-7200$/, 'node id defaults to host-port');
  });

  it('reports every bad setting at once, naming the setting and its variable', () => {
    try {
      loadConfig({ env: { ISC_SECRET: 'short', ISC_PORT: '70000', LOG_LEVEL: 'loud', MONGODB_URI: 'postgres://x' } });
      assert.fail('should have thrown');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      const text = err.message;
      assert.match(text, /isc\.secret \(ISC_SECRET, from environment ISC_SECRET\): must be set, at least 16/);
      assert.match(text, /isc\.port \(ISC_PORT, from environment ISC_PORT\): must be a port 1-65535, got 70000/);
      assert.match(text, /log\.level \(LOG_LEVEL.*must be one of/);
      assert.match(text, /store\.mongodbUri \(MONGODB_URI.*must start with mongodb:\/\//);
      assert.equal(err.problems.length, 4);
    }
  });

  it('refuses settings that contradict each other, naming both', () => {
    assert.throws(
      () =>
        loadConfig({
          env: {
            ISC_SECRET: SECRET,
            PRESENCE_MIN_EXPIRES: '600',
            PRESENCE_MAX_EXPIRES: '300',
            PRESENCE_DEFAULT_EXPIRES: '400',
          },
        }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(
          err.message,
          /presence\.minExpires \(PRESENCE_MIN_EXPIRES\) is 600, above presence\.maxExpires \(PRESENCE_MAX_EXPIRES\) 300/,
        );
        assert.match(
          err.message,
          /presence\.defaultExpires \(PRESENCE_DEFAULT_EXPIRES\) is 400, above presence\.maxExpires/,
        );
        return true;
      },
    );
    assert.throws(
      () => loadConfig({ env: { ISC_SECRET: SECRET, IM_RETRY_BASE_SECONDS: '7200' } }),
      /im\.retryBaseSeconds \(IM_RETRY_BASE_SECONDS\) is 7200, above im\.retryMaxSeconds \(IM_RETRY_MAX_SECONDS\) 3600/,
    );
    assert.equal(
      loadConfig({ env: { ISC_SECRET: SECRET, PRESENCE_MIN_EXPIRES: '3600', PRESENCE_DEFAULT_EXPIRES: '3600' } })
        .presence.minExpires,
      3600,
      'equal values are fine',
    );
  });

  it('refuses unknown keys in the file (typos)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'as.json');
    writeFileSync(file, JSON.stringify({ isc: { secret: SECRET, prot: 1 } }));
    assert.throws(() => loadConfig({ file, env: {} }), /isc\.prot \(in .*\): unknown setting/);
  });

  it('names the file when it is not JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'as.json');
    writeFileSync(file, '{ nope');
    assert.throws(
      () => loadConfig({ file, env: {} }),
      new RegExp(`config file ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`),
    );
  });

  it('parses lists and booleans from the environment', () => {
    const cfg = loadConfig({
      env: { ISC_SECRET: SECRET, ISC_TRUSTED_ADDRESSES: '127.0.0.1, 10.0.0.5', CDR_FSYNC: 'yes' },
    });
    assert.deepEqual(cfg.isc.trustedAddresses, ['127.0.0.1', '10.0.0.5']);
    assert.equal(cfg.charging.fsync, true);
  });
});

describe('config: empty environment variables', () => {
  it('an empty variable empties a text setting but leaves numbers at their default', () => {
    const cfg = loadConfig({ env: { ISC_SECRET: SECRET, KAMAILIO_EVAPI_ADDR: '', ISC_PORT: '' } });
    assert.equal(cfg.kamailio.evapiAddress, '');
    assert.equal(cfg.isc.port, 7080);
  });
});

describe('Diameter Rf settings', () => {
  const SECRET_RF = 'x'.repeat(24);
  it('are off by default and read from the environment', () => {
    assert.equal(loadConfig({ env: { ISC_SECRET: SECRET_RF } }).charging.rf.peers, '');
    const cfg = loadConfig({
      env: {
        ISC_SECRET: SECRET_RF,
        CDR_RF_PEERS: 'cdf1.example.net:3868,127.0.0.1:3869',
        CDR_RF_DESTINATION_REALM: 'cdf.example.net',
      },
    });
    assert.equal(cfg.charging.rf.peers, 'cdf1.example.net:3868,127.0.0.1:3869');
    assert.equal(cfg.charging.rf.destinationRealm, 'cdf.example.net');
    assert.equal(cfg.charging.rf.watchdogSeconds, 30);
  });
  it('refuse a peer list that is not host:port', () => {
    assert.throws(
      () => loadConfig({ env: { ISC_SECRET: SECRET_RF, CDR_RF_PEERS: 'cdf1.example.net' } }),
      /charging\.rf\.peers \(CDR_RF_PEERS.*must be host:port/,
    );
    assert.throws(
      () => loadConfig({ env: { ISC_SECRET: SECRET_RF, CDR_RF_WATCHDOG_SECONDS: '1' } }),
      /charging\.rf\.watchdogSeconds/,
    );
  });
});

describe('inter-operator identifier settings', () => {
  it('are empty by default (the app writes the SIP domain), read from the environment, and refuse spaces', () => {
    const def = loadConfig({ env: { ISC_SECRET: SECRET } }).charging;
    assert.deepEqual([def.originatingIoi, def.terminatingIoi], ['', '']);
    const cfg = loadConfig({
      env: { ISC_SECRET: SECRET, CDR_ORIGINATING_IOI: 'home1.net', CDR_TERMINATING_IOI: 'partner.example' },
    }).charging;
    assert.deepEqual([cfg.originatingIoi, cfg.terminatingIoi], ['home1.net', 'partner.example']);
    assert.throws(
      () => loadConfig({ env: { ISC_SECRET: SECRET, CDR_TERMINATING_IOI: 'two words' } }),
      /charging\.terminatingIoi/,
    );
  });
});
