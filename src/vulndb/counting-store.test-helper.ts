/** An advisory store that counts its calls: advisory lookups are the work a shared match cache saves. */
import type { AsyncAdvisoryStore } from './advisory-store.js';

export interface CountingStore {
  store: AsyncAdvisoryStore;
  /** `lookup` and `lookupMany` calls so far. */
  lookups(): number;
  /** Calls of one method so far. */
  calls(method: keyof AsyncAdvisoryStore): number;
}

export function countingLookups(store: AsyncAdvisoryStore): CountingStore {
  const counts = new Map<PropertyKey, number>();
  const wrapped = new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop) as unknown;
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        counts.set(prop, (counts.get(prop) ?? 0) + 1);
        return method.apply(target, args);
      };
    },
  });
  const calls = (method: keyof AsyncAdvisoryStore): number => counts.get(method) ?? 0;
  return { store: wrapped, lookups: () => calls('lookup') + calls('lookupMany'), calls };
}
