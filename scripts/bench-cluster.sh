#!/usr/bin/env bash
# Clusters over Redis (issue 11): hubbub on two nodes sharing one Redis against hubbub on
# one node, and against the relay peer (bench/src/bin/peer_relay.rs: the broadcast peer
# with a plain Redis PUBLISH/SUBSCRIBE relay, no seq, no history) on two instances, all
# in the same run, repeated and interleaved (the order flips every repeat). Each
# measurement starts everything fresh: its own redis-server (no persistence, free port),
# its nodes, and stops them after. Prints a Markdown table and the goal checks; how to
# read it: docs/benchmarks.md, "Clusters over Redis".
#
#   scripts/bench-cluster.sh                  # 5 repeats of 5 s (~6 min after the build)
#   BENCH_QUICK=1 scripts/bench-cluster.sh    # 3 repeats of 2 s (~2 min)
#   BENCH_CLUSTER=1 scripts/bench.sh          # the same, through bench.sh
#
#   A before/after of a change to the cluster: BENCH_BASELINE (a folder with a release
#   `hubbub` built from an earlier commit) adds that build's cluster as
#   lat-cross@baseline, fan-cluster@baseline and even-cluster@baseline, interleaved:
#     git worktree add /tmp/base <commit> && cargo build --release --manifest-path /tmp/base/Cargo.toml
#     BENCH_BASELINE=/tmp/base/target/release scripts/bench-cluster.sh
#
# What it measures (`hubbub-bench fanout`, 64-byte texts):
#   latency  a room of 10, 1 publisher at BENCH_RATE (1,000) messages/s: one node (no
#            REDIS_URL) / cluster, everyone on node A / cluster, the publisher on A and
#            the 9 others on B: p50 and p99 of every delivery;
#   fan-out  a room of 1,000, 1 publisher flat out (16 in flight): 1,000 on one node /
#            500 + 500 on two nodes / 1,000 on one broadcast peer / 500 + 500 on two
#            relay instances: deliveries/s and server CPU per delivery, summed over
#            every server process (both nodes and Redis; one node: itself);
#   even     the same room of 1,000 on one node / on two nodes, both offered the same
#            BENCH_FANOUT_RATE (50) messages/s: a rate neither saturates the server
#            core at, so CPU per delivery is the cost of a delivery. Flat out it is not:
#            a saturated server spends what it has, writing each connection more often
#            with fewer frames per write, so there it follows messages/s instead.
# Goals (issue 11): cross-node p99 <= same-node p99 + 2 ms; cluster CPU per delivery
# <= 1.3x one node's (at an equal load; flat out shown beside it); cluster
# deliveries/s >= the relay peer's.
#
# The servers (nodes, relays, Redis) share BENCH_SERVER_CPUS (default CPU 0), the load
# generator BENCH_CLIENT_CPUS (default 1), so one node and a cluster get the same core.
# Settings from the environment: BENCH_REPEATS, BENCH_DURATION (s), BENCH_WARMUP (s),
# BENCH_RATE, BENCH_FANOUT_RATE, BENCH_WINDOW (16: the fan-out publisher's messages in
# flight), BENCH_MEMBERS (1000), BENCH_ONLY (run labels,
# comma-separated: lat-single, lat-same, lat-cross, fan-single, fan-cluster,
# fan-broadcast, fan-relay, even-single, even-cluster, and with BENCH_BASELINE the
# same with @baseline), BENCH_BASELINE (above), BENCH_OUT (default target/bench: cluster.jsonl,
# cluster.md, logs). Needs redis-server (Debian's package), python3 and, for pinning,
# taskset.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
OUT=${BENCH_OUT:-target/bench}
if [ -n "${BENCH_QUICK:-}" ]; then
    REPEATS=${BENCH_REPEATS:-3}
    DURATION=${BENCH_DURATION:-2}
    WARMUP=${BENCH_WARMUP:-0.5}
else
    REPEATS=${BENCH_REPEATS:-5}
    DURATION=${BENCH_DURATION:-5}
    WARMUP=${BENCH_WARMUP:-1}
fi
RATE=${BENCH_RATE:-1000}
FANOUT_RATE=${BENCH_FANOUT_RATE:-50}
WINDOW=${BENCH_WINDOW:-16}
MEMBERS=${BENCH_MEMBERS:-1000}
mkdir -p "$OUT/logs"

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

if ! command -v redis-server >/dev/null; then
    echo "bench-cluster: needs redis-server (apt-get install -y redis-server)" >&2
    exit 2
fi

build_release_and_pin

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Every process this measurement started (nodes, relays), stopped together.
PIDS=()
NODE_URLS=()

