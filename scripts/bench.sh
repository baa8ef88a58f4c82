#!/usr/bin/env bash
# Benchmarks: hubbub measured against the minimal actix peers of bench/ (peer_echo,
# peer_broadcast) in the same run, every figure beside the peer's and the ratio, because
# shared machines are noisy. Results and how to read them: docs/benchmarks.md.
#
#   scripts/bench.sh                 # full run: release build, 5 repeats (~10 min on 2 cores)
#   BENCH_QUICK=1 scripts/bench.sh   # 3 shorter repeats, 2,000 idle connections (~3 min)
#   scripts/bench.sh --smoke         # CI: debug build, the load generator's smoke against
#                                    # hubbub and the peers, and (with redis-server) a tiny
#                                    # fan-out over 2 cluster nodes and 2 relay peers;
#                                    # correctness only (~20 s after build)
#   BENCH_CLUSTER=1 scripts/bench.sh # the cluster benchmark instead: scripts/bench-cluster.sh
#
# Each measurement starts its server fresh on a free port, pinned to one core with
# taskset and the load generator to another (where there are two), and is repeated,
# interleaved: hubbub, peer, hubbub, peer... (the order flips every repeat). The table
# gives medians with min-max. Settings from the environment:
#   BENCH_REPEATS, BENCH_DURATION (s), BENCH_WARMUP (s), BENCH_IDLE (connections),
#   BENCH_SERVER_CPUS, BENCH_CLIENT_CPUS (taskset lists; default 0 and 1),
#   BENCH_OUT (default target/bench: results.jsonl, report.md, server logs),
#   BENCH_BASELINE (a folder with a release `hubbub` built from an earlier commit: it is
#   measured too, interleaved with this build, and the report compares the two).
#
#   A before/after of a change:
#     git worktree add /tmp/base <commit> && cargo build --release --manifest-path /tmp/base/Cargo.toml
#     BENCH_BASELINE=/tmp/base/target/release scripts/bench.sh
# Needs python3 (the table) and, for pinning, taskset (util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=full
case "${1:-}" in
    --smoke) MODE=smoke ;;
    "") ;;
    *) echo "usage: $0 [--smoke]   (BENCH_QUICK=1 for the quick run)" >&2; exit 2 ;;
esac

# The cluster benchmark has its own script (its servers are a Redis and two nodes).
if [ "$MODE" = full ] && [ -n "${BENCH_CLUSTER:-}" ]; then
    exec scripts/bench-cluster.sh
fi

TARGET_DIR=${CARGO_TARGET_DIR:-target}
OUT=${BENCH_OUT:-target/bench}
mkdir -p "$OUT/logs"

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

PIN_SERVER=()
PIN_CLIENT=()
HUBBUB_SETTINGS=("${LOAD_TEST_SETTINGS[@]}")
# The smoke keeps the defaults.
[ "$MODE" = smoke ] && HUBBUB_SETTINGS=(SHUTDOWN_TIMEOUT_MS=1000)

# start_server KIND [VAR=value ...]: starts $BIN/KIND on a free port; sets SERVER_PID
# and SERVER_URL.
start_server() {
    local kind=$1 port log binary
    shift
    port=$(free_port)
    log="$OUT/logs/$kind-$port.log"
    local settings=(PORT="$port" RUST_LOG=warn)
    binary="$BIN/$kind"
    [ "$kind" = baseline ] && binary="$BASELINE/hubbub"
    case "$kind" in hubbub | baseline) settings+=("${HUBBUB_SETTINGS[@]}") ;; esac
    env "${settings[@]}" "$@" "${PIN_SERVER[@]}" "$binary" >"$log" 2>&1 &
    SERVER_PID=$!
    wait_until_listening "$port" "$log" "$kind"
}

# The cluster smoke's nodes (the other runs have one server, SERVER_PID).
NODES=()
stop_nodes() {
    local pid
    for pid in "${NODES[@]}"; do
        SERVER_PID=$pid
        stop_server
    done
    NODES=()
}
trap 'stop_server; stop_nodes; stop_redis' EXIT

FAILURES=0

