/**
 * A child process for the embedded store's multi-process tests (test/contract/sqlite-store.test.ts):
 * opens the store in argv[2] and runs one task, writing one line to stdout per acknowledged
 * operation, so the parent knows exactly what was acknowledged before it killed this process.
 *
 *   race <n> <f> n findOneAndUpdate $inc on one counter, 10 at a time, once the file <f> exists in
 *                the data directory (after printing "ready"); prints each "before" value
 *   write-loop   for ever: a document and a counter update in one turn; prints the document's number
 *                once both promises resolved (committed)
 */
import { existsSync } from 'node:fs';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';

const [dir, task, countArg, startArg] = process.argv.slice(2);
if (!dir || !task) throw new Error('usage: store-worker <dataDir> race <n> | write-loop');
const store = await SqliteStore.open(dir);

if (task === 'race') {
  const col = store.collection<{ _id: string; n: number }>('race');
  const total = Number(countArg);
  // both racers start together, however long each took to start: a barrier file the parent
  // writes once both said they are ready (a start time alone failed on a loaded machine)
  process.stdout.write('ready\n');
  const go = `${dir}/${startArg ?? 'go'}`;
  while (!existsSync(go)) await new Promise((resolve) => setTimeout(resolve, 2));
  for (let done = 0; done < total; done += 10) {
    const befores = await Promise.all(
      Array.from({ length: Math.min(10, total - done) }, () =>
        col.findOneAndUpdate({ _id: 'seq' }, { $inc: { n: 1 } }, { returnDocument: 'before' }),
      ),
    );
    process.stdout.write(befores.map((b) => `${b?.n}\n`).join(''));
    // SQLite's write lock is not fair: a racer that never pauses takes every batch while the
    // other sleeps in its busy handler. A pause between batches makes them interleave.
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await store.close();
} else if (task === 'write-loop') {
  const docs = store.collection('journal');
  const counter = store.collection('journal_counter');
  for (let i = 0; ; i++) {
    const doc = {
      _id: `w${i}`,
      i,
      payload: 'x'.repeat((i * 37) % 2000),
      nested: { i, at: new Date(1_700_000_000_000 + i) },
      list: [i, `${i}`],
    };
    await Promise.all([
      docs.insertOne(doc),
      counter.updateOne({ _id: 'count' }, { $inc: { n: 1 }, $set: { last: i } }, { upsert: true }),
    ]);
    process.stdout.write(`${i}\n`);
  }
} else {
  throw new Error(`unknown task ${task}`);
}
