#!/usr/bin/env bash
# Big rooms: a join storm and a leave storm into one room of N members (`hubbub-bench
# joins`), for N in 1000 2000 4000 8000, each against a fresh server; with BENCH_BASELINE
# also against an earlier build, interleaved. Prints a Markdown table and the goal check:
# server CPU per join at 8000 <= 1.5x at 1000, peak RSS < 300 MiB at 8000, no member
# closed or reset. How the figures are taken: bench/src/joins.rs, docs/benchmarks.md.
#
#   scripts/bench-rooms.sh
#   BENCH_BASELINE=/tmp/base/target/release BENCH_ROOM_SIZES="1000 4000" scripts/bench-rooms.sh
#
# Settings from the environment:
#   BENCH_ROOM_SIZES (default "1000 2000 4000 8000"),
#   BENCH_ROOM_JOINS (default 8000: a size below it runs ceil(8000/N) rounds, as CPU time
#     comes in 10 ms ticks), BENCH_ROOM_TIMEOUT (s per storm, default 900; a run is
#     killed after 3 times that), BENCH_SERVER_CPUS, BENCH_CLIENT_CPUS (default 0 and 1),
#   BENCH_OUT (default target/bench: rooms.jsonl, rooms.md, server logs),
#   BENCH_BASELINE (a folder with a release `hubbub` from an earlier commit; before big
#     rooms, 8000 takes minutes).
# Needs python3 (the table) and, for pinning, taskset (util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
OUT=${BENCH_OUT:-target/bench}
SIZES=${BENCH_ROOM_SIZES:-1000 2000 4000 8000}
JOINS=${BENCH_ROOM_JOINS:-8000}
STORM_TIMEOUT=${BENCH_ROOM_TIMEOUT:-900}
BASELINE=${BENCH_BASELINE:-}
mkdir -p "$OUT/logs"
if [ -n "$BASELINE" ] && [ ! -x "$BASELINE/hubbub" ]; then
    echo "bench-rooms: BENCH_BASELINE=$BASELINE holds no hubbub binary" >&2
    exit 2
fi

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

build_release_and_pin
# Every member is a file descriptor on both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# start_server BINARY LOG: a fresh server on a free port; sets SERVER_PID and SERVER_URL.
start_server() {
    local binary=$1 log=$2 port
    port=$(free_port)
    env PORT="$port" RUST_LOG=warn "${LOAD_TEST_SETTINGS[@]}" "${PIN_SERVER[@]}" "$binary" >"$log" 2>&1 &
    SERVER_PID=$!
    wait_until_listening "$port" "$log" "$binary"
}

trap stop_server EXIT

FAILURES=0
# measure BUILD N: one `joins` run against a fresh server of that build.
measure() {
    local build=$1 members=$2 binary=$BIN/hubbub label="rooms-$2@$1" status=0
    [ "$build" = baseline ] && binary=$BASELINE/hubbub
    local rounds=$(((JOINS + members - 1) / members))
    [ "$rounds" -ge 1 ] || rounds=1
    echo "== $label: $rounds round(s)"
    start_server "$binary" "$OUT/logs/$label.log"
    timeout $((3 * STORM_TIMEOUT)) "${PIN_CLIENT[@]}" "$BIN/hubbub-bench" joins \
        --members "$members" --rounds "$rounds" --timeout "$STORM_TIMEOUT" \
        --url "$SERVER_URL" --server-pid "$SERVER_PID" --label "$label" \
        >>"$OUT/rooms.jsonl" || status=$?
    if [ "$status" -ne 0 ]; then
        FAILURES=$((FAILURES + 1))
        echo "bench-rooms: $label failed (exit $status; 124 is the timeout)" >&2
        [ "$status" -eq 124 ] && echo "{\"label\":\"$label\",\"failed\":\"timed out\",\"errors\":1}" >>"$OUT/rooms.jsonl"
    fi
    stop_server
}

: >"$OUT/rooms.jsonl"
started=$(date +%s)
first=hubbub
for members in $SIZES; do
    if [ -z "$BASELINE" ]; then
        measure hubbub "$members"
    elif [ "$first" = hubbub ]; then
        measure hubbub "$members"
        measure baseline "$members"
        first=baseline
    else
        measure baseline "$members"
        measure hubbub "$members"
        first=hubbub
    fi
done
elapsed=$(($(date +%s) - started))

python3 - "$OUT/rooms.jsonl" "$elapsed" "$PINNING" >"$OUT/rooms.md" <<'PY'
import json, sys

