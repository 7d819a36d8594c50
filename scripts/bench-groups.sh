#!/usr/bin/env bash
# Group coordinator figures quoted in the issue-4 note: the OffsetCommit rate one
# confluent-kafka client reaches, the broker CPU it costs, and how long the
# coordinator takes to load `__consumer_offsets` after a restart, with and
# without the log cleaner compacting it.
#
#   scripts/bench-groups.sh            # 20,000 commits of 8 partitions
#   COMMITS=5000 scripts/bench-groups.sh
#
# Needs the venv that scripts/test.sh builds (target/venv) and builds the release
# binary. Uses port 19092 and a temporary data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
PYTHON="$TARGET_DIR/venv/bin/python"
[[ -x $PYTHON ]] || { echo "run scripts/test.sh once first (it builds $TARGET_DIR/venv)" >&2; exit 1; }
cargo build --release -j2 -p gregor-broker --bin gregor >&2
BIN="$TARGET_DIR/release/gregor"
PORT=19092
COMMITS="${COMMITS:-20000}"
work=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start() {
    "$BIN" serve --override "listeners=PLAINTEXT://127.0.0.1:$PORT" --override "log.dirs=$work/data" \
        --override group.initial.rebalance.delay.ms=0 "$@" >"$work/out" 2>>"$work/err" &
    pid=$!
    for _ in $(seq 100); do grep -q "gregor ready" "$work/out" 2>/dev/null && return; sleep 0.1; done
    echo "broker did not start" >&2; cat "$work/err" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" || true; pid=; }
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat"; }

for mode in without-cleaner with-cleaner; do
    rm -rf "$work/data" "$work/err"
    if [[ $mode == with-cleaner ]]; then
        extra=(--override offsets.topic.segment.bytes=1048576 --override log.cleaner.backoff.ms=1000)
    else
        extra=(--override log.cleaner.enable=false)
    fi
    start "${extra[@]}"
    echo "== $mode"
    COMMITS=$COMMITS PORT=$PORT "$PYTHON" scripts/groups/commits.py
    echo "broker CPU: $(cpu_seconds) s"
    sleep 3
    stop
    start
    sleep 3
    grep -o "loaded [0-9]* group records in [0-9]* ms" "$work/err" || echo "(no group records loaded)"
    stop
done
