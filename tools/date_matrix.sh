#!/usr/bin/env bash
# Runs the tests under faketime at each instant where date bugs hide: the 1st and 2nd of a month,
# last days, 29 February, both UK clock changes and 23:59 on New Year's Eve in London. The instants
# are those of tests/helpers/dates.ts (a test checks that the two lists agree), given in UTC.
#
#   tools/date_matrix.sh            the whole suite at 2027-01-02 10:00 (the issue's date), then the
#                                   date-sensitive files at every other instant
#   tools/date_matrix.sh --all      the whole suite at every instant (slow: a few minutes each)
#   tools/date_matrix.sh FILE...    these test files at every instant
#   tools/date_matrix.sh --at 'YYYY-MM-DD hh:mm:ss' [FILE...]
#                                   one instant (UTC): these files, or the date-sensitive ones
#
# The date-sensitive files are those that can meet the real clock: they start the program or a tool
# (Prometheus, openssl, Chromium, tar, systemd-analyze), start the fake Monzo or an exporter without
# the harness' clock, make data with the wall clock, or test the dates themselves. The rest run on an
# injected clock (tests/helpers/harness.ts), so the date cannot reach them; tests/date_matrix_test.ts
# checks that every file of the first kind is listed.
# Needs faketime (Debian: apt-get install -y faketime). Prometheus and promtool are Go programs, which
# read the clock without libc: they keep the real time, and the tests must (and do) cope with that.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# UTC; the same instants as tests/helpers/dates.ts.
INSTANTS=(
  "2027-01-01 00:01:00"
  "2027-01-02 10:00:00"
  "2027-04-30 23:01:00"
  "2027-06-30 22:59:00"
  "2028-02-29 12:00:00"
  "2028-02-29 23:59:00"
  "2027-03-28 00:30:00"
  "2027-03-28 01:30:00"
  "2027-10-31 00:30:00"
  "2027-10-31 01:30:00"
  "2027-12-31 23:59:00"
)
# The issue's date: the whole suite runs there in the default mode.
FULL_AT="2027-01-02 10:00:00"

DATE_SENSITIVE=(
  tests/alert_rules_test.ts
  tests/backfill_cli_test.ts
  tests/backfill_test.ts
  tests/budget_month_test.ts
  tests/bundle_test.ts
  tests/counting_start_test.ts
  tests/crash_test.ts
  tests/dashboard_test.ts
  tests/deploy_test.ts
  tests/e2e_browser_test.ts
  tests/e2e_history_test.ts
  tests/e2e_prometheus_test.ts
  tests/e2e_tls_test.ts
  tests/fake_monzo_test.ts
  tests/filesystem_test.ts
  tests/healthcheck_test.ts
  tests/instance_lock_test.ts
  tests/layout_test.ts
  tests/log_test.ts
  tests/login_timestamp_test.ts
  tests/main_test.ts
  tests/module_graph_test.ts
  tests/release_test.ts
  tests/scrape_formats_test.ts
  tests/server_limits_test.ts
  tests/special_files_test.ts
  tests/startup_test.ts
  tests/token_store_test.ts
  tests/transactions_test.ts
  tests/web_config_protection_test.ts
  tests/web_config_test.ts
)

say() { echo "[date_matrix] $*" >&2; }

# libfaketime, preloaded directly rather than through the faketime command: that command shares the
# faked clock between processes through a semaphore, and a test that kills a program (SIGKILL) while
# it holds the semaphore leaves every later process of the run waiting on it for ever. A fixed offset
# from the real clock needs nothing shared, and keeps every process of the run on one faked clock.
# ld.so expands $LIB (lib/x86_64-linux-gnu and the like), as the faketime command's own setting does.
# shellcheck disable=SC2016
LIBFAKETIME='/usr/$LIB/faketime/libfaketime.so.1'
if ! command -v faketime >/dev/null 2>&1; then
  say "faketime is not installed (Debian: apt-get install -y faketime)"
  exit 1
fi

mode=default
files=()
if [ "${1:-}" = "--at" ] && [ "$#" -ge 2 ]; then
  INSTANTS=("$2")
  mode=files
  shift 2
  files=("$@")
  if [ "${#files[@]}" -eq 0 ]; then files=("${DATE_SENSITIVE[@]}"); fi
elif [ "${1:-}" = "--all" ]; then
  mode=all
elif [ "$#" -gt 0 ]; then
  mode=files
  files=("$@")
fi

# Runs `deno test` on the given files (the whole suite when none) with the clock at $1 (UTC).
run_at() {
  local at="$1"
  shift
  local offset
  offset=$(($(date -u -d "$at" +%s) - $(date -u +%s)))
  say "$at UTC: deno test --allow-all ${*:-(the whole suite)}"
  # FAKETIME_SHARED goes, in case this runs under the faketime command itself.
  env -u FAKETIME_SHARED LD_PRELOAD="$LIBFAKETIME" FAKETIME="$(printf '%+d' "$offset")" deno test --allow-all "$@"
}

failed=()
for at in "${INSTANTS[@]}"; do
  case "$mode" in
    all) run_at "$at" || failed+=("$at (whole suite)") ;;
    files) run_at "$at" "${files[@]}" || failed+=("$at") ;;
    default)
      if [ "$at" = "$FULL_AT" ]; then
        run_at "$at" || failed+=("$at (whole suite)")
      else
        run_at "$at" "${DATE_SENSITIVE[@]}" || failed+=("$at")
      fi
      ;;
  esac
done

if [ "${#failed[@]}" -gt 0 ]; then
  say "failed at: ${failed[*]}"
  exit 1
fi
say "passed at every instant"
