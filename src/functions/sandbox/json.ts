/** The only way values cross the sandbox boundary: strict JSON text with a size cap. */

function strict(_key: string, value: unknown): unknown {
  const type = typeof value;
  if (type === 'function' || type === 'symbol') throw new TypeError(`a ${type} is not JSON`);
  return value;
}

/**
 * Serializes `value` as JSON, refusing functions, symbols, bigints, cycles and anything over
 * `limitBytes` (UTF-8). Throws an Error with a one-line message.
 */
export function toJsonText(value: unknown, limitBytes: number): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value, strict);
  } catch (e) {
    throw new Error(`not JSON: ${firstLine(e)}`, { cause: e });
  }
  if (text === undefined) throw new Error('not JSON: undefined');
  const bytes = Buffer.byteLength(text);
  if (bytes > limitBytes) throw new Error(`JSON of ${bytes} bytes exceeds the limit of ${limitBytes} bytes`);
  return text;
}

export function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n', 1)[0] ?? '';
}
