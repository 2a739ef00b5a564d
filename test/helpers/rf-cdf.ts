/**
 * The test CDF: Erlang/OTP's diameter application (Debian erlang-diameter) run by
 * test/fixtures/rf-cdf.escript. It answers CER, DWR and every ACR (2001) and logs each ACR.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = join(fileURLToPath(new URL('.', import.meta.url)), '../../../test/fixtures/rf-cdf.escript');

export interface LoggedAcr {
  type: 'EVENT_RECORD' | 'START_RECORD' | 'INTERIM_RECORD' | 'STOP_RECORD';
  number: number;
  /** The T flag was set. */
  retransmit: boolean;
  sessionId: string;
}

export class TestCdf {
  private child: ChildProcess | null = null;

  constructor(
    readonly port: number,
    readonly logFile: string,
  ) {}

  async start(): Promise<void> {
    const child = spawn('escript', [SCRIPT, String(this.port), this.logFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`test CDF did not start: ${out}`)), 20_000);
      const onData = (b: Buffer) => {
        out += b.toString();
        if (out.includes(`listening ${this.port}`)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`test CDF exited (${code}): ${out}`));
      });
    });
  }

  /** Kills the CDF at once (no DPR): what a crash looks like to the client. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async acrs(): Promise<LoggedAcr[]> {
    let text = '';
    try {
      text = await readFile(this.logFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return text
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => {
        const [type, number, t, ...rest] = l.split(' ');
        return {
          type: type as LoggedAcr['type'],
          number: Number(number),
          retransmit: t === '1',
          sessionId: rest.join(' '),
        };
      });
  }
}
