import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { Progress, progressLine } from '../../as/src/cli/progress.js';

describe('CLI progress', () => {
  it('a bar with count, percentage, rate and time left', () => {
    assert.equal(progressLine(250, 1000, 5000, 'users', 20), '[#####...............] 250/1000 users 25% 50/s eta 15s');
    assert.equal(progressLine(1000, 1000, 10000, 'users', 10), '[##########] 1000/1000 users 100% 100/s done');
    assert.equal(progressLine(0, 10, 0, 'users', 4), '[....] 0/10 users 0% 0/s eta ?');
  });

  it('not a terminal: one line per tenth of the way, none for small jobs', () => {
    const lines: string[] = [];
    const out = Object.assign(
      new Writable({
        write: (c, _e, cb) => {
          lines.push(String(c));
          cb();
        },
      }),
      { isTTY: false },
    ) as unknown as NodeJS.WriteStream;
    const p = new Progress(1000, 'users', out);
    for (let i = 1; i <= 1000; i++) p.update(i);
    assert.equal(lines.length, 10);
    assert.match(lines[9]!, /1000\/1000 users 100% .* done/);
    const small: string[] = [];
    const out2 = Object.assign(
      new Writable({
        write: (c, _e, cb) => {
          small.push(String(c));
          cb();
        },
      }),
      { isTTY: false },
    ) as unknown as NodeJS.WriteStream;
    const q = new Progress(5, 'users', out2);
    for (let i = 1; i <= 5; i++) q.update(i);
    assert.deepEqual(small, []);
  });
});
