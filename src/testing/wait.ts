/**
 * The one way tests, e2e tests and benchmarks wait for something to happen: poll, with a bound.
 * A bound is not a measurement (benchmarks time with `elapsedMs`, never by the bound).
 */
import assert from 'node:assert/strict';

export interface WaitOptions {
  /** Give up after this many ms (default 20 s). */
  ms?: number;
  /** Poll every this many ms (default 200). */
  every?: number;
}

export interface Polled<T> {
  /** The last value `get` gave. */
  value: T;
  /** Whether `ok` held for it (false: the bound passed first). */
  ok: boolean;
  /** From the first call of `get` to the last. */
  elapsedMs: number;
}

const optionsOf = (options: number | WaitOptions): Required<WaitOptions> => {
  const { ms = 20_000, every = 200 } = typeof options === 'number' ? { ms: options } : options;
  return { ms, every };
};

/**
 * Calls `get` until `ok` holds for its value or `ms` pass, `every` ms apart; never throws for the
 * bound (benchmarks count a miss as a figure). Tests use the asserting forms below.
 */
export async function poll<T>(
  get: () => Promise<T> | T,
  ok: (v: T) => boolean,
  options: number | WaitOptions = {},
): Promise<Polled<T>> {
  const { ms, every } = optionsOf(options);
  const start = performance.now();
  let value = await get();
  while (!ok(value) && performance.now() - start < ms) {
    await new Promise((r) => setTimeout(r, every));
    value = await get();
  }
  return { value, ok: ok(value), elapsedMs: performance.now() - start };
}

/** Polls `get` until `ok` holds (or the bound passes); the last value, asserted with `what`. */
export async function waitFor<T>(
  get: () => Promise<T> | T,
  ok: (v: T) => boolean,
  what: string,
  options: number | WaitOptions = {},
): Promise<T> {
  const polled = await poll(get, ok, options);
  assert.ok(
    polled.ok,
    `${what}: not within ${optionsOf(options).ms} ms (last: ${JSON.stringify(polled.value)})`,
  );
  return polled.value;
}

/** Polls `get` until it gives something other than `undefined`; that value. */
export async function waitForValue<T>(
  get: () => Promise<T | undefined> | T | undefined,
  what: string,
  options: number | WaitOptions = {},
): Promise<T> {
  return (await waitFor(get, (v) => v !== undefined, what, options)) as T;
}

/** Polls `condition` until it holds (default: within 10 s, every 10 ms, for in-process events). */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  options: number | WaitOptions = 10_000,
  what = 'condition',
): Promise<void> {
  const { ms, every = 10 } = typeof options === 'number' ? { ms: options } : options;
  await waitFor(condition, (v) => v, what, { ms: ms ?? 10_000, every });
}
