# Shared by scripts/bench.sh, scripts/bench-rooms.sh, scripts/bench-handshakes.sh and
# scripts/bench-cluster.sh (sourced, not run): a free port, a server's start-up wait and
# its stop, the release build with the CPU pinning, the settings hubbub runs a load test
# with, and a Redis of the run's own.

# What hubbub is started with for a load test: no rate limit, connection caps above the
# test, a large outbound budget for flat-out fan-out.
LOAD_TEST_SETTINGS=(RATE_LIMIT_PER_S=0 MAX_CONNECTIONS=100000 MAX_CONNECTIONS_PER_IP=100000
    MAX_PENDING_BYTES=$((64 * 1024 * 1024)) SHUTDOWN_TIMEOUT_MS=1000)

SERVER_PID=
SERVER_URL=

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_until_listening PORT LOG WHAT: waits (10 s at most) for the server just started
# as SERVER_PID to accept on PORT; sets SERVER_URL. If it dies or never listens, prints
# the end of its LOG and exits.
wait_until_listening() {
    local port=$1 log=$2 what=$3
    SERVER_URL="ws://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "$(basename "$0"): $what did not start; its log ($log):" >&2
    tail -20 "$log" >&2
    exit 1
}

# stop_server: SIGTERM, then SIGKILL after 5 s; safe to call with no server running.
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# Builds the release server and load generator into $BIN, and sets PIN_SERVER and
# PIN_CLIENT (taskset prefixes: server on BENCH_SERVER_CPUS, default 0, the load
# generator on BENCH_CLIENT_CPUS, default 1) with PINNING saying which.
build_release_and_pin() {
    echo "== cargo build --release -p hubbub -p hubbub-bench"
    cargo build --release -p hubbub -p hubbub-bench --locked --quiet
    BIN="$TARGET_DIR/release"

    PIN_SERVER=()
    PIN_CLIENT=()
    if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
        PIN_SERVER=(taskset -c "${BENCH_SERVER_CPUS:-0}")
        PIN_CLIENT=(taskset -c "${BENCH_CLIENT_CPUS:-1}")
        PINNING="server on CPU ${BENCH_SERVER_CPUS:-0}, load generator on CPU ${BENCH_CLIENT_CPUS:-1} (taskset)"
    else
        PINNING="not pinned (taskset missing or one CPU)"
    fi
}

# A Redis of the run's own (the cluster benchmark and the cluster smoke): no persistence,
# on a free loopback port, pinned with the servers (PIN_SERVER, when set), its files in
# a fresh folder. Sets REDIS_PID, REDIS_PORT and REDIS_URL; waits (10 s at most) for its
# PONG. stop_redis stops it and removes the folder.
REDIS_PID=
REDIS_DIR=

start_redis() {
    local log=$1
    REDIS_PORT=$(free_port)
    REDIS_DIR=$(mktemp -d)
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
    "${PIN_SERVER[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$REDIS_DIR" --daemonize no >"$log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 1 100); do
        if redis_pong "$REDIS_PORT"; then
            return 0
        fi
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "$(basename "$0"): redis-server did not start; its log ($log):" >&2
    tail -20 "$log" >&2
    exit 1
}

# redis_pong PORT: whether a Redis answers PING there (bash's /dev/tcp, no redis-cli).
redis_pong() {
    local reply
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'PING\r\n' >&3
        read -r -t 1 reply <&3 && [[ $reply == +PONG* ]]
    ) 2>/dev/null
}

stop_redis() {
    [ -n "$REDIS_PID" ] || return 0
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=
    [ -z "$REDIS_DIR" ] || rm -rf "$REDIS_DIR"
    REDIS_DIR=
}

# have_redis WHAT: whether redis-server is installed; if not, a visible skip of WHAT, or
# under CI=true a failure (exit 1): CI installs it (.ci/run).
have_redis() {
    command -v redis-server >/dev/null && return 0
    if [ "${CI:-}" = true ]; then
        echo "$(basename "$0"): $1 needs redis-server (Debian's package), and CI=true" >&2
        exit 1
    fi
    echo "SKIP: $1: redis-server not installed (apt-get install redis-server)" >&2
    return 1
}
