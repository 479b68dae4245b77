// The customers, accounts, pots and transactions the fake Monzo serves. Amounts are pence, as Monzo sends them.

import { accountHistory, HOUSEHOLD, type Profile } from "./history.ts";
import { hash, mulberry32, objectId } from "./random.ts";
import {
  compareTransactions,
  type FakeTransaction,
  makeTransaction,
  monzoCounterparty,
  rfc3339,
} from "./transaction.ts";

/** A Monzo customer. */
export interface FakeUser {
  /** E.g. `user_00009AliceQx7Rk2Lm9WzT`. */
  id: string;
  name: string;
  /** Where the simulated magic link is "sent"; the login page asks for it. */
  email: string;
}

/** An account with its live balance and pots. */
export interface FakeAccount {
  /** E.g. `acc_00009AliceCurrent7Rk2Lm`. */
  id: string;
  /** E.g. `uk_retail`, `uk_retail_joint`, `uk_monzo_flex_backing_loan`. */
  type: string;
  description: string;
  closed: boolean;
  currency: string;
  /** User ids; a joint account has two. */
  owners: string[];
  /** RFC 3339 time. */
  created: string;
  /** Pence, negative when overdrawn. */
  balance: number;
  /** Pence since about 4 am, negative for spend. */
  spendToday: number;
  pots: FakePot[];
  /** Oldest first (by `created`, then id), as `/transactions` answers them. */
  transactions: FakeTransaction[];
}

/** A pot belonging to an account. */
export interface FakePot {
  /** E.g. `pot_00009AliceRainyDay0001`. */
  id: string;
  name: string;
  /** Pence. */
  balance: number;
  /** Pence, or null for a pot without a goal. */
  goalAmount: number | null;
  /** Deleted pots are still listed by `/pots`. */
  deleted: boolean;
  /** `default`, `flexible_savings`, `fixed_savings` or `instant_access`. */
  type: string;
  currency: string;
}

/** Everything the fake knows about its customers. */
export interface FakeData {
  users: FakeUser[];
  accounts: FakeAccount[];
}

const ALICE = "user_00009AliceQx7Rk2Lm9WzT";
const BOB = "user_00009BobHj4Nc8Pq3VsYeKd";

const DAY = 24 * 3_600_000;

/**
 * Days of made-up history in the demo (and by default): three years and a day, so that `--demo --backfill`
 * has years to show, with six UK clock changes and, three times in four, a 29 February.
 */
export const DEMO_HISTORY_DAYS = 3 * 365 + 1;

/**
 * Days of history for tests that need no years: a year, what the fake held before the demo's grew to
 * three, which keeps the suite's many imports quick.
 */
export const TEST_HISTORY_DAYS = 365;

/** Options of {@link householdData}. */
export interface HouseholdOptions {
  /**
   * Days of history up to `now`; the three current accounts were opened that many days before, so a
   * full import reaches back to their opening. Default {@link DEMO_HISTORY_DAYS}; tests that need no
   * years pass fewer.
   */
  historyDays?: number;
}

/**
 * The awkward household: a joint account, an overdraft, odd pot names, closed and flex accounts, and
 * seeded made-up history up to `now` (default the wall clock) on the three current accounts, from their
 * opening. The balances are the live figures and do not add up from the history.
 */
