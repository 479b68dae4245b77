// Years of plausible, made-up history for the demo household, so that the demo's spending metrics, its
// dashboard and a backfill of it have something to show on day one. Each calendar day of each account
// draws from its own seeded PRNG (seeded by account and date), so the rows are the same on every run with
// the same "now"; rows after now are left out, and card payments of the last day or two are still pending.
// Days are UTC days, but the first seconds of each budget month (00:00 London on the 1st, the demo's
// month_start_day) hold the month's interest and plan fee, so every budget month has money in and
// money out from its first minute, whatever the date: the demo's dashboard is never empty on the 1st.

import { budgetMonth } from "../spending/budget_month.ts";
import { merchant, type ShopKey } from "./merchants.ts";
import { hash, mulberry32, objectId } from "./random.ts";
import {
  bankCounterparty,
  type FakeTransaction,
  type HouseholdParty,
  makeTransaction,
  monzoCounterparty,
  type NewTransaction,
  rfc3339,
} from "./transaction.ts";
import { compareText } from "../shared/compare.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Who and what a history is made for. */
export interface HistoryAccount {
  id: string;
  /** RFC 3339; no transaction is older. */
  created: string;
  /** Owners' user ids: card payments on a joint account come from either. */
  owners: string[];
  /** Ids of the account's pots, for pot moves. */
  pots: string[];
}

/** How an account spends: one of the household's three. */
export type Profile = "alice" | "joint" | "bob";

/** The history of `account` over the `days` days up to `now`, oldest first. */
export function accountHistory(
  profile: Profile,
  account: HistoryAccount,
  now: number,
  days: number,
): FakeTransaction[] {
  const rows: Timed[] = [];
  const today = Math.floor(now / DAY) * DAY;
  const created = Date.parse(account.created);
  for (let back = days; back >= 0; back--) {
    const dayStart = today - back * DAY;
    if (dayStart + DAY <= created) continue;
    const date = new Date(dayStart);
    const random = mulberry32(hash(`${account.id}|${date.toISOString().slice(0, 10)}`));
    const day = new Day(account, date, back, now, random, rows);
    PROFILES[profile](day);
  }
  monthStarts(account, Math.max(today - days * DAY, created), now, rows);
  // Sorting on the numbers kept beside each row, rather than parsing times, keeps the demo's start quick.
  rows.sort((a, b) => a.at - b.at || compareText(a.row.id, b.row.id));
  return rows.filter(({ at }) => at >= created && at <= now).map(({ row }) => row);
}

/** The demo's `month_start_day`: the history's month-start rows fall on it. */
export const DEMO_MONTH_START_DAY = 1;
// Both rows fall within this long of the budget month's start.
const MONTH_START_SPREAD_MS = 40_000;

/**
 * The interest paid and the plan's fee in the first seconds of every budget month that starts from
 * `from` to `now`, as Monzo books them overnight on the 1st: money in and money out from the start.
 */
function monthStarts(account: HistoryAccount, from: number, now: number, rows: Timed[]): void {
  const [owner] = account.owners;
  for (
    let month = budgetMonth(now, DEMO_MONTH_START_DAY);
    month.start >= from;
    month = budgetMonth(month.start - 1, DEMO_MONTH_START_DAY)
  ) {
    const random = mulberry32(hash(`${account.id}|month|${month.start}`));
    // Interest first, then the fee, both inside the month's first minute.
    const interestAt = month.start + 1_000 + Math.floor(random() * MONTH_START_SPREAD_MS / 2);
    const feeAt = month.start + MONTH_START_SPREAD_MS / 2 + Math.floor(random() * MONTH_START_SPREAD_MS / 2);
    const interest = makeTransaction(account.id, owner, {
      created: rfc3339(interestAt),
      amount: 40 + Math.floor(random() * 300),
      description: "Interest",
      category: "income",
      include_in_spending: false,
    });
    const fee = makeTransaction(account.id, owner, {
      created: rfc3339(feeAt),
      amount: -300,
      description: "Monzo Extra",
      category: "bills",
      include_in_spending: true,
    });
    rows.push({ at: interestAt, row: interest }, { at: feeAt, row: fee });
    // Months before 1970 cannot be asked for (budgetMonth refuses them), and no history reaches there.
    if (month.start <= DAY) break;
  }
}

