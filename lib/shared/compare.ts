/**
 * Orders two strings by UTF-16 code unit, for sorts whose order must be the same on every machine
 * (`localeCompare` follows the locale): series, labels and keys print in a stable order.
 */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
