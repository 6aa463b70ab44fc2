/**
 * Plain-text table layout for terminal output. Cell text comes from the scanned filesystem (package
 * names, versions, paths), which an attacker controls: control and bidi-override characters are
 * replaced so that a crafted name cannot move the cursor, recolour, clear or reorder the report.
 */

// C0/C1 controls and DEL, plus the Unicode bidi embeddings/overrides/isolates and marks.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/** `text` with every unsafe character shown as a visible `\u{…}` escape. */
export function sanitizeCell(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u{${c.codePointAt(0)?.toString(16) ?? ''}}`);
}

/** Width in terminal columns, counting one per code point (good enough for package data). */
function widthOf(text: string): number {
  return [...text].length;
}

/** `text` cut to `max` columns, ending in `…` when cut. */
export function truncate(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, Math.max(0, max - 1)).join('')}…`;
}

export interface Column {
  header: string;
  /** Cells longer than this are truncated; omit for columns that must stay whole (ids). */
  max?: number;
  /** Decorates a padded cell (colour); must not change its visible width. */
  style?: (padded: string, raw: string) => string;
}

/** Rows laid out under a header, columns two spaces apart, widths fitted to the content. */
export function renderTable(columns: readonly Column[], rows: readonly string[][]): string[] {
  const cells = rows.map((row) =>
    columns.map((col, i) => {
      const safe = sanitizeCell(row[i] ?? '');
      return col.max === undefined ? safe : truncate(safe, col.max);
    }),
  );
  const widths = columns.map((col, i) =>
    Math.max(widthOf(col.header), ...cells.map((row) => widthOf(row[i] ?? ''))),
  );
  const line = (row: string[], styled: boolean): string =>
    row
      .map((cell, i) => {
        const last = i === row.length - 1;
        const padded = last ? cell : cell + ' '.repeat((widths[i] ?? 0) - widthOf(cell));
        const style = columns[i]?.style;
        return styled && style ? style(padded, cell) : padded;
      })
      .join('  ')
      .trimEnd();
  const header = line(
    columns.map((c) => c.header),
    false,
  );
  const rule = widths.map((w) => '─'.repeat(w)).join('  ');
  return [header, rule, ...cells.map((row) => line(row, true))];
}
