/** Values of the XML Schema datatypes our documents use (xs:token, boolean, dateTime, integers). Pure. */

/** XML Schema whitespace collapsing (xs:token). */
export function collapse(s: string): string {
  return s.replace(/[ \t\r\n]+/g, ' ').trim();
}

export function parseXsBoolean(s: string): boolean | undefined {
  const v = collapse(s);
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  return undefined;
}

const DATETIME_RE = /^(-?\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:\d{2})?$/;

/** xs:dateTime as an instant; a value without time zone is taken as UTC. Undefined when invalid. */
export function parseXsDateTime(s: string): Date | undefined {
  const v = collapse(s);
  const m = DATETIME_RE.exec(v);
  if (!m) return undefined;
  const [, , mo, d, h, mi, sec] = m;
  if (Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(d) > 31) return undefined;
  if (Number(h) > 24 || Number(mi) > 59 || Number(sec) >= 60) return undefined;
  const t = Date.parse(m[7] === undefined ? `${v}Z` : v);
  return Number.isNaN(t) ? undefined : new Date(t);
}

/** xs:nonNegativeInteger / xs:positiveInteger value, or undefined when not an integer. */
export function parseXsInteger(s: string): number | undefined {
  const v = collapse(s);
  if (!/^[+]?\d+$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}
