#!/usr/bin/env bash
# Handshakes: connects/s on /ws with authentication off against on (`hubbub-bench
# handshakes`: connect, welcome, close, 32 workers), each measurement against a fresh
# release server, repeated and interleaved (off, on, then on, off, ...) in one run.
# Prints a Markdown table and the goal check: with a token checked (HS256, a token
# minted by `hubbub token` with a name and two room patterns) handshakes/s >= 0.9x
# without. How to read it: docs/benchmarks.md.
#
#   scripts/bench-handshakes.sh            # 5 repeats of 5 s (~1.5 min after the build)
#   BENCH_REPEATS=3 BENCH_DURATION=3 scripts/bench-handshakes.sh
#
# Settings from the environment: BENCH_REPEATS (5), BENCH_DURATION (s, 5),
# BENCH_WARMUP (s, 1), BENCH_WORKERS (32), BENCH_SERVER_CPUS, BENCH_CLIENT_CPUS
# (default 0 and 1), BENCH_OUT (default target/bench: handshakes.jsonl, handshakes.md,
# server logs). Needs python3 (the table and a secret) and, for pinning, taskset.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
OUT=${BENCH_OUT:-target/bench}
REPEATS=${BENCH_REPEATS:-5}
DURATION=${BENCH_DURATION:-5}
WARMUP=${BENCH_WARMUP:-1}
WORKERS=${BENCH_WORKERS:-32}
mkdir -p "$OUT/logs"

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

build_release_and_pin

# A secret for this run only, and a token like a real one: a user, a name, two rooms.
SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
TOKEN=$(AUTH_JWT_SECRET=$SECRET "$BIN/hubbub" token --sub bench-user --name Bench \
    --rooms 'lobby,team-*' --ttl 1h)

# start_server AUTH: a fresh server on a free port, checking tokens with this run's
# secret when AUTH=on; sets SERVER_PID and SERVER_URL.
start_server() {
    local auth=$1 port log
    port=$(free_port)
    log="$OUT/logs/handshakes-$auth-$port.log"
    local settings=(PORT="$port" RUST_LOG=warn "${LOAD_TEST_SETTINGS[@]}")
    [ "$auth" = on ] && settings+=(AUTH_JWT_SECRET="$SECRET")
    env "${settings[@]}" "${PIN_SERVER[@]}" "$BIN/hubbub" >"$log" 2>&1 &
    SERVER_PID=$!
    wait_until_listening "$port" "$log" "hubbub (auth $auth)"
}

trap stop_server EXIT

FAILURES=0
# measure AUTH: one `handshakes` run against a fresh server.
measure() {
    local auth=$1 token=()
    [ "$auth" = on ] && token=(--token "$TOKEN")
    start_server "$auth"
    if ! "${PIN_CLIENT[@]}" "$BIN/hubbub-bench" handshakes --workers "$WORKERS" \
        --duration "$DURATION" --warmup "$WARMUP" "${token[@]}" \
        --url "$SERVER_URL" --server-pid "$SERVER_PID" --label "handshakes-auth-$auth" \
        >>"$OUT/handshakes.jsonl"; then
        FAILURES=$((FAILURES + 1))
        echo "bench-handshakes: auth $auth reported errors (see above)" >&2
    fi
    stop_server
}

: >"$OUT/handshakes.jsonl"
started=$(date +%s)
echo "== $REPEATS repeat(s), ${DURATION}s measured after ${WARMUP}s, $WORKERS workers; $PINNING"
for repeat in $(seq 1 "$REPEATS"); do
    echo "== repeat $repeat of $REPEATS"
    if [ $((repeat % 2)) = 1 ]; then
        measure off
        measure on
    else
        measure on
        measure off
    fi
done
elapsed=$(($(date +%s) - started))

python3 - "$OUT/handshakes.jsonl" "$REPEATS" "$elapsed" "$PINNING" "$WORKERS" >"$OUT/handshakes.md" <<'PY'
import json, statistics, sys

path, repeats, elapsed, pinning, workers = sys.argv[1:]
runs = [json.loads(line) for line in open(path) if line.startswith("{")]

def values(label, field):
    return [r[field] for r in runs if r.get("label") == label and r.get(field) is not None and r["errors"] == 0]

def stats(label, field):
    v = values(label, field)
    return (statistics.median(v), min(v), max(v)) if v else None

def fmt(x):
    if x >= 1000: return f"{x:,.0f}"
    if x >= 100: return f"{x:.0f}"
    if x >= 10: return f"{x:.1f}"
    return f"{x:.2f}"

def cell(s):
    return "-" if s is None else f"{fmt(s[0])} ({fmt(s[1])}-{fmt(s[2])})"

print(f"`hubbub-bench handshakes`, {workers} workers, {repeats} interleaved repeat(s) per setting, "
      f"a fresh release server each; {pinning}; {len(runs)} runs in {elapsed} s. "
      "Medians (min-max).\n")
print("| | auth off | auth on (HS256 token) | on / off |")
print("|---|---|---|---|")
for what, field in (("connects/s (connect, welcome, close)", "handshakes_per_s"),
                    ("server CPU per handshake (us)", "cpu_us_per_handshake"),
                    ("connect-to-close p50 (us)", "p50_us"),
                    ("server CPU (%)", "server_cpu_pct"),
                    ("load generator CPU (%)", "client_cpu_pct")):
    off, on = stats("handshakes-auth-off", field), stats("handshakes-auth-on", field)
    ratio = f"{on[0] / off[0]:.2f}x" if on and off and off[0] else "-"
    print(f"| {what} | {cell(off)} | {cell(on)} | {ratio} |")
off, on = stats("handshakes-auth-off", "handshakes_per_s"), stats("handshakes-auth-on", "handshakes_per_s")
print()
if off and on:
    ratio = on[0] / off[0]
    print(f"Goal: connects/s with auth on >= 0.9x auth off: {ratio:.2f}x: {'met' if ratio >= 0.9 else '**missed**'}")
else:
    print("Goal: connects/s with auth on >= 0.9x auth off: not measured (a setting had no clean run)")
errors = sum(r["errors"] for r in runs)
print(f"Errors: {errors} in {len(runs)} run(s).")
PY
cat "$OUT/handshakes.md"
echo
echo "bench-handshakes: table in $OUT/handshakes.md, every run in $OUT/handshakes.jsonl, server logs in $OUT/logs/"
if [ "$FAILURES" -gt 0 ]; then
    echo "bench-handshakes: $FAILURES run(s) reported errors" >&2
    exit 1
fi
