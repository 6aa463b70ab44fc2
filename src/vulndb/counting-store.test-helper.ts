/** An advisory store that counts its advisory lookups: the work a shared match cache saves. */
import type { AsyncAdvisoryStore } from './advisory-store.js';

export function countingLookups(store: AsyncAdvisoryStore): {
  store: AsyncAdvisoryStore;
  lookups: () => number;
} {
  let lookups = 0;
  const wrapped = new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop) as unknown;
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (prop === 'lookupMany' || prop === 'lookup') {
        return (...args: unknown[]) => {
          lookups += 1;
          return method.apply(target, args);
        };
      }
      return method.bind(target);
    },
  });
  return { store: wrapped, lookups: () => lookups };
}
