import type { Clock } from "../shared/clock.ts";
import { isoTime } from "../shared/problems.ts";

/** Keeps a flood of like events from writing one log line each. */
export interface LogThrottle {
  /** Writes `message` through `write` if none was written this window, else counts it for the next line. */
  note(write: (message: string) => void, message: string): void;
}

/**
 * Writes the first of a run of like events at once, then at most one line per window, saying how
 * many were held back. The count is written with the next event after the window, so the tail of a
 * flood that stops is not written; the flood itself was.
 */
export function createLogThrottle(options: { readonly clock: Clock; readonly windowMs: number }): LogThrottle {
  let writtenAt: number | null = null;
  let held = 0;
  return {
    note(write, message) {
      const now = options.clock.now();
      if (writtenAt !== null && now - writtenAt < options.windowMs) {
        held++;
        return;
      }
      write(held > 0 ? `${message} (${held} more since ${isoTime(writtenAt ?? now)} not logged)` : message);
      writtenAt = now;
      held = 0;
    },
  };
}

/** Counts failed attempts in a window, for everyone at once. */
export interface AttemptLimiter {
  /** Milliseconds until attempts are taken again; 0 when one may be made now. */
  retryAfterMs(): number;
  /** Records a failed attempt. */
  fail(): void;
}

/**
 * After `limit` failures within `windowMs` of the first, refuses every attempt until the window ends,
 * so guessing cannot go faster than `limit` per window however many clients guess.
 */
export function createAttemptLimiter(
  options: { readonly clock: Clock; readonly limit: number; readonly windowMs: number },
): AttemptLimiter {
  let windowStart: number | null = null;
  let failures = 0;
  function current(now: number): void {
    if (windowStart !== null && now - windowStart >= options.windowMs) {
      windowStart = null;
      failures = 0;
    }
  }
  return {
    retryAfterMs() {
      const now = options.clock.now();
      current(now);
      return windowStart !== null && failures >= options.limit ? windowStart + options.windowMs - now : 0;
    },
    fail() {
      const now = options.clock.now();
      current(now);
      windowStart ??= now;
      failures++;
    },
  };
}
