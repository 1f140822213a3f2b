// Text that came from agents or requests, on its way to a terminal or into Postgres: a stored ESC
// sequence must not drive the terminal of whoever reads it, and Postgres refuses NUL in text and
// jsonb (which would fail the step that stores it, again on every retry).

/** What a terminal acts on: C0 controls but tab and newline, DEL, and the C1 controls. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

const hex = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/**
 * Each control character shown as `\xNN` (ESC as `\x1b`), so the text reads the same and does
 * nothing; tabs and newlines stay, and a CRLF line end is a newline.
 */
export function printable(text: string): string {
  return text.replaceAll('\r\n', '\n').replace(CONTROL, hex);
}

/** Every NUL in the strings of a JSON value shown as `\x00`, so Postgres can store it. */
export function storable<T>(value: T): T {
  if (typeof value === 'string') return value.replaceAll('\u0000', '\\x00') as T;
  if (Array.isArray(value)) return value.map((v: unknown) => storable(v)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [storable(k), storable(v)])) as T;
  }
  return value;
}

/** A string with no NUL: what the API accepts for text it stores. */
export function hasNoNul(text: string): boolean {
  return !text.includes('\u0000');
}
