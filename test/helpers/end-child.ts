import type { ChildProcess } from 'node:child_process';

/**
 * Ends a client process the way it ends cleanly (`ask`: a signal or a quit command, so it
 * un-REGISTERs and un-SUBSCRIBEs), then kills it if it is still there after `graceMs`.
 */
export async function endChild(
  child: ChildProcess | undefined,
  ask: (c: ChildProcess) => void,
  graceMs: number,
): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  ask(child);
  await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs))]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
}