path, elapsed, pinning = sys.argv[1:]
runs = {}
for line in open(path):
    if line.startswith("{"):
        run = json.loads(line)
        runs[run.get("label")] = run

def fmt(x):
    if x is None: return "-"
    if x >= 1e9: return f"{x / 1e9:.2f}G"
    if x >= 1e6: return f"{x / 1e6:.2f}M"
    if x >= 1e4: return f"{x / 1e3:.0f}k"
    if x >= 100: return f"{x:,.0f}"
    if x >= 10: return f"{x:.1f}"
    return f"{x:.2f}"

def pair(run, a, b, scale=1.0):
    x, y = run.get(a), run.get(b)
    return f"{fmt(x and x * scale)} / {fmt(y and y * scale)}"

labels = [label for label in runs if label and label.startswith("rooms-")]
key = lambda label: (int(label.split("@")[0][len("rooms-"):]), label.split("@")[1] != "hubbub")
print(f"`hubbub-bench joins`, one run per size and build; {pinning}; {len(labels)} runs in {elapsed} s. "
      "CPU is the server's utime+stime from the first command sent to the storm's last frame, over N x rounds; "
      "frames and bytes are what all members received per round.\n")
print("| members | build | rounds | CPU/join (us) | CPU/leave (us) | peak RSS (MiB) | frames join / leave | bytes join / leave | last joined (ms) | last left (ms) | load gen CPU join / leave | closed | errors |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for label in sorted(labels, key=key):
    run = runs[label]
    members, build = label[len("rooms-"):].split("@")
    if run.get("failed"):
        print(f"| {members} | {build} | | **{run['failed']}** | | | | | | | | | {run.get('errors', 1)} |")
        continue
    rss = run.get("peak_rss_kib")
    print(f"| {members} | {build} | {run['rounds']} | {fmt(run.get('cpu_us_per_join'))} | {fmt(run.get('cpu_us_per_leave'))} "
          f"| {fmt(rss and rss / 1024)} | {pair(run, 'frames', 'leave_frames')} | {pair(run, 'bytes', 'leave_bytes')} "
          f"| {fmt(run.get('last_joined_ms'))} | {fmt(run.get('last_left_ms'))} "
          f"| {fmt(run.get('join_client_cpu_pct'))}% / {fmt(run.get('leave_client_cpu_pct'))}% | {run.get('closed', '-')} | {run['errors']} |")

def field(members, build, name):
    run = runs.get(f"rooms-{members}@{build}")
    return None if run is None or run.get("failed") else run.get(name)

print("\nGoal check (this build):\n")
small, big = field(1000, "hubbub", "cpu_us_per_join"), field(8000, "hubbub", "cpu_us_per_join")
if small and big:
    ratio = big / small
    verdict = "met" if ratio <= 1.5 else "**missed**"
    line = f"- server CPU per join at 8000 <= 1.5x at 1000: {big:.1f} against {small:.1f} us, {ratio:.2f}x: {verdict}"
    base_small, base_big = field(1000, "baseline", "cpu_us_per_join"), field(8000, "baseline", "cpu_us_per_join")
    if base_small and base_big:
        line += f" (baseline: {base_big / base_small:.2f}x)"
    print(line)
else:
    print("- server CPU per join at 8000 <= 1.5x at 1000: not measured (needs both sizes)")
rss = field(8000, "hubbub", "peak_rss_kib")
if rss:
    print(f"- peak RSS at 8000 < 300 MiB: {rss / 1024:.0f} MiB: {'met' if rss < 300 * 1024 else '**missed**'}")
else:
    print("- peak RSS at 8000 < 300 MiB: not measured")
mine = [runs[label] for label in labels if label.endswith("@hubbub")]
closed = sum(run.get("closed", 0) or 0 for run in mine)
errors = sum(run.get("errors", 0) for run in mine)
print(f"- no member closed or reset: {closed} closed or reset, {errors} error(s) in {len(mine)} run(s): "
      f"{'met' if mine and closed == 0 and errors == 0 else '**missed**'}")
PY
cat "$OUT/rooms.md"
echo
echo "bench-rooms: table in $OUT/rooms.md, every run in $OUT/rooms.jsonl, server logs in $OUT/logs/"
if [ "$FAILURES" -gt 0 ]; then
    echo "bench-rooms: $FAILURES run(s) failed or reported errors" >&2
    exit 1
fi
