/**
 * Frames arriving from Kamailio checked against the published JSON Schemas
 * (schemas/isc-request.schema.json, schemas/isc-event.schema.json) with a compiled validator:
 * the schemas an admin reads are the ones the AS enforces, so a kamailio.cfg that drifts from
 * them is refused at the edge with a message naming the field, never half-read by a service.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import type { IscEvent, IscRequest } from './types.js';

function loadSchema(name: string): object {
  // build/as/src/isc -> project root (compiled), or as/src/isc -> root (sources)
  for (const rel of [`../../../../schemas/${name}`, `../../../schemas/${name}`]) {
    try {
      return JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as object;
    } catch {
      // next layout
    }
  }
  throw new Error(`schemas/${name} not found next to the AS`);
}

const ajv = new Ajv2020({ allErrors: false, strict: false });
const requestSchema: ValidateFunction = ajv.compile(loadSchema('isc-request.schema.json'));
const eventSchema: ValidateFunction = ajv.compile(loadSchema('isc-event.schema.json'));

export type FrameCheck<T> = { ok: true; value: T } | { ok: false; problem: string };

function problemOf(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (!e) return 'does not match its schema';
  return `${e.instancePath || '(frame)'} ${e.message ?? 'is invalid'}`;
}

export function checkIscRequest(frame: unknown): FrameCheck<IscRequest> {
  return requestSchema(frame)
    ? { ok: true, value: frame as IscRequest }
    : { ok: false, problem: problemOf(requestSchema.errors) };
}

export function checkIscEvent(frame: unknown): FrameCheck<IscEvent> {
  return eventSchema(frame)
    ? { ok: true, value: frame as IscEvent }
    : { ok: false, problem: problemOf(eventSchema.errors) };
}
