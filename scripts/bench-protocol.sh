#!/usr/bin/env bash
# Runs the gregor-protocol criterion benches with a short measurement time.
# Numbers are in GB/s (Throughput::Bytes); the bench machines have 2 cores.
#
#   scripts/bench-protocol.sh                  # all benches
#   scripts/bench-protocol.sh produce_decode   # one bench target
#   BENCH_FILTER=v16 scripts/bench-protocol.sh # criterion name filter
set -euo pipefail
cd "$(dirname "$0")/.."

bench_args=()
if [[ $# -gt 0 ]]; then
    for name in "$@"; do
        bench_args+=(--bench "$name")
    done
fi

cargo bench -p gregor-protocol -j2 "${bench_args[@]}" -- \
    --warm-up-time 1 --measurement-time 3 ${BENCH_FILTER:+"$BENCH_FILTER"}
