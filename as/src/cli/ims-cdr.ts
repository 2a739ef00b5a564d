#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { readTs32297, type FileSummary } from '../charging/ts32297-reader.js';

const HELP = `ims-cdr - decode and check TS 32.297 CDR files of the IMS application server

Usage:
  ims-cdr FILE...            one JSON record per line, then a line {"summary": ...}
  ims-cdr --check FILE...    the structure only: a summary line per file
Options:
  --progress                 progress on stderr (on by default when stderr is a terminal)
  --help
Exit status: 0 well formed, 1 a structure fault (listed with its offset), 2 usage.
The records are TS 32.298 aSRecords (docs/charging.md).`;

async function main(argv: string[]): Promise<number> {
  const files: string[] = [];
  let check = false;
  let progress = process.stderr.isTTY === true;
  for (const a of argv) {
    if (a === '--help' || a === '-h') {
      process.stdout.write(HELP + '\n');
      return 0;
    } else if (a === '--check') check = true;
    else if (a === '--progress') progress = true;
    else if (a.startsWith('-')) {
      process.stderr.write(`ims-cdr: unknown option ${a}\n${HELP}\n`);
      return 2;
    } else files.push(a);
  }
  if (files.length === 0) {
    process.stderr.write(`ims-cdr: no file given\n${HELP}\n`);
    return 2;
  }
  let status = 0;
  for (const file of files) {
    let buf: Buffer;
    try {
      buf = await readFile(file);
    } catch (err) {
      process.stderr.write(`ims-cdr: ${file}: ${(err as Error).message}\n`);
      status = 1;
      continue;
    }
    let lastShown = 0;
    const out: string[] = [];
    const flush = () => {
      if (out.length) process.stdout.write(out.join(''));
      out.length = 0;
    };
    const summary: FileSummary = readTs32297(
      buf,
      check
        ? undefined
        : (r) => {
            out.push(JSON.stringify({ offset: r.offset, ...r.record }) + '\n');
            if (out.length >= 1000) flush();
          },
      progress
        ? (at) => {
            const pct = Math.floor((at / buf.length) * 100);
            if (pct >= lastShown + 5 || at === buf.length) {
              lastShown = pct;
              process.stderr.write(`\rims-cdr: ${file}: ${pct}% (${at} of ${buf.length} octets)`);
              if (at === buf.length) process.stderr.write('\n');
            }
          }
        : undefined,
    );
    flush();
    const { header, faults, ...rest } = summary;
    const line = {
      file,
      ...rest,
      ...(header
        ? {
            fileSequenceNumber: header.fileSequenceNumber,
            closureReason: header.closureReason,
            release: header.highRelease,
            nodeIp: header.nodeIp,
            lostCdrs: header.lostCdrs,
            lostCdrsExact: header.lostCdrsExact,
          }
        : {}),
      wellFormed: faults.length === 0,
      ...(faults.length ? { faults } : {}),
    };
    process.stdout.write(JSON.stringify({ summary: line }) + '\n');
    if (faults.length) status = 1;
  }
  return status;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`ims-cdr: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