# run_load LABEL MODE ARGS...: the load generator against the running server; its JSON
# line goes to results.jsonl, its human line to the terminal.
run_load() {
    local label=$1
    shift
    if ! "${PIN_CLIENT[@]}" "$BIN/hubbub-bench" "$@" --url "$SERVER_URL" \
        --server-pid "$SERVER_PID" --label "$label" >>"$OUT/results.jsonl"; then
        FAILURES=$((FAILURES + 1))
        echo "bench: $label reported errors (see above)" >&2
    fi
}

# measure LABEL KIND [VAR=value ...] -- MODE ARGS...: a fresh server, one run, stopped.
measure() {
    local label=$1 kind=$2
    shift 2
    local env_settings=()
    while [ "$1" != "--" ]; do
        env_settings+=("$1")
        shift
    done
    shift
    start_server "$kind" "${env_settings[@]}"
    run_load "$label" "$@"
    stop_server
}

BASELINE=${BENCH_BASELINE:-}
if [ -n "$BASELINE" ] && [ ! -x "$BASELINE/hubbub" ]; then
    echo "bench: BENCH_BASELINE=$BASELINE holds no hubbub binary" >&2
    exit 2
fi

# hub_measure NAME [VAR=value ...] -- MODE ARGS...: hubbub as NAME@hubbub, and with
# BENCH_BASELINE the baseline build as NAME@baseline, in this repeat's order.
hub_measure() {
    local name=$1
    shift
    if [ -z "$BASELINE" ]; then
        measure "$name@hubbub" hubbub "$@"
    elif [ "$first" = 1 ]; then
        measure "$name@hubbub" hubbub "$@"
        measure "$name@baseline" baseline "$@"
    else
        measure "$name@baseline" baseline "$@"
        measure "$name@hubbub" hubbub "$@"
    fi
}

# baseline_measure NAME [VAR=value ...] -- MODE ARGS...: the baseline build alone, when
# there is one (beside a hubbub-against-peer pair).
baseline_measure() {
    local name=$1
    shift
    [ -n "$BASELINE" ] && measure "$name@baseline" baseline "$@"
    return 0
}

# ---------------------------------------------------------------------------------------
# Smoke (CI): correctness of the load generator's every mode against a debug hubbub with
# its default settings, and of the peers; no timing asserted, no pinning.
# ---------------------------------------------------------------------------------------
if [ "$MODE" = smoke ]; then
    echo "== cargo build --workspace (debug)"
    cargo build --workspace --locked --quiet
    BIN="$TARGET_DIR/debug"
    : >"$OUT/results.jsonl"
    started=$(date +%s)
    smoke() {
        local kind=$1
        shift
        start_server "$kind"
        echo "== smoke against $kind"
        if ! "$BIN/hubbub-bench" smoke --url "$SERVER_URL" --server-pid "$SERVER_PID" "$@" \
            >>"$OUT/results.jsonl"; then
            FAILURES=$((FAILURES + 1))
        fi
        stop_server
    }
    # hubbub with its default limits (rate limit on: the smoke stays under it).
    smoke hubbub
    smoke peer_echo --only echo-raw,idle-raw,churn-raw
    smoke peer_broadcast --only fanout-raw
    # A cluster: 2 nodes and a Redis of their own, the members dealt over both (so
    # messages cross nodes), every delivery and seq checked; the same over 2 relay peers.
    # redis-server missing: a visible skip, a failure under CI=true.
    smoke_cluster() {
        local kind=$1 var=$2 pid pids=() urls=()
        shift 2
        start_redis "$OUT/logs/smoke-redis.log"
        for node in a b; do
            start_server "$kind" "$var=$REDIS_URL" NODE_ID="$node"
            urls+=(--url "$SERVER_URL")
            NODES+=("$SERVER_PID")
            SERVER_PID=
        done
        for pid in "${NODES[@]}" "$REDIS_PID"; do
            pids+=(--server-pid "$pid")
        done
        echo "== smoke against 2 $kind nodes and Redis"
        if ! "$BIN/hubbub-bench" smoke "${urls[@]}" "${pids[@]}" "$@" >>"$OUT/results.jsonl"; then
            FAILURES=$((FAILURES + 1))
        fi
        stop_nodes
        stop_redis
    }
    if have_redis "cluster smoke"; then
        if grep -q '"REDIS_URL"' src/config.rs; then
            smoke_cluster hubbub REDIS_URL --only fanout-hub,fanout-rate
        else
            echo "SKIP: cluster smoke of hubbub: this hubbub has no REDIS_URL (src/config.rs)"
        fi
        smoke_cluster peer_relay RELAY_URL --only fanout-raw
    fi
    echo "== smoke took $(($(date +%s) - started)) s; JSON lines in $OUT/results.jsonl"
    if [ "$FAILURES" -gt 0 ]; then
        echo "bench: smoke FAILED ($FAILURES run(s) with errors)" >&2
        exit 1
    fi
    echo "bench: smoke passed"
    exit 0
