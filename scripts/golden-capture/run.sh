#!/usr/bin/env bash
# Regenerates crates/protocol/tests/golden/: sets up the Python venv, builds the
# librdkafka capture program, runs the fake broker with each client, keeps a
# few frames per api+version and writes the README and manifests.
#
#   scripts/golden-capture/run.sh            # both clients
#   scripts/golden-capture/run.sh kafka-python
#   scripts/golden-capture/run.sh librdkafka
#
# Needs: python3 (3.11), cargo, a C toolchain, cmake and the curl headers
# (librdkafka is built from the sources bundled in the rdkafka-sys crate); as
# root the missing Debian packages are installed. Network: PyPI and crates.io only.
# Environment: CARGO_TARGET_DIR (default <repo>/target), CARGO_BUILD_JOBS (default 2).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
HERE=scripts/golden-capture
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
JOBS="${CARGO_BUILD_JOBS:-2}"
VENV="$CARGO_TARGET_DIR/golden-venv"
PY="$VENV/bin/python"
RAW="$CARGO_TARGET_DIR/golden-raw"
GOLDEN=crates/protocol/tests/golden
CLIENTS=("${@:-kafka-python librdkafka}")
read -r -a CLIENTS <<<"${CLIENTS[*]}"

# Broker profiles: "latest" advertises the highest version kafka-python's message
# classes define for each answered API; "pre-flexible" caps every API at its
# newest non-flexible version (roughly a Kafka 2.3 broker), so the clients fall
# back to request header v1 and classic (non-compact) encodings.
declare -A PROFILES=(
    [latest]=""
    [pre-flexible]="api_versions=2,metadata=8,produce=8,fetch=11,list_offsets=5,offset_commit=7,offset_fetch=5,find_coordinator=2,join_group=5,heartbeat=3,leave_group=3,sync_group=3,init_producer_id=1,offset_for_leader_epoch=3"
)
PROFILE_ORDER=(latest pre-flexible)

# Pinned so a rerun captures the same client behaviour.
PY_PACKAGES=(kafka-python==3.0.12 cramjam==2.14.0 python-snappy==0.7.3 lz4==4.4.5 zstandard==0.25.0)

log() { printf '\n== %s\n' "$*" >&2; }

wants() { [[ " ${CLIENTS[*]} " == *" $1 "* ]]; }

setup_venv() {
    log "Python venv $VENV"
    [[ -x "$PY" ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
}

build_rdkafka() {
    local missing=()
    command -v cmake >/dev/null || missing+=(cmake)
    [[ -f /usr/include/curl/curl.h || -f /usr/include/x86_64-linux-gnu/curl/curl.h ]] || missing+=(libcurl4-openssl-dev)
    [[ -f /usr/include/zlib.h ]] || missing+=(zlib1g-dev)
    if ((${#missing[@]})); then
        if [[ $(id -u) == 0 ]]; then
            log "apt-get install ${missing[*]}"
            apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
        else
            echo "missing build dependencies: ${missing[*]} (apt-get install them)" >&2
            exit 1
        fi
    fi
    log "building integration-tests/golden-capture (librdkafka via rdkafka-sys, bundled)"
    (cd integration-tests/golden-capture && cargo build --release --locked -j"$JOBS")
}

BROKER_PID=""
stop_broker() {
    if [[ -n "$BROKER_PID" ]]; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
        BROKER_PID=""
    fi
}
trap stop_broker EXIT

# capture <client> <command...>: for each broker profile, runs the command with
# {BOOTSTRAP} replaced by the fake broker's address (frames go to
# $RAW/<client>-<profile>), then selects the fixtures from all profiles.
capture() {
    local client=$1
    shift
    local raws=()
    for profile in "${PROFILE_ORDER[@]}"; do
        capture_one "$client" "$profile" "$@"
        raws+=(--raw "$profile=$RAW/$client-$profile")
    done
    "$PY" "$HERE/select_fixtures.py" select "${raws[@]}" --client "$client" --dest "$GOLDEN"
}

capture_one() {
    local client=$1 profile=$2
    shift 2
    local out="$RAW/$client-$profile"
    rm -rf "$out"
    mkdir -p "$out"
    "$PY" "$HERE/fake_broker.py" --port 0 --out "$out" --cap "${PROFILES[$profile]}" -v \
        >"$out.stdout" 2>"$out.broker.log" &
    BROKER_PID=$!
    local port=""
    for _ in $(seq 100); do
        port=$(sed -n 's/^LISTENING //p' "$out.stdout")
        [[ -n "$port" ]] && break
        sleep 0.1
    done
    [[ -n "$port" ]] || { echo "fake broker did not start; see $out.broker.log" >&2; exit 1; }
    log "capturing $client, $profile broker at 127.0.0.1:$port"
    local args=("${@//\{BOOTSTRAP\}/127.0.0.1:$port}")
    local rc=0
    timeout 300 "${args[@]}" >"$out.client.log" 2>&1 || rc=$?
    cat "$out.client.log" >&2
    stop_broker
    if grep -q Traceback "$out.broker.log"; then
        echo "fake broker raised errors; see $out.broker.log" >&2
        exit 1
    fi
    if ((rc != 0)); then
        echo "$client capture client failed (exit $rc); see $out.client.log" >&2
        exit 1
    fi
}

setup_venv
mkdir -p "$RAW" "$GOLDEN"
if wants kafka-python; then
    capture kafka-python "$PY" "$HERE/capture_kafka_python.py" --bootstrap "{BOOTSTRAP}"
fi
if wants librdkafka; then
    build_rdkafka
    capture librdkafka "$CARGO_TARGET_DIR/release/golden-capture" --bootstrap "{BOOTSTRAP}"
fi

# Client versions for the README (kept from the previous run for a client not rerun).
VERSIONS="$GOLDEN/versions.json"
"$PY" - "$VERSIONS" "$RAW" <<'EOF'
import json, os, platform, re, sys
from importlib.metadata import version
path, raw = sys.argv[1], sys.argv[2]
v = json.load(open(path)) if os.path.exists(path) else {}
def first(pattern, file):
    try:
        m = re.search(pattern, open(file).read(), re.M)
        return m.group(1) if m else None
    except FileNotFoundError:
        return None
kp = first(r"^kafka-python (\S+)", os.path.join(raw, "kafka-python-latest.client.log"))
if kp:
    v["kafka-python"] = (f"{kp} (PyPI), Python {platform.python_version()}, codecs: "
                         f"python-snappy {version('python-snappy')}, cramjam {version('cramjam')}, "
                         f"lz4 {version('lz4')}, zstandard {version('zstandard')}")
rdk = first(r"^librdkafka (.+)$", os.path.join(raw, "librdkafka-latest.client.log"))
if rdk:
    lock = open("integration-tests/golden-capture/Cargo.lock").read()
    crate = lambda n: re.search(r'name = "%s"\nversion = "([^"]+)"' % n, lock).group(1)
    v["librdkafka"] = (f"{rdk}, bundled in rdkafka-sys {crate('rdkafka-sys')}, used through the "
                       f"rdkafka crate {crate('rdkafka')} (features cmake-build, libz, zstd)")
json.dump(v, open(path, "w"), indent=1, sort_keys=True)
open(path, "a").write("\n")
EOF
"$PY" "$HERE/select_fixtures.py" readme --dest "$GOLDEN" --versions "$VERSIONS"
log "done: $GOLDEN"
