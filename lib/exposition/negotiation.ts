// HTTP content negotiation for scrapes (RFC 9110 §12.5): which exposition format the scraper prefers
// by its `Accept` header, and whether it takes gzip by its `Accept-Encoding` header.
//
// A scraper sends the same headers on every scrape, so each answer is remembered per header value:
// parsing then costs a map lookup. The memory is bounded, since anyone can send any header.

/** The exposition formats the exporter serves. */
export type ExpositionFormat = "text" | "openmetrics";

/** Different header values remembered before the memory starts over. */
const MEMO_LIMIT = 64;

/** One element of a comma-separated list with parameters: `value;name=param;q=0.5`. */
interface ListElement {
  readonly value: string;
  readonly params: ReadonlyMap<string, string>;
  readonly q: number;
}

/** Parses a header such as `Accept` or `Accept-Encoding`; elements whose q-value is malformed are left out. */
function parseQualityList(header: string): ListElement[] {
  const elements: ListElement[] = [];
  for (const part of header.split(",")) {
    const [head, ...rest] = part.split(";");
    const value = head.trim().toLowerCase();
    if (value === "") continue;
    const params = new Map<string, string>();
    let q = 1;
    let valid = true;
    for (const param of rest) {
      const equals = param.indexOf("=");
      if (equals < 0) continue;
      const name = param.slice(0, equals).trim().toLowerCase();
      const raw = param.slice(equals + 1).trim();
      const text = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw;
      if (name === "q") {
        // RFC 9110 §12.4.2: 0 to 1 with up to three decimals.
        valid = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(text);
        q = Number(text);
      } else {
        params.set(name, text);
      }
    }
    if (valid) elements.push({ value, params, q });
  }
  return elements;
}

/** A media type we can send, and the version parameter that names its variant. */
interface Offer {
  readonly type: string;
  readonly subtype: string;
  readonly version: string;
}

const OFFERS: Readonly<Record<ExpositionFormat, Offer>> = {
  text: { type: "text", subtype: "plain", version: "0.0.4" },
  openmetrics: { type: "application", subtype: "openmetrics-text", version: "1.0.0" },
};

/**
 * The q-value the Accept list gives `offer`: that of its most specific matching range (RFC 9110
 * §12.5.1), 0 when none matches. A range with a version matches only that version; one without a
 * version matches any, which for OpenMetrics means 1.0.0, the version the spec says to default to.
 */
function qualityOf(ranges: readonly ListElement[], offer: Offer): number {
  let best = -1;
  let q = 0;
  for (const range of ranges) {
    const [type, subtype] = range.value.split("/", 2);
    let specificity: number;
    if (type === "*" && subtype === "*") specificity = 0;
    else if (type === offer.type && subtype === "*") specificity = 1;
    else if (type === offer.type && subtype === offer.subtype) {
      const version = range.params.get("version");
      if (version !== undefined && version !== offer.version) continue;
      specificity = version === undefined ? 2 : 3;
    } else continue;
    if (specificity > best) [best, q] = [specificity, range.q];
    else if (specificity === best) q = Math.max(q, range.q);
  }
  return q;
}

function decideFormat(accept: string): ExpositionFormat {
  const ranges = parseQualityList(accept);
  // A tie goes to the text format: it is the one every scraper reads.
  return qualityOf(ranges, OFFERS.openmetrics) > qualityOf(ranges, OFFERS.text) ? "openmetrics" : "text";
}

/**
 * Whether an `Accept-Encoding` list takes gzip rather than the plain bytes (RFC 9110 §12.5.3): gzip
 * (or x-gzip, or else `*`) has a q-value above 0, and not below that of an identity (or `*`) entry.
 */
function decideGzip(acceptEncoding: string): boolean {
  let gzip: number | null = null;
  let identity: number | null = null;
  let any: number | null = null;
  for (const { value, q } of parseQualityList(acceptEncoding)) {
    if (value === "gzip" || value === "x-gzip") gzip = Math.max(gzip ?? 0, q);
    else if (value === "identity") identity = Math.max(identity ?? 0, q);
    else if (value === "*") any = Math.max(any ?? 0, q);
  }
  const gzipQ = gzip ?? any ?? 0;
  const identityQ = identity ?? any;
  return gzipQ > 0 && (identityQ === null || gzipQ >= identityQ);
}

function memoized<T>(decide: (header: string) => T): (header: string) => T {
  const memo = new Map<string, T>();
  return (header) => {
    let answer = memo.get(header);
    if (answer === undefined) {
      if (memo.size >= MEMO_LIMIT) memo.clear();
      answer = decide(header);
      memo.set(header, answer);
    }
    return answer;
  };
}

const formatFor = memoized(decideFormat);
const gzipFor = memoized(decideGzip);

/** The format a scraper prefers by its `Accept` header: OpenMetrics 1.0.0 only when it ranks above text 0.0.4. */
export function preferredFormat(accept: string | null): ExpositionFormat {
  return accept === null ? "text" : formatFor(accept);
}

/** Whether a client's `Accept-Encoding` header takes a gzip body; no header means no. */
export function acceptsGzip(acceptEncoding: string | null): boolean {
  return acceptEncoding === null ? false : gzipFor(acceptEncoding);
}