/** A made row and its `created` time in ms. */
interface Timed {
  at: number;
  row: FakeTransaction;
}

const DECLINE_REASONS = ["INSUFFICIENT_FUNDS", "CARD_INACTIVE", "INVALID_CVC", "OTHER", "CARD_BLOCKED"];
// Rows older than this were written before Monzo sent include_in_spending and categories.
const OLD_ROW_DAYS = 300;

/** One day of one account: the helpers every profile writes its rows with. */
class Day {
  readonly dayOfWeek: number;
  readonly dayOfMonth: number;
  readonly month: number;
  /** Days before today (0 is today). */
  readonly back: number;
  /** Days since the epoch, for things that happen every n days. */
  readonly serial: number;
  readonly #account: HistoryAccount;
  readonly #start: number;
  readonly #now: number;
  readonly #rows: Timed[];
  readonly random: () => number;

  constructor(
    account: HistoryAccount,
    date: Date,
    back: number,
    now: number,
    random: () => number,
    rows: Timed[],
  ) {
    this.#account = account;
    this.#start = date.getTime();
    this.#now = now;
    this.#rows = rows;
    this.random = random;
    this.back = back;
    this.dayOfWeek = date.getUTCDay();
    this.dayOfMonth = date.getUTCDate();
    this.month = date.getUTCMonth();
    this.serial = Math.floor(this.#start / DAY);
  }

  /** Whether something with probability `p` happens today. */
  chance(p: number): boolean {
    return this.random() < p;
  }

  /** A whole number of pence between `low` and `high`. */
  pence(low: number, high: number): number {
    return low + Math.floor(this.random() * (high - low + 1));
  }

  /** One of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)];
  }

  /** Ids of the account's pots. */
  get pots(): string[] {
    return this.#account.pots;
  }

  /** Monday to Friday. */
  get weekday(): boolean {
    return this.dayOfWeek >= 1 && this.dayOfWeek <= 5;
  }

  /** The salary day: `dayOfMonth` of the month, or the Friday before when it falls on a weekend. */
  isPayday(dayOfMonth: number): boolean {
    const target = new Date(Date.UTC(new Date(this.#start).getUTCFullYear(), this.month, dayOfMonth));
    const shift = target.getUTCDay() === 6 ? 1 : target.getUTCDay() === 0 ? 2 : 0;
    return this.dayOfMonth === dayOfMonth - shift;
  }

  /** Whether today is the last weekday of its month. */
  get lastWeekdayOfMonth(): boolean {
    if (!this.weekday) return false;
    for (let ahead = 1; ahead <= 3; ahead++) {
      const next = new Date(this.#start + ahead * DAY);
      if (next.getUTCMonth() !== this.month) return true;
      if (next.getUTCDay() >= 1 && next.getUTCDay() <= 5) return false;
    }
    return false;
  }

  /** A time today around `hour` (UTC), with minutes and milliseconds drawn. */
  at(hour: number): number {
    return this.#start + hour * HOUR + Math.floor(this.random() * 59 * 60_000) + Math.floor(this.random() * 60_000);
  }

  /** A card payment; settles a day or so later (`settleDays` for hotels), and now and then is declined. */
  card(
    shop: ShopKey,
    amount: number,
    hour: number,
    extra: Partial<NewTransaction> & { settleDays?: number; declineRate?: number; userId?: string } = {},
  ): void {
    const { settleDays, declineRate = 0.012, userId, ...fields } = extra;
    const created = this.at(hour);
    const settles = created + (settleDays ?? 1) * DAY + Math.floor(this.random() * 16 * HOUR);
    const declined = this.chance(declineRate);
    const found = merchant(shop);
    const row: NewTransaction = {
      created: rfc3339(created),
      amount,
      description: found.name.toUpperCase().replaceAll(/[^A-Z0-9 ]/g, "") + " " + found.address.city.toUpperCase(),
      category: found.category,
      merchant: found,
      scheme: "mastercard",
      settled: declined || settles > this.#now ? "" : rfc3339(settles),
      ...fields,
    };
    if (declined) row.decline_reason = this.pick(DECLINE_REASONS);
    if (this.back > OLD_ROW_DAYS && !declined) {
      row.include_in_spending = undefined;
      row.categories = undefined;
    }
    this.add(row, userId);
  }

  /** A bank transfer or direct debit, settled at once, with a counterparty. */
  transfer(name: string, amount: number, hour: number, fields: Partial<NewTransaction> = {}): void {
    const digits = String(hash(name)).padStart(10, "0");
    this.add({
      created: rfc3339(this.at(hour)),
      amount,
      description: name,
      category: amount < 0 ? "bills" : "income",
      include_in_spending: false,
      scheme: "bacs",
      counterparty: { name, sort_code: "20" + digits.slice(0, 4), account_number: digits.slice(2, 10) },
      ...fields,
    });
  }

  /** Money moved into (`amount` < 0) or out of a pot: a savings move, not spending. */
  potMove(potId: string, amount: number, hour: number): void {
    const created = rfc3339(this.at(hour));
    this.add({
      created,
      amount,
      description: potId,
      category: "savings",
      include_in_spending: false,
      scheme: "uk_retail_pot",
      metadata: {
        pot_id: potId,
        pot_account_id: objectId("acc", potId),
        trigger: amount < 0 ? "user" : "withdrawal",
        external_id: objectId("pot_transfer", `${potId}|${created}`),
        user_id: this.#account.owners[0],
      },
    });
  }

  /** A row on another day (`days` later, e.g. a refund), drawn from today's PRNG. */
  later(days: number, hour: number, fields: Omit<NewTransaction, "created">): void {
    const created = this.at(hour) + days * DAY;
    this.add({ ...fields, created: rfc3339(created) });
  }

  /** Any other row, made by `userId` or one of the owners. */
  add(fields: NewTransaction, userId?: string): void {
    const owners = this.#account.owners;
    const by = userId ?? owners[Math.floor(this.random() * owners.length)];
    this.#rows.push({ at: Date.parse(fields.created), row: makeTransaction(this.#account.id, by, fields) });
  }
}

const ALICE_POTS = { emergency: 0, savings: 1 };

/**
 * The household's accounts, which pay one another: Alice's current account, the joint account (its
 * first owner's user id) and Bob's. Between them money moves Monzo to Monzo (`p2p_payment`, the other
 * side named by account id, user id and bank details) or by Faster Payments (sort code and account
 * number only): internal transfers, which no spending or income figure may count.
 */
export const HOUSEHOLD: Readonly<Record<Profile, HouseholdParty>> = {
  alice: { accountId: "acc_00009AliceCurrent7Rk2Lm", userId: "user_00009AliceQx7Rk2Lm9WzT", name: "Alice Example" },
  joint: { accountId: "acc_00009JointHousehold4Tq8", userId: "user_00009AliceQx7Rk2Lm9WzT", name: "Alice & Bob" },
  bob: { accountId: "acc_00009BobCurrent000Wn5", userId: "user_00009BobHj4Nc8Pq3VsYeKd", name: "Bob Example" },
};

/** What the joint account pays Bob back on the 15th (his share of the shopping he paid for), by Faster Payments. */
const JOINT_TO_BOB = 4500;

const PROFILES: Record<Profile, (day: Day) => void> = {
  alice(day) {
    const pots = day.pots;
    if (day.weekday && day.chance(0.85)) day.card("tfl", -day.pence(640, 880), 22);
    if (day.weekday && day.chance(0.45)) day.card("pret", -day.pence(395, 995), 8 + Math.floor(day.random() * 4));
    if (day.chance(0.3)) groceries(day, day.pick(["tesco", "sainsburys", "lidl"] as const), 800, 7500);
    if (day.dayOfWeek >= 5 && day.chance(0.35)) {
      day.card(day.pick(["dishoom", "nandos"] as const), -day.pence(2200, 6500), 19);
    }
    if (day.chance(0.08)) {
      const amount = day.pence(799, 4999);
      day.card("amazon", -amount, 13);
      // Some parcels go back: a refund, counted against shopping, a few days later.
      if (day.chance(0.2)) {
        const found = merchant("amazon");
        day.later(day.pence(3, 10), 10, {
          amount,
          description: "AMAZON REFUND",
          category: "shopping",
          include_in_spending: true,
          merchant: found,
          scheme: "mastercard",
        });
      }
    }
    if (day.chance(0.02)) day.card("uniqlo", -day.pence(1500, 6000), 15);
    if (day.chance(0.04)) day.card("cineworld", -day.pence(1290, 2580), 20, { category: "entertainment" });
    if (day.dayOfMonth === 14) day.card("netflix", -1099, 6);
    if (day.dayOfMonth === 3) day.card("spotify", -1199, 6);
    if (day.dayOfMonth === 1) day.card("puregym", -2499, 7);
    // The dog's food and toys, under a category Alice made up.
    if (day.serial % 14 === 5) day.card("petsAtHome", -day.pence(1299, 3899), 11, { category: "dog", notes: "🐶" });
    if (day.dayOfMonth === 8) day.transfer("VODAFONE LTD", -2600, 5);
    if (day.isPayday(25)) {
      day.transfer("ACME LTD", 285000, 6, { category: "income" });
      day.potMove(pots[ALICE_POTS.emergency], -40000, 9);
      day.potMove(pots[ALICE_POTS.savings], -25000, 9);
    }
    // Alice's share of the month's bills into the joint account, Monzo to Monzo.
    if (day.dayOfMonth === 26) {
      day.transfer("Alice & Bob", -120000, 8, {
        category: "transfers",
        scheme: "p2p_payment",
        counterparty: monzoCounterparty(HOUSEHOLD.joint),
      });
    }
    if (day.dayOfMonth === 10 && day.month % 3 === 0) day.potMove(pots[ALICE_POTS.savings], 15000, 12);
    if (day.dayOfMonth === 15 && day.month % 4 === 1) {
      day.add({
        created: rfc3339(day.at(16)),
        amount: 5000,
        description: "Top up",
        category: "mondo",
        is_load: true,
        include_in_spending: false,
      });
    }
    if (day.chance(0.04)) {
      day.add({
        created: rfc3339(day.at(18)),
        amount: -day.pence(800, 3500),
        description: "Bob Example",
        category: "transfers",
        categories: null,
        scheme: "p2p_payment",
        // Bob's matching credit is added with the household (data.ts): his day cannot see Alice's draws.
        counterparty: monzoCounterparty(HOUSEHOLD.bob),
        notes: day.pick(["Dinner", "Split with Bob", "Concert tickets"]),
      });
    }
    // A long weekend in Lisbon every year, paid in euros: local_amount is what the shop charged.
    const trip = day.back % 365;
    if (trip >= 66 && trip <= 70) {
      if (trip === 70) euro(day, "hotelLisboa", 18000, 15);
      euro(day, "pastelaria", day.pence(350, 1200), 9);
      euro(day, "pingoDoce", day.pence(800, 3000), 12);
      euro(day, "metroLisboa", day.pence(165, 640), 17);
    }
    // A hotel holds its authorisation for weeks before it settles.
    if (day.back === 4) day.card("premierInn", -18000, 15, { settleDays: 14, declineRate: 0 });
  },

  joint(day) {
    const [billsPot] = day.pots;
    // Alice's share Monzo to Monzo, Bob's by Faster Payments from his current account.
    if (day.dayOfMonth === 26) {
      day.transfer("Alice Example", 120000, 8, {
        category: "transfers",
        scheme: "p2p_payment",
        counterparty: monzoCounterparty(HOUSEHOLD.alice),
      });
      day.transfer("Bob Example", 120000, 9, {
        category: "transfers",
        scheme: "payport_faster_payments",
        counterparty: bankCounterparty(HOUSEHOLD.bob),
      });
    }
    if (day.dayOfMonth === 1) day.transfer("HALIFAX MORTGAGE", -145000, 5);
    if (day.dayOfMonth === 5) day.transfer("LB HACKNEY COUNCIL TAX", -18900, 5);
    // Energy costs more in winter.
    if (day.dayOfMonth === 12) {
      day.transfer("OCTOPUS ENERGY", -(8000 + [4, 3, 2, 1, 0, 0, 0, 0, 0, 1, 2, 3][day.month] * 1100), 5);
    }
    if (day.dayOfMonth === 18) day.transfer("THAMES WATER", -3800, 5);
    if (day.dayOfMonth === 20) day.transfer("HYPEROPTIC", -3000, 5);
    if (billsPot && day.dayOfMonth === 27) day.potMove(billsPot, -30000, 10);
    if (billsPot && day.dayOfMonth === 2) day.potMove(billsPot, 30000, 10);
    if (day.dayOfWeek === 6 && day.chance(0.8)) groceries(day, day.pick(["ocado", "waitrose"] as const), 6000, 14000);
    if (day.chance(0.12)) day.card("francoManca", -day.pence(2400, 5200), 19);
    if (day.chance(0.03)) day.card("boots", -day.pence(350, 2400), 12);
    if (day.chance(0.03)) {
      day.later(0, 14, {
        amount: day.pence(250, 1200),
        description: "OCADO REFUND",
        category: "groceries",
        include_in_spending: true,
        merchant: merchant("ocado"),
        scheme: "mastercard",
      });
    }
    // Last, so the rows drawn before it are the same with or without it.
    if (day.dayOfMonth === 15) {
      day.transfer("Bob Example", -JOINT_TO_BOB, 11, {
        category: "transfers",
        scheme: "payport_faster_payments",
        counterparty: bankCounterparty(HOUSEHOLD.bob),
      });
    }
  },

  bob(day) {
    const [gigPot] = day.pots;
    const declineRate = 0.03;
    if (day.lastWeekdayOfMonth) {
      day.transfer("GLOBEX PLC", 240000, 6, { category: "income" });
      if (gigPot) day.potMove(gigPot, -5000, 9);
    }
    if (day.dayOfMonth === 26) {
      day.transfer("Alice & Bob", -120000, 8, {
        category: "transfers",
        scheme: "payport_faster_payments",
        counterparty: bankCounterparty(HOUSEHOLD.joint),
      });
    }
    if (day.weekday && day.chance(0.8)) day.card("southern", -day.pence(1200, 1900), 7, { declineRate });
    if (day.weekday && day.chance(0.4)) day.card("greggs", -day.pence(250, 650), 12, { declineRate });
    if (day.chance(0.2)) day.card("coop", -day.pence(500, 2500), 18, { declineRate });
    if (day.dayOfWeek >= 5 && day.chance(0.4)) day.card("pub", -day.pence(1200, 4500), 21, { declineRate });
    if (day.dayOfMonth === 3) day.card("spotify", -1199, 6);
    if (day.dayOfMonth === 22 && day.chance(0.7)) {
      const amount = day.pence(3500, 9000);
      day.card("ticketmaster", -amount, 10, { declineRate });
      if (day.chance(0.15)) {
        day.later(day.pence(5, 20), 11, {
          amount,
          description: "TICKETMASTER REFUND",
          category: "entertainment",
          include_in_spending: true,
          merchant: merchant("ticketmaster"),
          scheme: "mastercard",
        });
      }
    }
    if (day.chance(0.04)) day.card("steam", -day.pence(499, 3999), 22, { declineRate });
    // What is left of the salary goes to savings elsewhere, so the balance does not climb year after year
    // (a backfill shows it). Last, so the rows drawn before it are the same with or without it.
    if (day.lastWeekdayOfMonth) {
      day.transfer("VANGUARD ISA", -50000, 10, { category: "savings", scheme: "payport_faster_payments" });
    }
    // The joint account's payment on the 15th, arriving by Faster Payments. Last, after it too.
    if (day.dayOfMonth === 15) {
      day.transfer("Alice & Bob", JOINT_TO_BOB, 11, {
        category: "transfers",
        scheme: "payport_faster_payments",
        counterparty: bankCounterparty(HOUSEHOLD.joint),
      });
    }
  },
};

/** A supermarket shop; big ones are sometimes split between groceries and household shopping. */
function groceries(day: Day, shop: ShopKey, low: number, high: number): void {
  const amount = -day.pence(low, high);
  if (amount < -4500 && day.chance(0.35)) {
    const food = Math.round(amount * 0.7);
    day.card(shop, amount, 18, { categories: { groceries: food, shopping: amount - food } });
  } else {
    day.card(shop, amount, 18);
  }
}

/** A card payment abroad of `euroCents`, charged in pounds at a rate that moves a little. */
function euro(day: Day, shop: ShopKey, euroCents: number, hour: number): void {
  const rate = 0.84 + day.random() * 0.04;
  day.card(shop, -Math.round(euroCents * rate), hour, { local_amount: -euroCents, local_currency: "EUR" });
}