fi

# ---------------------------------------------------------------------------------------
# Measurements.
# ---------------------------------------------------------------------------------------
if [ -n "${BENCH_QUICK:-}" ]; then
    REPEATS=${BENCH_REPEATS:-3}
    DURATION=${BENCH_DURATION:-2}
    WARMUP=${BENCH_WARMUP:-0.5}
    IDLE=${BENCH_IDLE:-2000}
else
    REPEATS=${BENCH_REPEATS:-5}
    DURATION=${BENCH_DURATION:-5}
    WARMUP=${BENCH_WARMUP:-1}
    IDLE=${BENCH_IDLE:-10000}
fi

echo "== cargo build --release --workspace"
cargo build --release --workspace --locked --quiet
BIN="$TARGET_DIR/release"

if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER=(taskset -c "${BENCH_SERVER_CPUS:-0}")
    PIN_CLIENT=(taskset -c "${BENCH_CLIENT_CPUS:-1}")
    PINNING="server on CPU ${BENCH_SERVER_CPUS:-0}, load generator on CPU ${BENCH_CLIENT_CPUS:-1} (taskset)"
else
    PINNING="not pinned (taskset missing or one CPU): server and load generator share the machine"
fi

# Every connection is a file descriptor on both sides: raise the soft limit to the hard
# one, and hold fewer idle connections if even that is too low.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$IDLE" -gt $((NOFILE - 200)) ]; then
    echo "bench: ulimit -n is $NOFILE (hard limit): idle test reduced from $IDLE to $((NOFILE - 200)) connections" >&2
    IDLE=$((NOFILE - 200))
fi

: >"$OUT/results.jsonl"
TIMING=(--duration "$DURATION" --warmup "$WARMUP")
ECHO=(echo --connections 64 --window 16 --size 64 "${TIMING[@]}")
FANOUT=(fanout --window 16 --size 64 "${TIMING[@]}")
started=$(date +%s)
echo "== $REPEATS repeat(s), ${DURATION}s measured after ${WARMUP}s warm-up; $PINNING"

# pair FIRST_IS_HUBBUB HUBBUB_CMD PEER_CMD: runs both, hubbub first or second.
pair() {
    if [ "$1" = 1 ]; then eval "$2"; eval "$3"; else eval "$3"; eval "$2"; fi
}