export function householdData(now: number = Date.now(), options: HouseholdOptions = {}): FakeData {
  const historyDays = options.historyDays ?? DEMO_HISTORY_DAYS;
  // The current accounts were opened on the history's first day, each at its own time of day.
  const opened = (timeOfDay: string) =>
    rfc3339(Math.floor(now / DAY) * DAY - historyDays * DAY + Date.parse(`1970-01-01T${timeOfDay}Z`));
  const pot = (id: string, name: string, balance: number, goal: number | null, type = "default", deleted = false) => ({
    id,
    name,
    balance,
    goalAmount: goal,
    deleted,
    type,
    currency: "GBP",
  });
  const data: FakeData = {
    users: [
      { id: ALICE, name: "Alice Example", email: "alice@example.com" },
      { id: BOB, name: "Bob Example", email: "bob@example.com" },
    ],
    accounts: [
      {
        id: "acc_00009AliceCurrent7Rk2Lm",
        type: "uk_retail",
        description: ALICE,
        closed: false,
        currency: "GBP",
        owners: [ALICE],
        created: opened("09:12:45.123"),
        balance: 123456,
        spendToday: -2345,
        pots: [
          pot("pot_00009AliceEmergency0001", "Emergency fund", 250000, 500000),
          pot("pot_00009AliceSavings000002", "Savings", 1000000, null, "flexible_savings"),
          pot("pot_00009AliceHoliday000003", 'Holiday "Lisbon" \\ 2027', 42050, 150000),
          pot("pot_00009AliceRainyDay00004", "Rainy\nday", 1500, null),
          pot("pot_00009AliceOldCar0000005", "Old car", 0, 300000, "default", true),
        ],
        transactions: [],
      },
      {
        id: "acc_00009JointHousehold4Tq8",
        type: "uk_retail_joint",
        description: `joint_${ALICE}_${BOB}`,
        closed: false,
        currency: "GBP",
        owners: [ALICE, BOB],
        created: opened("18:30:00.000"),
        balance: 56789,
        spendToday: -1200,
        pots: [pot("pot_00009JointBills0000001", "Bills", 30000, 60000)],
        transactions: [],
      },
      {
        id: "acc_00009AliceOldCurrentX2",
        type: "uk_retail",
        description: ALICE,
        closed: true,
        currency: "GBP",
        owners: [ALICE],
        created: "2017-01-20T10:00:00.000Z",
        balance: 0,
        spendToday: 0,
        pots: [],
        transactions: [],
      },
      {
        id: "acc_00009AliceFlex00009Hq3",
        type: "uk_monzo_flex",
        description: ALICE,
        closed: false,
        currency: "GBP",
        owners: [ALICE],
        created: "2022-02-14T12:00:00.000Z",
        balance: -15000,
        spendToday: 0,
        pots: [],
        transactions: [],
      },
      {
        id: "acc_00009AliceFlexLoan0Zp1",
        type: "uk_monzo_flex_backing_loan",
        description: ALICE,
        closed: false,
        currency: "GBP",
        owners: [ALICE],
        created: "2022-02-14T12:00:01.000Z",
        balance: 0,
        spendToday: 0,
        pots: [],
        transactions: [],
      },
      {
        id: "acc_00009BobCurrent000Wn5",
        type: "uk_retail",
        description: BOB,
        closed: false,
        currency: "GBP",
        owners: [BOB],
        created: opened("08:45:10.500"),
        balance: -4210,
        spendToday: -899,
        pots: [pot("pot_00009BobGigTickets0001", "Gig tickets", 12000, 20000)],
        transactions: [],
      },
    ],
  };
  const profiles: Record<string, Profile> = {
    acc_00009AliceCurrent7Rk2Lm: "alice",
    acc_00009JointHousehold4Tq8: "joint",
    acc_00009BobCurrent000Wn5: "bob",
  };
  for (const account of data.accounts) {
    const profile = profiles[account.id];
    if (!profile) continue;
    const pots = account.pots.filter((p) => !p.deleted).map((p) => p.id);
    account.transactions = accountHistory(profile, { ...account, pots }, now, historyDays);
  }
  matchAlicesPayments(data, now);
  return data;
}

/**
 * Bob's side of Alice's Monzo-to-Monzo payments to him: a credit a second later, naming her account.
 * Made here, once both histories exist, since each account's days draw from their own seeds.
 */
function matchAlicesPayments(data: FakeData, now: number): void {
  const alice = data.accounts.find((a) => a.id === HOUSEHOLD.alice.accountId);
  const bob = data.accounts.find((a) => a.id === HOUSEHOLD.bob.accountId);
  if (!alice || !bob) return;
  for (const paid of alice.transactions) {
    if (paid.scheme !== "p2p_payment" || paid.counterparty.account_id !== bob.id || paid.amount >= 0) continue;
    const at = Date.parse(paid.created) + 1_000;
    // As any history, nothing after now.
    if (at > now) continue;
    const created = rfc3339(at);
    bob.transactions.push(makeTransaction(bob.id, HOUSEHOLD.bob.userId, {
      id: objectId("tx", `received|${paid.id}`),
      created,
      settled: paid.settled === "" ? "" : created,
      amount: -paid.amount,
      description: HOUSEHOLD.alice.name,
      category: "transfers",
      categories: null,
      include_in_spending: false,
      scheme: "p2p_payment",
      counterparty: monzoCounterparty(HOUSEHOLD.alice),
      notes: paid.notes,
    }));
  }
  bob.transactions.sort(compareTransactions);
}

