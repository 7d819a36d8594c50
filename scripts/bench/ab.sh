#!/usr/bin/env bash
# Interleaved A/B of broker binaries: the per-change figures in commit messages and
# closing notes come from this. Each run starts a fresh broker (CPU 0) on a new data
# directory, drops the page cache (as root), pre-faults memory, moves 1 GB of 1 KiB records in 1 MB batches with
# `gregor perf` (CPU 1) and prints MB/s and the broker's user+system CPU seconds.
#
#   scripts/bench/ab.sh [--rounds N] [--partitions N] [--workload produce|consume] BIN_A BIN_B ...
#
# consume reads back what a produce just wrote (synced first, so writeback does not
# overlap). The data directory is removed after every run.
set -euo pipefail

ROUNDS=3 PARTITIONS=1 WORKLOAD=produce
while (($#)); do
    case $1 in
        --rounds) ROUNDS=$2; shift 2 ;;
        --partitions) PARTITIONS=$2; shift 2 ;;
        --workload) WORKLOAD=$2; shift 2 ;;
        -h | --help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) break ;;
    esac
done
(($# >= 1)) || { echo "usage: $0 [--rounds N] [--partitions N] [--workload produce|consume] BIN..." >&2; exit 2; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PERF=$1 # any of the binaries has the load tool
PORT=19197
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

for ((round = 1; round <= ROUNDS; round++)); do
    for bin in "$@"; do
        rm -rf "$DATA/d"
        taskset -c 0 "$bin" serve --override "log.dirs=$DATA/d" --override "listeners=PLAINTEXT://127.0.0.1:$PORT" \
            >"$DATA/broker.log" 2>&1 &
        pid=$!
        for _ in $(seq 100); do
            "$PERF" perf produce --bootstrap "127.0.0.1:$PORT" --topic t --partitions "$PARTITIONS" \
                --num-records "$PARTITIONS" >/dev/null 2>&1 && break
            sleep 0.05
        done
        # Dirty and cached pages of earlier runs would throttle this one's writes.
        sync
        if [[ -w /proc/sys/vm/drop_caches ]]; then echo 3 >/proc/sys/vm/drop_caches; fi
        if [[ $WORKLOAD == consume ]]; then
            taskset -c 1 "$PERF" perf produce --bootstrap "127.0.0.1:$PORT" --topic t --num-records 1000000 \
                --batch-size-bytes 1000000 --linger-ms 5 >/dev/null 2>&1
            sync # so that writeback does not overlap the consume
        fi
        python3 "$HERE/proc.py" prefault 1024 >/dev/null
        before=$(cpu_ticks "$pid")
        if [[ $WORKLOAD == consume ]]; then
            line=$(taskset -c 1 "$PERF" perf consume --bootstrap "127.0.0.1:$PORT" --topic t --json 2>/dev/null | tail -1)
        else
            line=$(taskset -c 1 "$PERF" perf produce --bootstrap "127.0.0.1:$PORT" --topic t --num-records 1000000 \
                --batch-size-bytes 1000000 --linger-ms 5 --json 2>/dev/null | tail -1)
        fi
        after=$(cpu_ticks "$pid")
        mbps=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["mb_per_s"])' "$line")
        printf '%s round %d %s: %s MB/s, broker CPU %s s\n' "$(basename "$bin")" "$round" "$WORKLOAD" "$mbps" \
            "$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }')"
        kill "$pid"
        wait "$pid" || true
    done
done
