import type { Clock } from "../shared/clock.ts";
import { randomToken } from "../shared/secrets.ts";

/** One-time OAuth `state` values that tie a callback to a login this exporter started. */
export interface LoginStates {
  /** Issues a fresh state value. */
  issue(): string;
  /** True once for a state issued less than the lifetime ago; false for any other value. */
  consume(state: string): boolean;
}

/** Options of {@link createLoginStates}. */
export interface LoginStatesOptions {
  readonly clock: Clock;
  /** How long a state stays valid; Monzo's magic link needs a few minutes. */
  readonly lifetimeMs?: number;
  /** Most states kept at once, so repeated /authorize visits cannot grow memory. */
  readonly capacity?: number;
}

/** Creates the store of pending login states. */
export function createLoginStates(options: LoginStatesOptions): LoginStates {
  const lifetime = options.lifetimeMs ?? 10 * 60_000;
  const capacity = options.capacity ?? 64;
  const expiries = new Map<string, number>();

  function prune(now: number): void {
    for (const [state, expiresAt] of expiries) {
      if (expiresAt <= now) expiries.delete(state);
    }
    // Maps iterate in insertion order, so the first keys are the oldest.
    for (const state of expiries.keys()) {
      if (expiries.size < capacity) break;
      expiries.delete(state);
    }
  }

  return {
    issue() {
      const now = options.clock.now();
      prune(now);
      const state = randomToken();
      expiries.set(state, now + lifetime);
      return state;
    },
    consume(state) {
      const expiresAt = expiries.get(state);
      if (expiresAt === undefined) return false;
      expiries.delete(state);
      return expiresAt > options.clock.now();
    },
  };
}