/** Options of {@link benchData}. */
export interface BenchOptions {
  /** Transactions per account, spread evenly over the `years` before `now`; default none. */
  transactions?: number;
  /** Years of history the transactions span; default 3. */
  years?: number;
  /** Default the wall clock. */
  now?: number;
}

const BENCH_CATEGORIES = ["groceries", "eating_out", "transport", "shopping", "bills", "entertainment"];

/** One user with `accounts` current accounts of `potsPerAccount` goal pots each, for load tests. */
export function benchData(accounts: number, potsPerAccount: number, options: BenchOptions = {}): FakeData {
  const userId = "user_00009BenchUser0000001";
  const pad = (n: number) => String(n).padStart(6, "0");
  const now = options.now ?? Date.now();
  const count = options.transactions ?? 0;
  const span = (options.years ?? 3) * 365 * 24 * 3_600_000;
  const transactions = (accountId: string): FakeTransaction[] => {
    const random = mulberry32(hash(accountId));
    return Array.from({ length: count }, (_, i) => {
      // Evenly spread, the newest a minute before now, with a little jitter that keeps the order.
      const created = now - 60_000 - Math.floor(((count - 1 - i) + random() * 0.5) * (span / count));
      const credit = i % 40 === 0;
      const category = credit ? "income" : BENCH_CATEGORIES[i % BENCH_CATEGORIES.length];
      return makeTransaction(accountId, userId, {
        id: `tx_00009Bench${accountId.slice(-6)}x${pad(i)}`,
        created: rfc3339(created),
        amount: credit ? 150000 : -(100 + Math.floor(random() * 9000)),
        description: credit ? "SALARY" : `SHOP ${i % 97}`,
        category,
      });
    });
  };
  return {
    users: [{ id: userId, name: "Bench User", email: "bench@example.com" }],
    accounts: Array.from({ length: accounts }, (_, a) => ({
      id: `acc_00009Bench${pad(a)}`,
      type: "uk_retail",
      description: userId,
      closed: false,
      currency: "GBP",
      owners: [userId],
      created: "2021-01-01T00:00:00.000Z",
      balance: 100000 + a * 137,
      spendToday: -(a % 50) * 10,
      pots: Array.from({ length: potsPerAccount }, (_, p) => ({
        id: `pot_00009Bench${pad(a)}x${pad(p)}`,
        name: `Pot ${p + 1} of account ${a + 1}`,
        balance: 1000 + p * 250,
        goalAmount: 50000 + p * 1000,
        deleted: false,
        type: "default",
        currency: "GBP",
      })),
      transactions: transactions(`acc_00009Bench${pad(a)}`),
    })),
  };
}

/**
 * `count` made-up live pots for tests of the bound on pots, as a hostile or buggy Monzo might list
 * them: pot `i` (from 0) has the id `pot_00009<tag><i, 6 digits>`, holds `i + 1` pence, every third has a goal of `2 × (i + 1)` pence, and its
 * name is padded to `nameLength` characters.
 */
export function manyPots(tag: string, count: number, nameLength = 0): FakePot[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `pot_00009${tag}${String(i).padStart(6, "0")}`,
    name: `Pot ${i}`.padEnd(nameLength, "x"),
    balance: i + 1,
    goalAmount: i % 3 === 0 ? 2 * (i + 1) : null,
    deleted: false,
    type: "default",
    currency: "GBP",
  }));
}

/**
 * `count` made-up open accounts of `userId` for tests of the bound on accounts: account `i` (from 0)
 * was opened `i + 1` minutes before `openedBefore` (so the ids run from newest to oldest), holds
 * `i + 1` pence and has no pots or transactions.
 */
export function manyAccounts(userId: string, count: number, openedBefore: number): FakeAccount[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `acc_00009Many${String(i).padStart(6, "0")}`,
    type: "uk_retail",
    description: userId,
    closed: false,
    currency: "GBP",
    owners: [userId],
    created: rfc3339(openedBefore - (i + 1) * 60_000),
    balance: i + 1,
    spendToday: 0,
    pots: [],
    transactions: [],
  }));
}
