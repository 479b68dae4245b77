// A real Deno KV store that fails on demand: every read and write throws while `failing` is set, as
// a store whose disk went away or filled up would, and works again when it is cleared.

/** A store that fails on demand, and its switch. */
export interface FailingKv {
  readonly kv: Deno.Kv;
  /** Makes every later read and write throw (true) or work again (false); closing always works. */
  fail(on: boolean): void;
  /** How many operations threw. */
  readonly thrown: number;
}

/** Wraps `kv` so that its operations throw while {@link FailingKv.fail} is on. */
export function failingKv(kv: Deno.Kv): FailingKv {
  let failing = false;
  let thrown = 0;
  const wrapped = new Proxy(kv, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (failing && property !== "close") {
          thrown++;
          throw new Error("disk I/O error (the test's failing store)");
        }
        return (value as (...args: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return {
    kv: wrapped,
    fail: (on) => failing = on,
    get thrown() {
      return thrown;
    },
  };
}