# start_node KIND NAME [VAR=value ...]: $BIN/KIND (hubbub, peer_broadcast or peer_relay;
# baseline: $BASELINE/hubbub) on a free port, pinned with the servers; appends to PIDS
# and NODE_URLS.
start_node() {
    local kind=$1 name=$2 port log binary
    shift 2
    port=$(free_port)
    log="$OUT/logs/cluster-$kind-$name-$port.log"
    binary="$BIN/$kind"
    [ "$kind" = baseline ] && binary="$BASELINE/hubbub"
    local settings=(PORT="$port" RUST_LOG=warn)
    case "$kind" in hubbub | baseline) settings+=("${LOAD_TEST_SETTINGS[@]}") ;; esac
    env "${settings[@]}" "$@" "${PIN_SERVER[@]}" "$binary" >"$log" 2>&1 &
    SERVER_PID=$!
    wait_until_listening "$port" "$log" "$kind $name"
    PIDS+=("$SERVER_PID")
    NODE_URLS+=("$SERVER_URL")
    SERVER_PID=
}

stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do
        SERVER_PID=$pid
        stop_server
    done
    PIDS=()
    NODE_URLS=()
    stop_redis
}
trap stop_all EXIT

# setup SHAPE: starts what SHAPE needs. single: one hubbub without REDIS_URL; cluster:
# Redis and hubbub nodes a and b; baseline: the same with BENCH_BASELINE's build;
# broadcast: one peer_broadcast (what the relay adds Redis to); relay: Redis and two
# peer_relay instances.
setup() {
    case "$1" in
        single)
            start_node hubbub a
            ;;
        broadcast)
            start_node peer_broadcast a
            ;;
        cluster | baseline)
            local kind=hubbub
            [ "$1" = baseline ] && kind=baseline
            start_redis "$OUT/logs/cluster-redis.log"
            start_node "$kind" a REDIS_URL="$REDIS_URL" NODE_ID=a
            start_node "$kind" b REDIS_URL="$REDIS_URL" NODE_ID=b
            ;;
        relay)
            start_redis "$OUT/logs/cluster-redis.log"
            start_node peer_relay a RELAY_URL="$REDIS_URL"
            start_node peer_relay b RELAY_URL="$REDIS_URL"
            ;;
    esac
}

FAILURES=0
TIMING=(--duration "$DURATION" --warmup "$WARMUP" --size 64)

# measure LABEL SHAPE PLACEMENT ARGS...: a fresh SHAPE, one fanout run, everything
# stopped. PLACEMENT: one (every member on node a), split (round-robin over both) or
# cross (the publishers on a, the others on b). CPU is summed over every process.
measure() {
    local label=$1 shape=$2 placement=$3
    shift 3
    setup "$shape"
    local urls=() pids=() pid
    case "$placement" in
        one) urls=(--url "${NODE_URLS[0]}") ;;
        split) urls=(--url "${NODE_URLS[0]}" --url "${NODE_URLS[1]}") ;;
        cross) urls=(--url "${NODE_URLS[0]}" --url "${NODE_URLS[1]}" --publish-on 0) ;;
    esac
    for pid in "${PIDS[@]}" ${REDIS_PID:+"$REDIS_PID"}; do
        pids+=(--server-pid "$pid")
    done
    if ! "${PIN_CLIENT[@]}" "$BIN/hubbub-bench" fanout "$@" "${urls[@]}" "${pids[@]}" \
        --label "$label" >>"$OUT/cluster.jsonl"; then
        FAILURES=$((FAILURES + 1))
        echo "bench-cluster: $label reported errors (see above)" >&2
    fi
    stop_all
}

LATENCY=(--rooms 1 --members 10 --publishers 1 --rate "$RATE" "${TIMING[@]}")
FANOUT=(--rooms 1 --members "$MEMBERS" --publishers 1 --window "$WINDOW" "${TIMING[@]}")
EVEN=(--rooms 1 --members "$MEMBERS" --publishers 1 --rate "$FANOUT_RATE" "${TIMING[@]}")

# The runs of one repeat, in this order or reversed.
RUNS=(
    'measure lat-single single one "${LATENCY[@]}"'
    'measure lat-same cluster one "${LATENCY[@]}"'
    'measure lat-cross cluster cross "${LATENCY[@]}"'
    'measure fan-single single one "${FANOUT[@]}"'
    'measure fan-cluster cluster split "${FANOUT[@]}"'
    'measure fan-broadcast broadcast one --protocol raw "${FANOUT[@]}"'
    'measure fan-relay relay split --protocol raw "${FANOUT[@]}"'
    'measure even-single single one "${EVEN[@]}"'
    'measure even-cluster cluster split "${EVEN[@]}"'
)
BASELINE=${BENCH_BASELINE:-}
if [ -n "$BASELINE" ]; then
    if [ ! -x "$BASELINE/hubbub" ]; then
        echo "bench-cluster: BENCH_BASELINE=$BASELINE holds no hubbub binary" >&2
        exit 2
    fi
    RUNS+=(
        'measure lat-cross@baseline baseline cross "${LATENCY[@]}"'
        'measure fan-cluster@baseline baseline split "${FANOUT[@]}"'
        'measure even-cluster@baseline baseline split "${EVEN[@]}"'
    )
