import type { Family } from "./metric_family.ts";
import { isHealthy, type Snapshot, type SnapshotState } from "./snapshot.ts";

/** The content type of the Prometheus text format 0.0.4. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

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

// The exporter's own families; each poll step declares its families beside the code that fills them.
function exporterFamilies(state: SnapshotState): Family[] {
  const userLabel = (userId: string | null) => [["user_id", userId ?? "unknown"]] as const;
  const requests = [...state.requests].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([key, count]) => {
    const [endpoint, code] = key.split(" ");
    return { labels: [["endpoint", endpoint], ["code", code]] as const, value: count };
  });
  const lastPoll = state.lastPoll;
  const ranSteps = state.steps.filter((step) => step.ok !== null);
  return [
    {
      name: "monzo_up",
      type: "gauge",
      help: "1 when the last poll of Monzo fully succeeded, 0 when it did not (the figures then come " +
        "from earlier polls; see the exporter's page for the reason).",
      samples: [{ labels: [], value: isHealthy(state) ? 1 : 0 }],
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
      name: "monzo_poll_step_success",
      type: "gauge",
      help: "1 when the step did all of its work in the last poll, 0 when part of it failed (its figures " +
        "then come from earlier polls).",
      samples: ranSteps.map((step) => ({ labels: [["step", step.name]], value: step.ok ? 1 : 0 })),
    },
    {
      name: "monzo_poll_step_last_success_timestamp_seconds",
      type: "gauge",
      help: "Unix time at which the step last did all of its work.",
      samples: state.steps.flatMap((step) =>
        step.lastSuccessAt === null ? [] : [{ labels: [["step", step.name]], value: step.lastSuccessAt / 1000 }]
      ),
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
      name: "monzo_login_timestamp_seconds",
      type: "gauge",
      help: "Unix time at which the user last authorised the exporter in the browser (refreshes keep it); " +
        "Monzo asks people to re-authorise about every 90 days. Absent for a login stored before the " +
        "exporter kept this time (log in again to get it).",
      samples: state.logins.flatMap((login) =>
        login.loggedIn && login.grantedAt !== undefined
          ? [{ labels: userLabel(login.userId), value: login.grantedAt / 1000 }]
          : []
      ),
    },
    {
      name: "monzo_login_awaiting_approval",
      type: "gauge",
      help: "1 when the last poll found the user's login waiting for approval in the Monzo app (or the approval " +
        "lapsed), 0 otherwise.",
      samples: state.logins.flatMap((login) =>
        login.loggedIn
          ? [{
            labels: userLabel(login.userId),
            value: state.users.get(login.userId ?? "")?.status === "awaiting_approval" ? 1 : 0,
          }]
          : []
      ),
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
  for (const family of [...state.steps.flatMap((step) => step.families), ...exporterFamilies(state)]) {
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
