import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig, SETTINGS } from '../../as/src/config/config.js';
import { applyPlan, planReload } from '../../as/src/config/reload-plan.js';
import { createLogger, setLogLevel } from '../../as/src/log/logger.js';
import { liveSet } from '../../as/src/util/live-set.js';

const SECRET = 'a-secret-of-enough-length';

describe('reload plan', () => {
  it('sorts changed settings by the reloadable mark of the settings table and applies only those', () => {
    const running = loadConfig({ env: { ISC_SECRET: SECRET } });
    const next = loadConfig({
      env: {
        ISC_SECRET: `${SECRET}-2`,
        IM_MAX_MESSAGE_BYTES: '100',
        LOG_LEVEL: 'debug',
        XDM_PORT: '9090',
        ISC_TRUSTED_ADDRESSES: '127.0.0.1,10.1.1.1',
      },
    });
    const trustedBefore = running.isc.trustedAddresses;
    const plan = planReload(running, next);
    assert.deepEqual(plan.applied.map((c) => c.path).sort(), [
      'im.maxMessageBytes',
      'isc.trustedAddresses',
      'log.level',
    ]);
    assert.deepEqual(plan.needRestart.map((c) => c.path).sort(), ['isc.secret', 'xdm.port']);
    assert.deepEqual(
      plan.needRestart.find((c) => c.path === 'isc.secret'),
      { path: 'isc.secret', env: 'ISC_SECRET', from: '***', to: '***' },
      'secrets never shown',
    );
    applyPlan(running, next, plan);
    assert.equal(running.im.maxMessageBytes, 100);
    assert.equal(running.log.level, 'debug');
    assert.equal(running.xdm.port, 8080, 'a restart setting is not applied');
    assert.notEqual(running.isc.trustedAddresses, trustedBefore, 'lists are replaced, not edited');
    assert.deepEqual(running.isc.trustedAddresses, ['127.0.0.1', '10.1.1.1']);
  });

  it('an unchanged configuration plans nothing', () => {
    const a = loadConfig({ env: { ISC_SECRET: SECRET } });
    assert.deepEqual(planReload(a, loadConfig({ env: { ISC_SECRET: SECRET } })), { applied: [], needRestart: [] });
  });

  it('marks no port, address, store or secret reloadable (those are bound at start)', () => {
    const marked = SETTINGS.filter((s) => s.reloadable).map((s) => s.path);
    for (const p of marked) assert.doesNotMatch(p, /port|host|secret|token|store\.|dataDir|cdrDir|node\./);
    assert.ok(
      marked.includes('log.level') && marked.includes('im.maxMessageBytes') && marked.includes('charging.rotateBytes'),
    );
  });
});

describe('log level reload', () => {
  it('reaches children and grandchildren created before the change', () => {
    const root = createLogger('info');
    const child = root.child({ svc: 'a' });
    const grandchild = child.child({ callId: 'x' });
    assert.equal(grandchild.isLevelEnabled('debug'), false);
    setLogLevel(root, 'debug');
    assert.equal(root.isLevelEnabled('debug'), true);
    assert.equal(child.isLevelEnabled('debug'), true);
    assert.equal(grandchild.isLevelEnabled('debug'), true);
    setLogLevel(root, 'warn');
    assert.equal(grandchild.isLevelEnabled('info'), false);
    assert.equal(root.child({}).level, 'warn', 'a child made after the change starts at the new level');
  });
});

describe('liveSet', () => {
  it('follows a replaced list and rebuilds only when the list object changes', () => {
    let list: readonly string[] = ['a'];
    const set = liveSet(() => list);
    const first = set();
    assert.ok(first.has('a'));
    assert.equal(set(), first, 'same list: same set');
    list = ['b'];
    assert.ok(set().has('b') && !set().has('a'));
    assert.ok(liveSet(['c'])().has('c'));
  });
});
