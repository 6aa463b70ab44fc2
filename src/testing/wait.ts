import assert from 'node:assert/strict';

/** Polls `get` every 200 ms until `ok` holds (or `ms` pass); the last value, asserted with `what`. */
export async function waitFor<T>(
  get: () => Promise<T> | T,
  ok: (v: T) => boolean,
  what: string,
  ms = 20_000,
): Promise<T> {
  const end = Date.now() + ms;
  let v = await get();
  while (!ok(v) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    v = await get();
  }
  assert.ok(ok(v), `${what}: not within ${ms} ms (last: ${JSON.stringify(v)})`);
  return v;
}
