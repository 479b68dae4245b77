import { type Family, type FamilyInfo, fillFamilies } from "../shared/metric_family.ts";
import { REQUEST_FAMILIES } from "../monzo/monzo_client.ts";
import type { ExpositionFormat } from "./negotiation.ts";
import { APPROVAL_FAMILIES, POLL_FAMILIES } from "../poll/poller.ts";
import { BUILD_FAMILIES, type Snapshot, type SnapshotState } from "./snapshot.ts";
import { LOGIN_FAMILIES } from "../logins/token_store.ts";

/** The content type of the Prometheus text format 0.0.4. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
/** The content type of OpenMetrics 1.0.0, as its spec spells it. */
export const OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/** Escapes a HELP text: backslash and newline. */
export function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabelValue(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** A sample value as both formats print it: `NaN`, `+Inf`, `-Inf`, or the shortest exact decimal. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value); // String(-0) is "0", so a zero spend never prints as -0
}

/**
 * Every family of the state, in the order they are served: the steps' families, then those the
 * exporter's parts declare beside the code that fills them. The exposition declares none itself.
 */
function familiesOf(state: SnapshotState): Family[] {
  return [
    ...state.steps.flatMap((step) => step.families),
    ...fillFamilies(POLL_FAMILIES, state),
    ...fillFamilies(REQUEST_FAMILIES, state.requests),
    ...fillFamilies(LOGIN_FAMILIES, state.logins),
    ...fillFamilies(APPROVAL_FAMILIES, state),
    ...fillFamilies(BUILD_FAMILIES, state.build),
  ];
}

/** A series as both formats name it: the sample name, then its labels, values escaped, in braces when there are any. */
export function seriesName(name: string, labels: Family["samples"][number]["labels"]): string {
  const pairs = labels.map(([label, value]) => `${label}="${escapeLabelValue(value)}"`).join(",");
  return `${name}${pairs ? `{${pairs}}` : ""}`;
}

function sampleLine(name: string, sample: Family["samples"][number]): string {
  return `${seriesName(name, sample.labels)} ${formatValue(sample.value)}`;
}

/** Renders the state in the Prometheus text format 0.0.4, as one flat string. */
export function renderExposition(state: SnapshotState): string {
  const lines: string[] = [];
  for (const family of familiesOf(state)) {
    if (family.samples.length === 0) continue;
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) lines.push(sampleLine(family.name, sample));
  }
  // join() builds one flat string; appending the final newline with + would make it a slow-to-send rope.
  lines.push("");
  return lines.join("\n");
}

/**
 * A family's name and type in OpenMetrics, whose samples keep the names they have in the text format
 * (so Prometheus stores the same series from either): a counter's family drops the `_total` its
 * samples carry, and a gauge named `_info` (always 1, by this exporter's conventions) is an info family.
 */
function openMetricsFamily(family: FamilyInfo): { name: string; type: string } {
  if (family.type === "counter" && family.name.endsWith("_total")) {
    return { name: family.name.slice(0, -"_total".length), type: "counter" };
  }
  if (family.type === "gauge" && family.name.endsWith("_info")) {
    return { name: family.name.slice(0, -"_info".length), type: "info" };
  }
  return { name: family.name, type: family.type };
}

/** A family's metadata lines in OpenMetrics: TYPE before HELP, HELP escaping double quotes too. */
export function openMetricsHeader(family: FamilyInfo): [string, string] {
  const { name, type } = openMetricsFamily(family);
  return [`# TYPE ${name} ${type}`, `# HELP ${name} ${escapeLabelValue(family.help)}`];
}

/**
 * Renders the state in OpenMetrics 1.0.0 text, as one flat string: TYPE before HELP, HELP escaping
 * double quotes too, and `# EOF` last.
 */
export function renderOpenMetrics(state: SnapshotState): string {
  const lines: string[] = [];
  for (const family of familiesOf(state)) {
    if (family.samples.length === 0) continue;
    lines.push(...openMetricsHeader(family));
    for (const sample of family.samples) lines.push(sampleLine(family.name, sample));
  }
  lines.push("# EOF", "");
  return lines.join("\n");
}

