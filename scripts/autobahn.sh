#!/usr/bin/env bash
# Autobahn|Testsuite conformance run: the fuzzing client drives hubbub's /echo through
# cases 1.* to 10.* and this script fails on any FAILED case.
#
#   scripts/autobahn.sh            # everything, ~2-4 minutes on 2 cores
#   CASES='["5.*"]' scripts/autobahn.sh
#   scripts/autobahn.sh --tls      # the same over wss:// (TLS_CERT_FILE, TLS_KEY_FILE)
#
# --tls makes a self-signed certificate for 127.0.0.1 with the openssl command-line tool
# (target/autobahn/tls; the fuzzing client does not verify it, the health check does)
# and reports into target/autobahn/report-tls. CI runs the plain variant only.
#
# Needs a Python 2.7 (autobahntestsuite 0.8.2 is Python 2 only): taken from $PYTHON2,
# `python2.7` on PATH, or pyenv's 2.7 builds. The virtualenv is cached in
# target/autobahn/venv; the HTML report lands in target/autobahn/report (not in git).
# Cases 12.* and 13.* (permessage-deflate) are not run: actix does not implement
# compression extensions, so the server declines them in the handshake.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=target/autobahn
VENV=$WORK/venv
CASES=${CASES:-'["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*"]'}
TLS=0
for arg in "$@"; do
    case "$arg" in
        --tls) TLS=1 ;;
        *) echo "usage: scripts/autobahn.sh [--tls]" >&2; exit 2 ;;
    esac
done
mkdir -p "$WORK"

find_python2() {
    local candidate
    for candidate in "${PYTHON2:-}" python2.7 /root/.pyenv/versions/2.7*/bin/python2.7 \
        "$HOME"/.pyenv/versions/2.7*/bin/python2.7 /usr/bin/python2.7 /usr/local/bin/python2.7; do
        [ -n "$candidate" ] || continue
        if "$candidate" -c 'import sys; assert sys.version_info[:2] == (2, 7)' 2>/dev/null; then
            command -v "$candidate" || echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [ ! -x "$VENV/bin/wstest" ]; then
    if ! PY2=$(find_python2); then
        echo "autobahn: no working Python 2.7 found (set PYTHON2=/path/to/python2.7)." >&2
        echo "autobahn: autobahntestsuite 0.8.2 runs only on Python 2.7." >&2
        exit 3
    fi
    echo "== creating the Autobahn virtualenv with $PY2"
    rm -rf "$VENV" "$WORK/virtualenv-tool"
    "$PY2" -m pip install --quiet --disable-pip-version-check --target "$WORK/virtualenv-tool" "virtualenv<20.22"
    PYTHONPATH="$WORK/virtualenv-tool" "$PY2" -m virtualenv --quiet "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check autobahntestsuite==0.8.2
fi

echo "== building hubbub (release)"
cargo build --release --quiet

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$TLS" = 1 ]; then
    SCHEME=https WS_SCHEME=wss REPORT=$WORK/report-tls LOG=$WORK/server-tls.log
    WSTEST_LOG=$WORK/wstest-tls.log
    if ! command -v openssl >/dev/null; then
        echo "autobahn: --tls needs the openssl command-line tool (apt-get install openssl)." >&2
        exit 3
    fi
    mkdir -p "$WORK/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
        -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null
    export TLS_CERT_FILE=$PWD/$WORK/tls/cert.pem TLS_KEY_FILE=$PWD/$WORK/tls/key.pem
else
    SCHEME=http WS_SCHEME=ws REPORT=$WORK/report LOG=$WORK/server.log
    WSTEST_LOG=$WORK/wstest.log
    unset TLS_CERT_FILE TLS_KEY_FILE
fi
# Limits raised for the run: the 9.* cases send messages of up to 16 MiB, flat out.
HOST=127.0.0.1 PORT=$PORT RUST_LOG=warn \
    MAX_MESSAGE_BYTES=$((16 * 1024 * 1024)) MAX_PENDING_BYTES=$((64 * 1024 * 1024)) \
    ./target/release/hubbub > "$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    if python3 - "$SCHEME://127.0.0.1:$PORT/healthz" "${TLS_CERT_FILE:-}" 2>/dev/null <<'PY'
import ssl, sys, urllib.request
context = ssl.create_default_context(cafile=sys.argv[2]) if sys.argv[2] else None
urllib.request.urlopen(sys.argv[1], timeout=1, context=context)
PY
    then
        break
    fi
    sleep 0.1
done

cat > "$WORK/fuzzingclient.json" <<JSON
{
  "outdir": "$PWD/$REPORT",
  "servers": [{"agent": "hubbub", "url": "$WS_SCHEME://127.0.0.1:$PORT/echo"}],
  "cases": $CASES,
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
JSON
rm -rf "$REPORT"
echo "== wstest -m fuzzingclient against $WS_SCHEME://127.0.0.1:$PORT/echo"
started=$(date +%s)
"$VENV/bin/wstest" -m fuzzingclient -s "$WORK/fuzzingclient.json" > "$WSTEST_LOG" 2>&1 || {
    echo "autobahn: wstest failed; see $WSTEST_LOG" >&2
    tail -20 "$WSTEST_LOG" >&2
    exit 1
}
echo "== finished in $(( $(date +%s) - started )) s"

python3 - "$REPORT/index.json" <<'PY'
import json, sys, collections
report = json.load(open(sys.argv[1]))["hubbub"]
def key(case):
    return [int(part) for part in case.split(".")]
counts = collections.Counter()
not_ok = collections.defaultdict(list)
for case in sorted(report, key=key):
    result = report[case]
    behavior = result["behavior"]
    counts[behavior] += 1
    if behavior != "OK":
        not_ok[behavior].append(case)
    if result.get("behaviorClose") not in ("OK", "INFORMATIONAL", None):
        counts["close:" + result["behaviorClose"]] += 1
        not_ok["close " + result["behaviorClose"]].append(case)
print("autobahn: %d cases: %s" % (len(report), ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
for behavior, cases in sorted(not_ok.items()):
    print("  %s: %s" % (behavior, " ".join(cases)))
failed = counts["FAILED"] + counts.get("close:FAILED", 0)
print("autobahn: %d passed, %d failed" % (len(report) - failed, failed))
sys.exit(1 if failed else 0)
PY