fi
# BENCH_ONLY (labels, comma-separated, e.g. fan-single,fan-relay): only those runs.
if [ -n "${BENCH_ONLY:-}" ]; then
    kept=()
    for run in "${RUNS[@]}"; do
        label=${run#measure }
        label=${label%% *}
        [[ ",$BENCH_ONLY," == *",$label,"* ]] && kept+=("$run")
    done
    RUNS=("${kept[@]}")
fi

: >"$OUT/cluster.jsonl"
started=$(date +%s)
echo "== $REPEATS repeat(s), ${DURATION}s measured after ${WARMUP}s; $PINNING; Redis $(redis-server --version | grep -o 'v=[^ ]*')"
for repeat in $(seq 1 "$REPEATS"); do
    echo "== repeat $repeat of $REPEATS"
    if [ $((repeat % 2)) = 1 ]; then
        for run in "${RUNS[@]}"; do eval "$run"; done
    else
        for ((i = ${#RUNS[@]} - 1; i >= 0; i--)); do eval "${RUNS[i]}"; done
    fi
done
elapsed=$(($(date +%s) - started))

python3 - "$OUT/cluster.jsonl" "$REPEATS" "$DURATION" "$elapsed" "$PINNING" "$RATE" "$MEMBERS" "$FANOUT_RATE" "$WINDOW" \
    >"$OUT/cluster.md" <<'PY'
import json, statistics, sys

path, repeats, duration, elapsed, pinning, rate, members, fanout_rate, window = sys.argv[1:]
runs = [json.loads(line) for line in open(path) if line.startswith("{")]

def values(label, field, index=None):
    out = []
    for r in runs:
        if r.get("label") != label or r.get("errors") or r.get(field) is None:
            continue
        v = r[field]
        if index is not None:
            v = v[index] if isinstance(v, list) and len(v) > index else None
        if v is not None:
            out.append(v)
    return out

def stats(label, field, scale=1.0, index=None):
    v = [x * scale for x in values(label, field, index)]
    return (statistics.median(v), min(v), max(v)) if v else None

def fmt(x):
    if x >= 100_000: return f"{x / 1e6:.2f}M"
    if x >= 1000: return f"{x:,.0f}"
    if x >= 100: return f"{x:.0f}"
    if x >= 10: return f"{x:.1f}"
    return f"{x:.2f}"

def cell(s):
    return "-" if s is None else f"{fmt(s[0])} ({fmt(s[1])}-{fmt(s[2])})"

def ratio(a, b):
    return f"{a[0] / b[0]:.2f}x" if a and b and b[0] else "-"

def verdict(ok):
    return "-" if ok is None else ("met" if ok else "**missed**")

errors = sum(r.get("errors", 0) for r in runs)
print(f"Medians of {repeats} interleaved repeats, min-max in brackets; {duration} s measured per run; "
      f"{pinning}, Redis and both nodes on the server CPU; {len(runs)} runs in {elapsed} s, "
      f"{errors} correctness error(s).\n")

ms = 0.001
print(f"Latency, a room of 10, 1 publisher at {int(float(rate)):,} messages/s (every delivery, the publisher's own included):\n")
print("| | one node | cluster, same node | cluster, cross node | cross - same | goal | |")
print("|---|---|---|---|---|---|---|")
for what, field in (("p50 (ms)", "p50_us"), ("p99 (ms)", "p99_us"), ("p99.9 (ms)", "p999_us")):
    single, same, cross = (stats(f"lat-{k}", field, ms) for k in ("single", "same", "cross"))
    diff = f"{cross[0] - same[0]:+.2f} ms" if cross and same else "-"
    goal, ok = "", None
    if field == "p99_us":
        goal = "cross <= same + 2 ms"
        ok = None if not (cross and same) else cross[0] <= same[0] + 2.0
    print(f"| {what} | {cell(single)} | {cell(same)} | {cell(cross)} | {diff} | {goal} | {verdict(ok) if goal else ''} |")
single, same, cross = (stats(f"lat-{k}", "server_cpu_pct") for k in ("single", "same", "cross"))
print(f"| server CPU, all processes (%) | {cell(single)} | {cell(same)} | {cell(cross)} | | | |")
single, same, cross = (stats(f"lat-{k}", "client_cpu_pct") for k in ("single", "same", "cross"))
print(f"| load generator CPU (%) | {cell(single)} | {cell(same)} | {cell(cross)} | | | |")

print(f"\nFan-out, a room of {int(members):,}, 1 publisher flat out ({window} in flight); the cluster and the relay split "
      "the room over 2 nodes and count CPU over both and Redis:\n")
print("| | hubbub, one node | hubbub cluster (2 nodes) | broadcast peer (1 instance) | relay peer (2 instances) "
      "| cluster / one node | relay / broadcast | cluster / relay | goal | |")
print("|---|---|---|---|---|---|---|---|---|---|")
def fan_row(what, field, goal="", check=None, scale=1.0, index=None):
    single, cluster, broadcast, relay = (stats(f"fan-{k}", field, scale, index)
                                         for k in ("single", "cluster", "broadcast", "relay"))
    ok = None if check is None else check(single, cluster, relay)
    print(f"| {what} | {cell(single)} | {cell(cluster)} | {cell(broadcast)} | {cell(relay)} | "
          f"{ratio(cluster, single)} | {ratio(relay, broadcast)} | {ratio(cluster, relay)} | "
          f"{goal} | {verdict(ok) if goal else ''} |")
fan_row("deliveries/s", "deliveries_per_s", "cluster >= relay",
        lambda s, c, r: None if not (c and r) else c[0] >= r[0])
fan_row("server CPU per delivery (us), all processes", "cpu_us_per_delivery", "(at an equal load, below)")
fan_row("server CPU, all processes (%)", "server_cpu_pct")
fan_row("of which node / instance a (%)", "server_cpu_pct_each", index=0)
fan_row("of which node / instance b (%)", "server_cpu_pct_each", index=1)
fan_row("of which Redis (%)", "server_cpu_pct_each", index=2)
fan_row("messages/s", "msgs_per_s")
fan_row("p99 latency (ms)", "p99_us", scale=ms)
fan_row("load generator CPU (%)", "client_cpu_pct")

print(f"\nFan-out at an equal load, a room of {int(members):,}, 1 publisher at {int(float(fanout_rate)):,} messages/s "
      "on one node and on the cluster (500 + 500):\n")
print("| | hubbub, one node | hubbub cluster (2 nodes) | cluster / one node | goal | |")
print("|---|---|---|---|---|---|")
def even_row(what, field, goal="", check=None, scale=1.0, index=None):
    single, cluster = (stats(f"even-{k}", field, scale, index) for k in ("single", "cluster"))
    ok = None if check is None else check(single, cluster)
    print(f"| {what} | {cell(single)} | {cell(cluster)} | {ratio(cluster, single)} | "
          f"{goal} | {verdict(ok) if goal else ''} |")
even_row("deliveries/s", "deliveries_per_s")
even_row("server CPU per delivery (us), all processes", "cpu_us_per_delivery", "cluster <= 1.3x one node",
         lambda s, c: None if not (c and s) else c[0] <= 1.3 * s[0])
even_row("server CPU, all processes (%)", "server_cpu_pct")
even_row("of which Redis (%)", "server_cpu_pct_each", index=2)
even_row("p50 latency (ms)", "p50_us", scale=ms)
even_row("p99 latency (ms)", "p99_us", scale=ms)
even_row("load generator CPU (%)", "client_cpu_pct")

if any(r.get("label", "").endswith("@baseline") for r in runs):
    print("\nThe cluster, this build against the baseline build (BENCH_BASELINE), in the same run:\n")
    print("| | baseline | this build | this / baseline |")
    print("|---|---|---|---|")
    for what, label, field, scale in (
        ("flat out: deliveries/s", "fan-cluster", "deliveries_per_s", 1.0),
        ("flat out: server CPU per delivery (us), all processes", "fan-cluster", "cpu_us_per_delivery", 1.0),
        ("flat out: p99 latency (ms)", "fan-cluster", "p99_us", ms),
        (f"at {int(float(fanout_rate)):,} messages/s: server CPU per delivery (us)", "even-cluster",
         "cpu_us_per_delivery", 1.0),
        ("latency, cross node: p50 (ms)", "lat-cross", "p50_us", ms),
        ("latency, cross node: p99 (ms)", "lat-cross", "p99_us", ms),
    ):
        base, now = stats(f"{label}@baseline", field, scale), stats(label, field, scale)
        print(f"| {what} | {cell(base)} | {cell(now)} | {ratio(now, base)} |")
PY
cat "$OUT/cluster.md"
echo
echo "bench-cluster: table in $OUT/cluster.md, every run in $OUT/cluster.jsonl, logs in $OUT/logs/"
if [ "$FAILURES" -gt 0 ]; then
    echo "bench-cluster: $FAILURES run(s) reported errors" >&2
    exit 1
fi
