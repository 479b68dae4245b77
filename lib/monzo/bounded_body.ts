import { err, ok, type Result } from "../shared/result.ts";

/** Why a body was not read: over the limit (declared or streamed), or the stream failed. */
export type BodyProblem =
  | { readonly reason: "too_large"; readonly declared: boolean }
  | { readonly reason: "read_failed"; readonly error: unknown };

/**
 * Reads a response body of at most `maxBytes`, refusing up front when `Content-Length` says more and
 * cancelling the stream as soon as more arrives, so an endless or huge answer costs at most the limit.
 */
export async function readBounded(response: Response, maxBytes: number): Promise<Result<Uint8Array, BodyProblem>> {
  const declared = declaredLength(response.headers.get("content-length"));
  if (declared !== undefined && declared > maxBytes) {
    await discardBody(response);
    return err({ reason: "too_large", declared: true });
  }
  if (response.body === null) return ok(new Uint8Array(0));
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await discard(reader);
        return err({ reason: "too_large", declared: false });
      }
      chunks.push(value);
    }
  } catch (error) {
    return err({ reason: "read_failed", error });
  } finally {
    reader.releaseLock();
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return ok(bytes);
}

/** A `Content-Length` of digits only; anything else is ignored and the streaming bound applies alone. */
function declaredLength(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/** Closes a body that will not be read, so the connection stops delivering it. */
export async function discardBody(response: Response): Promise<void> {
  await discard(response.body);
}

async function discard(stream: { cancel(): Promise<void> } | null): Promise<void> {
  // The answer is already refused; a stream that fails to cancel has nothing left to tell.
  await stream?.cancel().catch(() => undefined);
}
