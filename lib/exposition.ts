import type { Snapshot, SnapshotState } from "./snapshot.ts";

/** The content type of the Prometheus text format 0.0.4. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Labels = ReadonlyArray<readonly [string, string]>;

interface Family {
  readonly name: string;
  readonly type: "gauge" | "counter";
  readonly help: string;
  readonly samples: ReadonlyArray<{ readonly labels: Labels; readonly value: number }>;
}

const FROM_LAST_POLL = "Served from the exporter's last poll of Monzo, not fetched per scrape.";
const MONEY = "in major units of the currency label (pounds for GBP)";

/** Escapes a HELP text: backslash and newline. */
export function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabelValue(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value); // String(-0) is "0", so a zero spend never prints as -0
}

/** Minor units (pence) to major units (pounds); prints to the penny for any amount below about £10^13. */
function major(minor: number): number {
  return minor / 100;
}

function families(state: SnapshotState): Family[] {
  const accountValues = state.accounts.flatMap((account) => {
    const figures = state.values.get(account.id);
    return figures ? [{ account, figures }] : [];
  });
  const perAccount = (pick: (balance: (typeof accountValues)[number]["figures"]["balance"]) => number) =>
    accountValues.map(({ account, figures }) => ({
      labels: [["account_id", account.id], ["currency", figures.balance.currency]] as const,
      value: major(pick(figures.balance)),
    }));
  const pots = accountValues.flatMap(({ account, figures }) =>
    figures.pots.map((pot) => ({
      pot,
      labels: [
        ["account_id", account.id],
        ["pot_id", pot.id],
        ["pot_name", pot.name],
        ["currency", pot.currency],
      ] as const,
    }))
  );
  const userLabel = (userId: string | null) => [["user_id", userId ?? "unknown"]] as const;
  const requests = [...state.requests].sort(([a], [b]) => a.localeCompare(b)).map(([key, count]) => {
    const [endpoint, code] = key.split(" ");
    return { labels: [["endpoint", endpoint], ["code", code]] as const, value: count };
  });
  const lastPoll = state.lastPoll;

  return [
    {
      name: "monzo_balance",
      type: "gauge",
      help: `Balance of the account ${MONEY}, without pots. ${FROM_LAST_POLL}`,
      samples: perAccount((b) => b.balance),
    },
    {
      name: "monzo_balance_including_flexible_savings",
      type: "gauge",
      help: `Balance of the account plus its flexible savings pots, ${MONEY}. ${FROM_LAST_POLL}`,
      samples: perAccount((b) => b.balance_including_flexible_savings),
    },
    {
      name: "monzo_total_balance",
      type: "gauge",
      help: `Balance of the account plus all its pots, ${MONEY}. ${FROM_LAST_POLL}`,
      samples: perAccount((b) => b.total_balance),
    },
    {
      name: "monzo_spend_today",
      type: "gauge",
      help: `Money spent from the account today (Monzo's day starts about 4 am), ${MONEY}; ` +
        `positive for spending, negative when more came back than went out. ${FROM_LAST_POLL}`,
      samples: perAccount((b) => -b.spend_today),
    },
    {
      name: "monzo_pot_balance",
      type: "gauge",
      help: `Balance of the pot ${MONEY}; deleted pots are left out. ${FROM_LAST_POLL}`,
      samples: pots.map(({ pot, labels }) => ({ labels, value: major(pot.balance) })),
    },
    {
      name: "monzo_pot_goal",
      type: "gauge",
      help: `Savings goal of the pot ${MONEY}, for pots that have one. ${FROM_LAST_POLL}`,
      samples: pots.filter(({ pot }) => (pot.goal_amount ?? 0) > 0)
        .map(({ pot, labels }) => ({ labels, value: major(pot.goal_amount ?? 0) })),
    },
    {
      name: "monzo_account_info",
      type: "gauge",
      help: "Details of each exported account as labels; always 1. From the last account discovery.",
      samples: state.accounts.map((account) => ({
        labels: [
          ["account_id", account.id],
          ["account_type", account.type],
          ["description", account.description],
          ["owners", account.owners.join(", ")],
        ],
        value: 1,
      })),
    },
    {
      name: "monzo_account_last_successful_poll_timestamp_seconds",
      type: "gauge",
      help: "Unix time at which the account's figures were last read from Monzo.",
      samples: accountValues.map(({ account, figures }) => ({
        labels: [["account_id", account.id]],
        value: figures.at / 1000,
      })),
    },
    {
      name: "monzo_up",
      type: "gauge",
      help: "1 when the last poll of Monzo fully succeeded, 0 when it did not (the figures then come " +
        "from earlier polls; see the exporter's page for the reason).",
      samples: [{ labels: [], value: lastPoll !== null && lastPoll.problems.length === 0 ? 1 : 0 }],
    },
    {
      name: "monzo_last_successful_poll_timestamp_seconds",
      type: "gauge",
      help: "Unix time at which the last fully successful poll of Monzo ended.",
      samples: state.lastSuccessAt === null ? [] : [{ labels: [], value: state.lastSuccessAt / 1000 }],
    },
    {
      name: "monzo_poll_duration_seconds",
      type: "gauge",
      help: "How long the last poll of Monzo took, in seconds.",
      samples: lastPoll === null ? [] : [{ labels: [], value: lastPoll.durationSeconds }],
    },
    {
      name: "monzo_api_requests_total",
      type: "counter",
      help: "Requests made to the Monzo API since start, by endpoint and HTTP status code " +
        "(or timeout, network or invalid_response when there was no usable answer).",
      samples: requests,
    },
    {
      name: "monzo_token_expiry_timestamp_seconds",
      type: "gauge",
      help: "Unix time at which the user's access token expires; it is refreshed 30 minutes before.",
      samples: state.logins.flatMap((login) =>
        login.loggedIn ? [{ labels: userLabel(login.userId), value: login.expiresAt / 1000 }] : []
      ),
    },
    {
      name: "monzo_logged_in",
      type: "gauge",
      help: "1 while the exporter holds a login for the user, 0 after Monzo ended it (log in again).",
      samples: state.logins.map((login) => ({ labels: userLabel(login.userId), value: login.loggedIn ? 1 : 0 })),
    },
    {
      name: "monzo_exporter_build_info",
      type: "gauge",
      help: "Version of the exporter, and mode demo when it serves a simulated Monzo; always 1.",
      samples: [{ labels: [["version", state.build.version], ["mode", state.build.mode]], value: 1 }],
    },
  ];
}

/** Renders the state in the Prometheus text format 0.0.4, as one flat string. */
export function renderExposition(state: SnapshotState): string {
  const lines: string[] = [];
  for (const family of families(state)) {
    if (family.samples.length === 0) continue;
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      const labels = sample.labels.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(",");
      lines.push(`${family.name}${labels ? `{${labels}}` : ""} ${formatValue(sample.value)}`);
    }
  }
  // join() builds one flat string; appending the final newline with + would make it a slow-to-send rope.
  lines.push("");
  return lines.join("\n");
}

/** Renders the snapshot when it has changed since the last call, and otherwise reuses the text. */
export function createExpositionCache(snapshot: Snapshot): () => string {
  let rendered: SnapshotState | null = null;
  let text = "";
  return () => {
    const state = snapshot.state;
    if (state !== rendered) {
      text = renderExposition(state);
      rendered = state;
    }
    return text;
  };
}
