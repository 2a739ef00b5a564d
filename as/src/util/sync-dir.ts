import { promises as fsp } from 'node:fs';

/** fsyncs a directory, so a file created or renamed in it survives a crash; a no-op where that cannot be done. */
export async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // some platforms cannot fsync a directory; the file data itself is synced
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
