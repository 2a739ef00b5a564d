import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoreOutages, isStoreOutage } from '../../as/src/store/store-fault.js';

const sysError = (code: string) => Object.assign(new Error(`${code}: failed`), { code });

describe('store faults: one rule for every engine', () => {
  it('takes a full, read-only or failing disk for an outage', () => {
    for (const code of ['ENOSPC', 'EROFS', 'EACCES', 'EIO', 'EDQUOT']) assert.ok(isStoreOutage(sysError(code)), code);
  });

  it('takes SQLite busy, full, read-only and I/O errors (extended codes too) for an outage', () => {
    for (const code of ['SQLITE_FULL', 'SQLITE_READONLY_DBMOVED', 'SQLITE_IOERR_WRITE', 'SQLITE_BUSY'])
      assert.ok(isStoreOutage(sysError(code)), code);
    assert.equal(isStoreOutage(sysError('SQLITE_CONSTRAINT_UNIQUE')), false);
  });

  it('takes MongoDB connection errors, a stepping-down primary and retryable writes for an outage', () => {
    const named = (name: string) => Object.assign(new Error(name), { name });
    assert.ok(isStoreOutage(named('MongoServerSelectionError')));
    assert.ok(isStoreOutage(named('MongoNetworkError')));
    assert.ok(
      isStoreOutage(
        Object.assign(new Error('not primary'), { name: 'MongoServerError', codeName: 'NotWritablePrimary' }),
      ),
    );
    assert.ok(
      isStoreOutage(Object.assign(new Error('x'), { name: 'MongoServerError', errorLabels: ['RetryableWriteError'] })),
    );
    assert.equal(isStoreOutage(Object.assign(new Error('dup'), { name: 'MongoServerError', code: 11000 })), false);
  });

  it('looks through causes, and leaves bugs and duplicates alone', () => {
    assert.ok(isStoreOutage(new Error('save failed', { cause: sysError('ENOSPC') })));
    assert.equal(isStoreOutage(new TypeError('x is undefined')), false);
    assert.equal(isStoreOutage(Object.assign(new Error('dup'), { name: 'DuplicateKeyError' })), false);
    assert.equal(isStoreOutage(undefined), false);
    assert.equal(isStoreOutage('ENOSPC'), false);
  });

  it('remembers an outage for /health for a while, not for ever', () => {
    let now = 1_000_000;
    const outages = new StoreOutages(() => now);
    assert.equal(outages.note(new Error('bug')), false);
    assert.equal(outages.recent(), undefined);
    assert.equal(outages.note(sysError('ENOSPC')), true);
    now += 3000;
    assert.deepEqual(outages.recent(), { message: 'ENOSPC: failed', secondsAgo: 3 });
    now += 8000;
    assert.equal(outages.recent(), undefined);
  });
});
