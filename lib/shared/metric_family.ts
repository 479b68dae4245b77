/** Label name/value pairs of one sample, in the order they are printed. */
export type Labels = ReadonlyArray<readonly [string, string]>;

/** One sample of a family. */
export interface Sample {
  readonly labels: Labels;
  readonly value: number;
}

/** A metric family's name, type and help text, declared next to the code that fills it. */
export interface FamilyInfo {
  readonly name: string;
  readonly type: "gauge" | "counter";
  readonly help: string;
}

/** A metric family as its owner declares it: its description, and how its samples come from `S`, what the owner fills. */
export interface DeclaredFamily<S> extends FamilyInfo {
  samples(source: S): readonly Sample[];
}

/** The families declared over `source`, with their samples, in their declared order. */
export function fillFamilies<S>(declared: readonly DeclaredFamily<S>[], source: S): Family[] {
  return declared.map(({ name, type, help, samples }) => ({ name, type, help, samples: samples(source) }));
}

/** A metric family with its samples, ready to render. */
export interface Family extends FamilyInfo {
  readonly samples: readonly Sample[];
}

/** Help-text phrase for money families. */
export const MONEY = "in major units of the currency label (pounds for GBP)";

/** Help-text sentence for values that come from the last poll, as exporters that cache must say. */
export const FROM_LAST_POLL = "Served from the exporter's last poll of Monzo, not fetched per scrape.";

/** Minor units (pence) to major units (pounds); prints to the penny for any amount below about £10^13. */
export function major(minor: number): number {
  return minor / 100;
}
