/**
 * Reading a TS 32.297 file of aSRecords (pure): every record with its offset, and every
 * structure fault found on the way (header lengths and counts, CDR header fields, BER, order
 * of the sequence numbers). What `ims-cdr` prints and checks.
 */

import { decodeAsRecord, type DecodedAsRecord } from './as-record-decode.js';
import { FORMAT_BER, TS_32260, parseCdrHeader, parseFileHeader, type ParsedFileHeader } from './ts32297-format.js';

export interface FileFault {
  offset: number;
  message: string;
}

export interface ReadRecord {
  offset: number;
  record: DecodedAsRecord;
}

export interface FileSummary {
  header?: ParsedFileHeader;
  count: number;
  firstTime?: string;
  lastTime?: string;
  causes: Record<string, number>;
  firstSeq?: number;
  lastSeq?: number;
  faults: FileFault[];
}

/**
 * Walks the file, calling `onRecord` for each record and `onProgress` with the offset reached;
 * returns the summary with every fault (an empty list: the file is well formed).
 */
export function readTs32297(
  buf: Buffer,
  onRecord?: (r: ReadRecord) => void,
  onProgress?: (offset: number) => void,
): FileSummary {
  const summary: FileSummary = { count: 0, causes: {}, faults: [] };
  const fault = (offset: number, message: string) => summary.faults.push({ offset, message });
  let header: ParsedFileHeader;
  try {
    header = parseFileHeader(buf);
  } catch (err) {
    fault(0, (err as Error).message);
    return summary;
  }
  summary.header = header;
  if (header.fileLength !== buf.length)
    fault(0, `file header says ${header.fileLength} octets, the file has ${buf.length}`);
  let at = header.headerLength;
  while (at < buf.length) {
    const h = parseCdrHeader(buf, at);
    if (!h) {
      fault(at, 'truncated CDR header');
      break;
    }
    const start = at + h.headerLength;
    if (start + h.length > buf.length) {
      fault(at, `CDR of ${h.length} octets runs past the end of the file`);
      break;
    }
    if (h.format !== FORMAT_BER) fault(at, `data record format ${h.format}, not BER (1)`);
    if (h.tsNumber !== TS_32260) fault(at, `TS number code ${h.tsNumber}, not TS 32.260 (9)`);
    try {
      const record = decodeAsRecord(buf, start, start + h.length);
      if (readEnd(buf, start) !== start + h.length) fault(start, 'CDR length and BER length differ');
      summary.count++;
      const seq = record.localRecordSequenceNumber;
      if (typeof seq === 'number') {
        if (summary.lastSeq !== undefined && seq <= summary.lastSeq)
          fault(start, `localRecordSequenceNumber ${seq} after ${summary.lastSeq}`);
        summary.firstSeq ??= seq;
        summary.lastSeq = seq;
      } else {
        fault(start, 'record without localRecordSequenceNumber');
      }
      const t = (record.recordClosureTime ?? record.recordOpeningTime) as string | undefined;
      if (t !== undefined) {
        if (summary.firstTime === undefined || t < summary.firstTime) summary.firstTime = t;
        if (summary.lastTime === undefined || t > summary.lastTime) summary.lastTime = t;
      }
      const cause = String(record.causeForRecordClosing ?? 'none');
      summary.causes[cause] = (summary.causes[cause] ?? 0) + 1;
      onRecord?.({ offset: start, record });
    } catch (err) {
      fault(start, (err as Error).message);
    }
    at = start + h.length;
    onProgress?.(at);
  }
  if (header.cdrCount !== summary.count)
    fault(18, `file header counts ${header.cdrCount} CDRs, the file holds ${summary.count}`);
  return summary;
}

function readEnd(buf: Buffer, at: number): number {
  // identifier (low or high tag form) then the length octets
  let p = at + 1;
  if ((buf[at]! & 0x1f) === 0x1f) while (buf[p++]! & 0x80);
  const l0 = buf[p++]!;
  let len = l0;
  if (l0 & 0x80) {
    len = 0;
    for (let i = 0; i < (l0 & 0x7f); i++) len = len * 256 + buf[p++]!;
  }
  return p + len;
}
