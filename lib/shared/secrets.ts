const encoder = new TextEncoder();

/** Compares two secrets in time that does not depend on where they differ, nor on their lengths. */
export async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  // Hashing first gives equal-length inputs, so not even the secret's length leaks.
  const [digestA, digestB] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  const x = new Uint8Array(digestA);
  const y = new Uint8Array(digestB);
  let difference = 0;
  for (let i = 0; i < x.length; i++) difference |= x[i] ^ y[i];
  return difference === 0;
}

/** A fresh random string of 32 bytes, base64url-encoded. */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
