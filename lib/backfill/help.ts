import { balanceFamilies } from "../poll/balances_step.ts";
import { families, type TransactionsConfig } from "../poll/transactions_step.ts";
import { FROM_LAST_POLL } from "../shared/metric_family.ts";
import { BACKFILLED_FAMILIES, type BackfilledFamily } from "./openmetrics.ts";

/** What the backfill's HELP says in place of the live families' "from the last poll". */
export const BACKFILLED_NOTE =
  "Backfilled from the exporter's stored history, one sample a step; its counters count from the stored history start.";

/** The HELP of each backfilled family: the live family's, which says what it means, with {@link BACKFILLED_NOTE}. */
export function backfillHelp(config: TransactionsConfig): Record<BackfilledFamily, string> {
  const live = [...balanceFamilies, ...families(config)];
  const help = (name: BackfilledFamily): string => {
    const family = live.find((one) => one.name === name);
    if (family === undefined) throw new Error(`The poll declares no family ${name}`);
    return `${family.help.replace(FROM_LAST_POLL, "").trim()} ${BACKFILLED_NOTE}`;
  };
  return Object.fromEntries(BACKFILLED_FAMILIES.map((name) => [name, help(name)])) as Record<
    BackfilledFamily,
    string
  >;
}