/** One form of the exposition as sent: its body and the headers that describe it. */
export interface ExpositionAnswer {
  readonly body: string | Uint8Array<ArrayBuffer>;
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * The exposition of the current snapshot in a format, gzipped or not; see {@link createExpositionCache}.
 * A gzipped form is a promise only while it is first being compressed.
 */
export interface ExpositionSource {
  (format: ExpositionFormat, gzip: false): ExpositionAnswer;
  (format: ExpositionFormat, gzip: boolean): ExpositionAnswer | Promise<ExpositionAnswer>;
}

/** Compresses a body with gzip. */
export type Gzip = (data: Uint8Array<ArrayBuffer>) => Uint8Array | Promise<Uint8Array>;

/** Options of {@link createExpositionCache}. */
export interface ExpositionCacheOptions {
  /** {@link gzipWithCompressionStream} by default (tests count the calls). */
  readonly gzip?: Gzip;
}

/**
 * Gzips with the web `CompressionStream`. Not node:zlib's `gzipSync`, though that is faster (once per
 * change, so it hardly matters): loading node:zlib kept more resident memory for the life of the
 * process (docs/performance.md has the figures).
 */
export async function gzipWithCompressionStream(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const compressed = new Blob([data]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(compressed).arrayBuffer());
}

// Every answer varies by both request headers, whichever form it is, so that caches keep them apart.
const VARY = "Accept, Accept-Encoding";
const RENDERERS: Readonly<Record<ExpositionFormat, (state: SnapshotState) => string>> = {
  text: renderExposition,
  openmetrics: renderOpenMetrics,
};
const CONTENT_TYPES: Readonly<Record<ExpositionFormat, string>> = {
  text: EXPOSITION_CONTENT_TYPE,
  openmetrics: OPENMETRICS_CONTENT_TYPE,
};

function newForms(): {
  plain: Partial<Record<ExpositionFormat, ExpositionAnswer>>;
  gzipped: Partial<Record<ExpositionFormat, ExpositionAnswer | Promise<ExpositionAnswer>>>;
} {
  return { plain: {}, gzipped: {} };
}

/**
 * Renders the snapshot in a format, and gzips that text, only on the first request for that form
 * after the snapshot changed; every other request gets the stored string or bytes.
 */
export function createExpositionCache(snapshot: Snapshot, options: ExpositionCacheOptions = {}): ExpositionSource {
  const gzip = options.gzip ?? gzipWithCompressionStream;
  const encoder = new TextEncoder();
  let rendered: SnapshotState | null = null;
  // The forms of the rendered state; a gzipped one is a promise only while it is being compressed.
  let forms = newForms();
  const plain = (state: SnapshotState, format: ExpositionFormat): ExpositionAnswer =>
    forms.plain[format] ??= {
      body: RENDERERS[format](state),
      headers: { "content-type": CONTENT_TYPES[format], vary: VARY },
    };
  const gzipped = (state: SnapshotState, format: ExpositionFormat): ExpositionAnswer | Promise<ExpositionAnswer> => {
    const known = forms.gzipped[format];
    if (known !== undefined) return known;
    const text = plain(state, format).body;
    const headers = { "content-type": CONTENT_TYPES[format], "content-encoding": "gzip", vary: VARY };
    // Should the snapshot change meanwhile, the result lands in this state's forms, not the new ones.
    const own = forms.gzipped;
    const pending = Promise.resolve(gzip(typeof text === "string" ? encoder.encode(text) : text)).then(
      // A copy of its own: a compressor's output may be a view into a larger shared buffer.
      (bytes): ExpositionAnswer => (own[format] = { body: new Uint8Array(bytes), headers }),
      (error) => {
        delete own[format]; // the next request tries again
        throw error;
      },
    );
    own[format] = pending;
    return pending;
  };
  // Plain forms are never promises, which the first overload of ExpositionSource says.
  return ((format: ExpositionFormat, gzip: boolean) => {
    const state = snapshot.state;
    if (state !== rendered) {
      rendered = state;
      forms = newForms();
    }
    return gzip ? gzipped(state, format) : plain(state, format);
  }) as ExpositionSource;
}