for repeat in $(seq 1 "$REPEATS"); do
    echo "== repeat $repeat of $REPEATS (flat out)"
    first=$((repeat % 2))
    pair "$first" \
        'measure echo-raw@hubbub hubbub -- "${ECHO[@]}" --protocol raw' \
        'measure echo-raw@peer peer_echo -- "${ECHO[@]}" --protocol raw'
    baseline_measure echo-raw -- "${ECHO[@]}" --protocol raw
    hub_measure echo-hub -- "${ECHO[@]}" --protocol hub
    for size in 1x100 1x1000; do
        members=${size#1x}
        pair "$first" \
            'measure fanout-$size@hubbub hubbub -- "${FANOUT[@]}" --rooms 1 --members $members' \
            'measure fanout-$size@peer peer_broadcast -- "${FANOUT[@]}" --protocol raw --rooms 1 --members $members'
        baseline_measure "fanout-$size" -- "${FANOUT[@]}" --rooms 1 --members "$members"
    done
    hub_measure fanout-100x10 -- "${FANOUT[@]}" --rooms 100 --members 10
    # Heartbeats every second, so they run while the connections are held.
    pair "$first" \
        'measure idle@hubbub hubbub HEARTBEAT_INTERVAL_MS=1000 -- idle --protocol hub --connections $IDLE --hold 3' \
        'measure idle@peer peer_echo -- idle --protocol raw --connections $IDLE --hold 3'
    baseline_measure idle HEARTBEAT_INTERVAL_MS=1000 -- idle --protocol hub --connections "$IDLE" --hold 3
    pair "$first" \
        'measure churn@hubbub hubbub -- churn --protocol hub --workers 16 --duration $DURATION' \
        'measure churn@peer peer_echo -- churn --protocol raw --workers 16 --duration $DURATION'
done

# The latency target is at half hubbub's flat-out rate; the peer gets the same offered load.
median_rate() {
    python3 - "$OUT/results.jsonl" "$1" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
rates = [r["msgs_per_s"] / r["publishers"] for r in runs if r.get("label") == sys.argv[2] and r["errors"] == 0]
print(f"{statistics.median(rates) / 2:.1f}" if rates else "")
PY
}
declare -A HALF
for size in 1x100 1x1000 100x10; do
    HALF[$size]=$(median_rate "fanout-$size@hubbub")
done
for repeat in $(seq 1 "$REPEATS"); do
    echo "== repeat $repeat of $REPEATS (half rate)"
    first=$((repeat % 2))
    for size in 1x100 1x1000; do
        members=${size#1x}
        rate=${HALF[$size]}
        [ -n "$rate" ] || continue
        pair "$first" \
            'measure rate-$size@hubbub hubbub -- "${FANOUT[@]}" --rooms 1 --members $members --rate $rate' \
            'measure rate-$size@peer peer_broadcast -- "${FANOUT[@]}" --protocol raw --rooms 1 --members $members --rate $rate'
    done
    if [ -n "${HALF[100x10]}" ]; then
        measure rate-100x10@hubbub hubbub -- "${FANOUT[@]}" --rooms 100 --members 10 --rate "${HALF[100x10]}"
    fi
done

elapsed=$(($(date +%s) - started))
python3 - "$OUT/results.jsonl" "$REPEATS" "$DURATION" "$IDLE" "$elapsed" "$PINNING" >"$OUT/report.md" <<'PY'
import json, statistics, sys

path, repeats, duration, idle, elapsed, pinning = sys.argv[1:]
runs = [json.loads(line) for line in open(path) if line.startswith("{")]

def values(label, field):
    return [r[field] for r in runs if r.get("label") == label and r.get(field) is not None]

def stats(label, field):
    v = values(label, field)
    return (statistics.median(v), min(v), max(v)) if v else None

def fmt(x):
    if x >= 100_000: return f"{x / 1e6:.2f}M"
    if x >= 1000: return f"{x:,.0f}"
    if x >= 100: return f"{x:.0f}"
    if x >= 10: return f"{x:.1f}"
    return f"{x:.2f}"

def cell(s):
    return "-" if s is None else f"{fmt(s[0])} ({fmt(s[1])}-{fmt(s[2])})"

rows = []
def row(what, hub_label, peer_label, field, target, check, scale=1.0):
    """One table line: hubbub's runs `hub_label` against `peer_label`, on `field`."""
    def scaled(label):
        s = stats(label, field)
        return s and tuple(x * scale for x in s)
    hub, peer = scaled(hub_label), scaled(peer_label)
    ratio = f"{hub[0] / peer[0]:.2f}x" if hub and peer and peer[0] else "-"
    verdict = "-" if not hub or check is None else ("met" if check(hub, peer) else "**missed**")
    # The load generator's own CPU in hubbub's runs: near 100 % it measured itself.
    load = stats(hub_label, "client_cpu_pct")
    load = f"{load[0]:.0f}%" if load else "-"
    rows.append(f"| {what} | {cell(hub)} | {cell(peer)} | {ratio} | {target} | {verdict} | {load} |")

def ratio_at_most(limit):
    return lambda h, p: p is not None and h[0] <= limit * p[0]
def ratio_at_least(limit):
    return lambda h, p: p is not None and h[0] >= limit * p[0]

row("`/echo` server CPU per message (us) vs peer_echo", "echo-raw@hubbub", "echo-raw@peer",
    "cpu_us_per_msg", "<= 1.1x", ratio_at_most(1.1))
row("`/echo` messages/s (64 conns x 16 in flight x 64 B)", "echo-raw@hubbub", "echo-raw@peer",
    "msgs_per_s", "info", None)
row("`/ws` JSON echo CPU per message (us) vs hubbub `/echo`", "echo-hub@hubbub", "echo-raw@hubbub",
    "cpu_us_per_msg", "<= 2x", ratio_at_most(2.0))
row("`/ws` JSON echo messages/s vs hubbub `/echo`", "echo-hub@hubbub", "echo-raw@hubbub",
    "msgs_per_s", "info", None)
for size, peer in (("1x100", "1x100"), ("1x1000", "1x1000"), ("100x10", "1x1000")):
    note = "" if size == peer else " (peer: 1x1000, same connections)"
    row(f"fan-out {size} deliveries/s, 16 in flight{note}", f"fanout-{size}@hubbub", f"fanout-{peer}@peer",
        "deliveries_per_s", ">= 1.0x", ratio_at_least(1.0))
    row(f"fan-out {size} server CPU per delivery (us){note}", f"fanout-{size}@hubbub", f"fanout-{peer}@peer",
        "cpu_us_per_delivery", "info", None)
for size in ("1x100", "1x1000", "100x10"):
    rate = stats(f"rate-{size}@hubbub", "msgs_per_s")
    at = f" ({fmt(rate[0])} msgs/s)" if rate else ""
    row(f"fan-out {size} p99 latency at half rate{at}, ms", f"rate-{size}@hubbub", f"rate-{size}@peer",
        "p99_us", "< 50 ms", lambda h, p: h[0] < 50, scale=0.001)
row(f"idle RSS per connection at {idle} (KiB; hubbub `/ws` with heartbeats, peer_echo)", "idle@hubbub",
    "idle@peer", "rss_per_conn_kib", "<= 16 KiB", lambda h, p: h[0] <= 16)
row("handshakes/s during the idle ramp (hubbub `/ws` vs peer_echo)", "idle@hubbub", "idle@peer",
    "handshakes_per_s", ">= 0.8x", ratio_at_least(0.8))
row("churn cycles/s, 16 workers (hubbub: connect-join-say-leave-close; peer: connect-echo-close)",
    "churn@hubbub", "churn@peer", "cycles_per_s", "info", None)

# With BENCH_BASELINE: this build against the earlier one, in the same run.
if any(r.get("label", "").endswith("@baseline") for r in runs):
    rows.append("| **this build against the baseline build (BENCH_BASELINE), same run** | this | baseline | ratio | | | |")
    for what, name, field in (
        ("`/echo` server CPU per message (us)", "echo-raw", "cpu_us_per_msg"),
        ("`/ws` JSON echo CPU per message (us)", "echo-hub", "cpu_us_per_msg"),
        ("`/ws` JSON echo messages/s", "echo-hub", "msgs_per_s"),
        ("fan-out 1x100 deliveries/s", "fanout-1x100", "deliveries_per_s"),
        ("fan-out 1x1000 deliveries/s", "fanout-1x1000", "deliveries_per_s"),
        ("fan-out 1x1000 server CPU per delivery (us)", "fanout-1x1000", "cpu_us_per_delivery"),
        ("fan-out 100x10 deliveries/s", "fanout-100x10", "deliveries_per_s"),
        ("fan-out 100x10 server CPU per delivery (us)", "fanout-100x10", "cpu_us_per_delivery"),
        (f"idle RSS per `/ws` connection at {idle} (KiB)", "idle", "rss_per_conn_kib"),
    ):
        row(what, f"{name}@hubbub", f"{name}@baseline", field, "within noise", None)

total_errors = sum(r["errors"] for r in runs)
print(f"Medians of {repeats} interleaved repeats, min-max in brackets; {duration} s measured per run; {pinning}; "
      f"{len(runs)} runs in {elapsed} s, {total_errors} correctness error(s).\n")
print("| measurement | hubbub | peer | ratio | target | | load gen CPU |")
print("|---|---|---|---|---|---|---|")
print("\n".join(rows))
PY
cat "$OUT/report.md"
echo
echo "bench: table in $OUT/report.md, every run in $OUT/results.jsonl, server logs in $OUT/logs/"
if [ "$FAILURES" -gt 0 ]; then
    echo "bench: $FAILURES run(s) reported correctness errors" >&2
    exit 1
fi
